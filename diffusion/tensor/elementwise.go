package tensor

import "fmt"

// Add returns a + b elementwise. It panics if the shapes differ.
func Add(a, b *Tensor) *Tensor {
	out := New(a.Shape...)
	AddTo(out, a, b)
	return out
}

// AddTo sets dst = a + b elementwise; dst may alias a or b. It panics if the
// shapes differ.
func AddTo(dst, a, b *Tensor) {
	mustSameShape("AddTo", a, b)
	mustSameShape("AddTo", dst, a)
	parallelFor(a.Len(), 1<<15, func(lo, hi int) {
		d, x, y := dst.Data[lo:hi], a.Data[lo:hi], b.Data[lo:hi]
		for i := range d {
			d[i] = x[i] + y[i]
		}
	})
}

// Scale multiplies x by s in place and returns x.
func Scale(x *Tensor, s float32) *Tensor {
	parallelFor(x.Len(), 1<<15, func(lo, hi int) {
		d := x.Data[lo:hi]
		for i := range d {
			d[i] *= s
		}
	})
	return x
}

// AddChannelBias adds bias[c] to every element of channel c of x [N, C, ...]
// in place and returns x; ResnetBlock2D uses it to add the projected time
// embedding, with bias [N, C] (one vector per batch item).
func AddChannelBias(x, bias *Tensor) *Tensor {
	n, c := x.Shape[0], x.Shape[1]
	if bias.Len() != n*c {
		panic(fmt.Sprintf("tensor: AddChannelBias of %v to %v", bias.Shape, x.Shape))
	}
	spatial := x.Len() / max(1, n*c)
	parallelFor(n*c, 16, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			b := bias.Data[p]
			s := x.Data[p*spatial : (p+1)*spatial]
			for i := range s {
				s[i] += b
			}
		}
	})
	return x
}
