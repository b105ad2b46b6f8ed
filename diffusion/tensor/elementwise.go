package tensor

import "fmt"

// Add returns a + b elementwise. It panics if the shapes differ.
func Add(a, b *Tensor) *Tensor {
	mustFloat32("Add", a, b)
	out := New(a.Shape...)
	AddTo(out, a, b)
	return out
}

// AddTo sets dst = a + b elementwise; dst may alias a or b. It panics if the
// shapes differ.
func AddTo(dst, a, b *Tensor) {
	mustFloat32("AddTo", dst, a, b)
	mustSameShape("AddTo", a, b)
	mustSameShape("AddTo", dst, a)
	x, y := a.Data, b.Data
	fresh := tracked(a, b)
	if fresh {
		dst.Data = makeFloats(len(x)) // see Tape: never overwrite saved values
	}
	d := dst.Data
	parallelFor(len(d), 1<<15, func(lo, hi int) {
		d, x, y := d[lo:hi], x[lo:hi], y[lo:hi]
		for i := range d {
			d[i] = x[i] + y[i]
		}
	})
	if fresh {
		record(dst, []*Tensor{a, b}, func(g []float32, d [][]float32) {
			addInto(d[0], g)
			addInto(d[1], g)
		})
	} else {
		dst.ag = nil
	}
}

// Scale multiplies x by s in place and returns x.
func Scale(x *Tensor, s float32) *Tensor {
	mustFloat32("Scale", x)
	src := x.Data
	fresh := tracked(x)
	if fresh {
		x.Data = makeFloats(len(src))
	}
	dst := x.Data
	parallelFor(len(dst), 1<<15, func(lo, hi int) {
		d, v := dst[lo:hi], src[lo:hi]
		for i := range d {
			d[i] = v[i] * s
		}
	})
	if fresh {
		record(x, []*Tensor{x}, func(g []float32, d [][]float32) {
			if d[0] == nil {
				return
			}
			for i, v := range g {
				d[0][i] += v * s
			}
		})
	}
	return x
}

// AddChannelBias adds bias[c] to every element of channel c of x [N, C, ...]
// in place and returns x; ResnetBlock2D uses it to add the projected time
// embedding, with bias [N, C] (one vector per batch item).
func AddChannelBias(x, bias *Tensor) *Tensor {
	mustFloat32("AddChannelBias", x, bias)
	n, c := x.Shape[0], x.Shape[1]
	if bias.Len() != n*c {
		panic(fmt.Sprintf("tensor: AddChannelBias of %v to %v", bias.Shape, x.Shape))
	}
	spatial := x.Len() / max(1, n*c)
	src, b := x.Data, bias.Data
	fresh := tracked(x, bias)
	if fresh {
		x.Data = makeFloats(len(src))
	}
	dst := x.Data
	parallelFor(n*c, 16, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			v := b[p]
			s, d := src[p*spatial:(p+1)*spatial], dst[p*spatial:(p+1)*spatial]
			for i := range d {
				d[i] = s[i] + v
			}
		}
	})
	if fresh {
		record(x, []*Tensor{x, bias}, func(g []float32, d [][]float32) {
			addInto(d[0], g)
			if db := d[1]; db != nil {
				for p := range db {
					var sum float32
					for _, v := range g[p*spatial : (p+1)*spatial] {
						sum += v
					}
					db[p] += sum
				}
			}
		})
	}
	return x
}

// Sub returns a − b elementwise. It panics if the shapes differ.
func Sub(a, b *Tensor) *Tensor {
	mustFloat32("Sub", a, b)
	mustSameShape("Sub", a, b)
	out := New(a.Shape...)
	for i := range out.Data {
		out.Data[i] = a.Data[i] - b.Data[i]
	}
	record(out, []*Tensor{a, b}, func(g []float32, d [][]float32) {
		addInto(d[0], g)
		if d[1] != nil {
			for i, v := range g {
				d[1][i] -= v
			}
		}
	})
	return out
}

// Mul returns a ⊙ b elementwise. It panics if the shapes differ.
func Mul(a, b *Tensor) *Tensor {
	mustFloat32("Mul", a, b)
	mustSameShape("Mul", a, b)
	out := New(a.Shape...)
	x, y := a.Data, b.Data
	for i := range out.Data {
		out.Data[i] = x[i] * y[i]
	}
	record(out, []*Tensor{a, b}, func(g []float32, d [][]float32) {
		for i, v := range g {
			if d[0] != nil {
				d[0][i] += v * y[i]
			}
			if d[1] != nil {
				d[1][i] += v * x[i]
			}
		}
	})
	return out
}

// Exp returns e^x elementwise.
func Exp(x *Tensor) *Tensor {
	mustFloat32("Exp", x)
	out := New(x.Shape...)
	for i, v := range x.Data {
		out.Data[i] = expf(v)
	}
	y := out.Data
	record(out, []*Tensor{x}, func(g []float32, d [][]float32) {
		for i, v := range g {
			d[0][i] += v * y[i]
		}
	})
	return out
}

// Sum returns the sum of every element of x as a tensor of shape [1],
// accumulated in float64.
func Sum(x *Tensor) *Tensor {
	mustFloat32("Sum", x)
	var s float64
	for _, v := range x.Data {
		s += float64(v)
	}
	out := FromData([]float32{float32(s)}, 1)
	record(out, []*Tensor{x}, func(g []float32, d [][]float32) {
		for i := range d[0] {
			d[0][i] += g[0]
		}
	})
	return out
}

// Mean returns the mean of every element of x as a tensor of shape [1].
func Mean(x *Tensor) *Tensor {
	mustFloat32("Mean", x)
	return Scale(Sum(x), 1/float32(max(1, x.Len())))
}

// MSE returns mean((a − b)²) over every element as a tensor of shape [1]
// (torch.nn.functional.mse_loss with reduction "mean"), accumulated in
// float64. It panics if the shapes differ.
func MSE(a, b *Tensor) *Tensor {
	mustFloat32("MSE", a, b)
	mustSameShape("MSE", a, b)
	x, y := a.Data, b.Data
	var s float64
	for i := range x {
		e := float64(x[i]) - float64(y[i])
		s += e * e
	}
	n := float32(max(1, len(x)))
	out := FromData([]float32{float32(s / float64(n))}, 1)
	record(out, []*Tensor{a, b}, func(g []float32, d [][]float32) {
		k := 2 * g[0] / n
		for i := range x {
			e := k * (x[i] - y[i])
			if d[0] != nil {
				d[0][i] += e
			}
			if d[1] != nil {
				d[1][i] -= e
			}
		}
	})
	return out
}

// Clamp returns x with every element limited to [lo, hi] (torch.clamp); the
// gradient passes where lo ≤ x ≤ hi and is zero elsewhere.
func Clamp(x *Tensor, lo, hi float32) *Tensor {
	mustFloat32("Clamp", x)
	out := New(x.Shape...)
	in := x.Data
	for i, v := range in {
		out.Data[i] = min(max(v, lo), hi)
	}
	record(out, []*Tensor{x}, func(g []float32, d [][]float32) {
		for i, v := range in {
			if v >= lo && v <= hi {
				d[0][i] += g[i]
			}
		}
	})
	return out
}
