package tensor

import "math"

// Softmax applies softmax over the last dimension of x in place and returns
// x. Each row is shifted by its maximum first, so large logits do not
// overflow; rows of all −Inf become all zero.
func Softmax(x *Tensor) *Tensor {
	d := x.Dim(-1)
	rows := x.Len() / max(1, d)
	parallelFor(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(x.Data[r*d : (r+1)*d])
		}
	})
	return x
}

func softmaxRow(row []float32) {
	m := float32(math.Inf(-1))
	for _, v := range row {
		if v > m {
			m = v
		}
	}
	if math.IsInf(float64(m), -1) {
		clear(row)
		return
	}
	var sum float64
	for i, v := range row {
		e := float32(math.Exp(float64(v - m)))
		row[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range row {
		row[i] *= inv
	}
}
