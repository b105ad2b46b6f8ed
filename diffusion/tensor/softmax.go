package tensor

import "math"

// Softmax applies softmax over the last dimension of x in place and returns
// x. Each row is shifted by its maximum first, so large logits do not
// overflow; rows of all −Inf become all zero. When x is tracked the result
// goes to a fresh slice x is rebound to (see Tape), and the backward step is
// dx = y ⊙ (g − Σ g⊙y) per row, y the saved output.
func Softmax(x *Tensor) *Tensor {
	mustFloat32("Softmax", x)
	d := x.Dim(-1)
	rows := x.Len() / max(1, d)
	if !tracked(x) {
		parallelFor(rows, 64, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				softmaxRow(x.Data[r*d : (r+1)*d])
			}
		})
		return x
	}
	src := x.Data
	y := make([]float32, len(src))
	parallelFor(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := y[r*d : (r+1)*d]
			copy(row, src[r*d:(r+1)*d])
			softmaxRow(row)
		}
	})
	x.Data = y
	record(x, []*Tensor{x}, func(g []float32, grads [][]float32) {
		dx := grads[0]
		parallelFor(rows, 64, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				softmaxRowGrad(dx[r*d:(r+1)*d], g[r*d:(r+1)*d], y[r*d:(r+1)*d])
			}
		})
	})
	return x
}

// softmaxRowGrad adds y ⊙ (g − Σ g⊙y) to dx: the gradient of the softmax
// output y of one row for the output gradient g.
func softmaxRowGrad(dx, g, y []float32) {
	s := float32(dot64(g, y))
	y = y[:len(g)]
	dx = dx[:len(g)]
	for i, v := range g {
		dx[i] += y[i] * (v - s)
	}
}

// dot64 returns Σ a[i]·b[i] over a's length, accumulated in float64 in four
// partial sums (independent dependency chains).
func dot64(a, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		x, y := a[i:i+4:i+4], b[i:i+4:i+4]
		s0 += float64(x[0]) * float64(y[0])
		s1 += float64(x[1]) * float64(y[1])
		s2 += float64(x[2]) * float64(y[2])
		s3 += float64(x[3]) * float64(y[3])
	}
	for ; i < len(a); i++ {
		s0 += float64(a[i]) * float64(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// softmaxRow applies softmax to row in place (see Softmax).
func softmaxRow(row []float32) { softmaxKernels.rows(row, len(row)) }

// softmaxPasses is softmaxImpl.rows made of its three passes.
func softmaxPasses(k *softmaxImpl) func(block []float32, n int) {
	return func(block []float32, n int) {
		for i := 0; i+n <= len(block) && n > 0; i += n {
			row := block[i : i+n]
			m := k.max(row)
			if math.IsInf(float64(m), -1) {
				clear(row)
				continue
			}
			k.scale(row, 1/k.expSum(row, m))
		}
	}
}

var negInf32 = float32(math.Inf(-1))

// softmaxImpl is the three passes of softmaxRow: the row's maximum (−Inf
// for an empty row), row[i] = e^(row[i]−m) in place returning the sum
// (row[i]−m must be ≤ 88), and row[i] *= s; and rows, the whole softmax of
// each n-float row of block in place (len(block) a multiple of n; a row of
// all −Inf becomes zeros). The vector versions are in softmax_amd64.s.
type softmaxImpl struct {
	name   string
	max    func(row []float32) float32
	expSum func(row []float32, m float32) float32
	scale  func(row []float32, s float32)
	rows   func(block []float32, n int)
}

var softmaxGo = withPasses(softmaxImpl{name: "go", max: rowMaxGo, expSum: expSumGo, scale: scaleGo})

// withPasses returns k with rows made of its three passes.
func withPasses(k softmaxImpl) softmaxImpl {
	k.rows = softmaxPasses(&k)
	return k
}

func rowMaxGo(row []float32) float32 {
	m := negInf32
	for _, v := range row {
		if v > m {
			m = v
		}
	}
	return m
}

func expSumGo(row []float32, m float32) float32 {
	// Four partial sums: shorter dependency chains, and a summation order
	// closer to a vectorised float32 reduction than one running sum.
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(row); i += 4 {
		r := row[i : i+4 : i+4]
		r[0] = expf(r[0] - m)
		r[1] = expf(r[1] - m)
		r[2] = expf(r[2] - m)
		r[3] = expf(r[3] - m)
		s0 += r[0]
		s1 += r[1]
		s2 += r[2]
		s3 += r[3]
	}
	for ; i < len(row); i++ {
		row[i] = expf(row[i] - m)
		s0 += row[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func scaleGo(row []float32, s float32) {
	for i := range row {
		row[i] *= s
	}
}
