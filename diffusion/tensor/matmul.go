package tensor

import "fmt"

// MatMul returns a·b for a [..., M, K] and b [K, N] or [..., K, N] with the
// same leading (batch) dimensions as a. The result is [..., M, N].
// Either operand may be half-precision (a weight); the result is the same as
// with its Float32 conversion.
// It panics if the inner dimensions or batch dimensions disagree.
func MatMul(a, b *Tensor) *Tensor {
	if a.Dims() < 2 || b.Dims() < 2 {
		panic(fmt.Sprintf("tensor: MatMul needs matrices, got %v and %v", a.Shape, b.Shape))
	}
	m, k := a.Dim(-2), a.Dim(-1)
	k2, n := b.Dim(-2), b.Dim(-1)
	if k != k2 {
		panic(fmt.Sprintf("tensor: MatMul inner dimensions differ: %v · %v", a.Shape, b.Shape))
	}
	batch := a.Len() / max(m*k, 1)
	if m*k == 0 {
		batch = numel(a.Shape[:a.Dims()-2])
	}
	bStride := 0
	if b.Dims() > 2 {
		if numel(b.Shape[:b.Dims()-2]) != batch {
			panic(fmt.Sprintf("tensor: MatMul batch dimensions differ: %v · %v", a.Shape, b.Shape))
		}
		bStride = k * n
	}
	shape := append(append([]int(nil), a.Shape[:a.Dims()-2]...), m, n)
	out := New(shape...)
	keep := tracked(a, b)
	ad, aScratch := weightData(a, keep)
	bd, bScratch := weightData(b, keep)
	for i := 0; i < batch; i++ {
		gemm(false, false, m, n, k, 1,
			ad[i*m*k:(i+1)*m*k], k,
			bd[i*bStride:i*bStride+k*n], n,
			0, out.Data[i*m*n:(i+1)*m*n], n)
	}
	putScratch(aScratch)
	putScratch(bScratch)
	record(out, []*Tensor{a, b}, func(g []float32, d [][]float32) {
		for i := 0; i < batch; i++ {
			gi := g[i*m*n : (i+1)*m*n]
			if d[0] != nil { // da = g·bᵀ
				gemm(false, true, m, k, n, 1, gi, n, bd[i*bStride:], n, 1, d[0][i*m*k:], k)
			}
			if d[1] != nil { // db = aᵀ·g, summed over a shared b
				gemm(true, false, k, n, m, 1, ad[i*m*k:], k, gi, n, 1, d[1][i*bStride:], n)
			}
		}
	})
	return out
}

// Linear applies a fully connected layer, y = x·Wᵀ + bias, as torch.nn.Linear.
// x: [..., in]; weight: [out, in]; bias: [out] or nil; returns [..., out].
// The weight may be half-precision: it is widened into a scratch buffer for
// the call, so the result is bit for bit that of weight.Float32().
// It panics if x's last dimension is not in.
func Linear(x, weight, bias *Tensor) *Tensor {
	mustFloat32("Linear input", x)
	mustFloat32("Linear bias", bias)
	if weight.Dims() != 2 {
		panic(fmt.Sprintf("tensor: Linear weight must be [out, in], got %v", weight.Shape))
	}
	out, in := weight.Shape[0], weight.Shape[1]
	if x.Dim(-1) != in {
		panic(fmt.Sprintf("tensor: Linear input %v does not end in %d", x.Shape, in))
	}
	rows := x.Len() / max(in, 1)
	shape := append(append([]int(nil), x.Shape[:x.Dims()-1]...), out)
	y := newUninit(shape...) // the product (beta 0) or the bias and product write every element
	if bias != nil && bias.Len() != out {
		panic(fmt.Sprintf("tensor: Linear bias %v for %d outputs", bias.Shape, out))
	}
	xd := x.Data
	wd, scratch := weightData(weight, tracked(x, weight, bias))
	if bias != nil {
		gemmLinear(rows, out, in, xd, in, wd, in, bias.Data, y.Data, out)
	} else {
		gemm(false, true, rows, out, in, 1, xd, in, wd, in, 0, y.Data, out)
	}
	putScratch(scratch)
	record(y, []*Tensor{x, weight, bias}, func(g []float32, d [][]float32) {
		if d[0] != nil { // dx = g·W
			gemm(false, false, rows, in, out, 1, g, out, wd, in, 1, d[0], in)
		}
		if d[1] != nil { // dW = gᵀ·x
			gemm(true, false, out, in, rows, 1, g, out, xd, in, 1, d[1], in)
		}
		if d[2] != nil {
			sumRows(d[2], g, rows, out)
		}
	})
	return y
}

// sumRows adds the sum of the rows of g [rows, n] to dst [n].
func sumRows(dst, g []float32, rows, n int) {
	for r := 0; r < rows; r++ {
		row := g[r*n : (r+1)*n]
		for j, v := range row {
			dst[j] += v
		}
	}
}
