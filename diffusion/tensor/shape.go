package tensor

import "fmt"

// Concat joins tensors along dimension dim (torch.cat). All inputs must have
// the same shape except along dim. Concat(1, a, b) joins NCHW channels, as
// the UNet's skip connections do.
func Concat(dim int, ts ...*Tensor) *Tensor {
	mustFloat32("Concat", ts...)
	if len(ts) == 0 {
		panic("tensor: Concat of nothing")
	}
	first := ts[0]
	if dim < 0 {
		dim += first.Dims()
	}
	shape := append([]int(nil), first.Shape...)
	shape[dim] = 0
	for _, t := range ts {
		if t.Dims() != first.Dims() {
			panic(fmt.Sprintf("tensor: Concat of %v and %v", first.Shape, t.Shape))
		}
		for i := range t.Shape {
			if i != dim && t.Shape[i] != first.Shape[i] {
				panic(fmt.Sprintf("tensor: Concat along %d of %v and %v", dim, first.Shape, t.Shape))
			}
		}
		shape[dim] += t.Shape[dim]
	}
	out := New(shape...)
	outer := numel(shape[:dim])
	inner := numel(shape[dim+1:])
	off := 0
	for o := 0; o < outer; o++ {
		for _, t := range ts {
			n := t.Shape[dim] * inner
			copy(out.Data[off:off+n], t.Data[o*n:(o+1)*n])
			off += n
		}
	}
	sizes := make([]int, len(ts))
	for i, t := range ts {
		sizes[i] = t.Shape[dim] * inner
	}
	record(out, ts, func(g []float32, d [][]float32) {
		off := 0
		for o := 0; o < outer; o++ {
			for i, n := range sizes {
				if d[i] != nil {
					addInto(d[i][o*n:(o+1)*n], g[off:off+n])
				}
				off += n
			}
		}
	})
	return out
}

// Split cuts x along dimension 0 into parts of the given sizes, returning
// views that share x's data (torch.split on the batch dimension). It panics
// if the sizes do not add up to x.Shape[0].
func Split(x *Tensor, sizes ...int) []*Tensor {
	mustFloat32("Split", x)
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != x.Shape[0] {
		panic(fmt.Sprintf("tensor: Split %v into %v", x.Shape, sizes))
	}
	row := x.Len() / max(1, x.Shape[0])
	var out []*Tensor
	off := 0
	for _, s := range sizes {
		shape := append([]int{s}, x.Shape[1:]...)
		part := &Tensor{Shape: shape, Data: x.Data[off*row : (off+s)*row]}
		lo, hi := off*row, (off+s)*row
		record(part, []*Tensor{x}, func(g []float32, d [][]float32) { addInto(d[0][lo:hi], g) })
		out = append(out, part)
		off += s
	}
	return out
}

// Repeat returns x repeated n times along dimension 0 as a block
// ([a, b] → [a, b, a, b, …]).
func Repeat(x *Tensor, n int) *Tensor {
	mustFloat32("Repeat", x)
	shape := append([]int{x.Shape[0] * n}, x.Shape[1:]...)
	out := New(shape...)
	for i := 0; i < n; i++ {
		copy(out.Data[i*x.Len():], x.Data)
	}
	size := x.Len()
	record(out, []*Tensor{x}, func(g []float32, d [][]float32) {
		for i := 0; i < n; i++ {
			addInto(d[0], g[i*size:(i+1)*size])
		}
	})
	return out
}

// Transpose swaps the last two dimensions: x [..., A, B] → [..., B, A].
// With NCHW viewed as [N, C, H·W] it gives the [N, H·W, C] token layout of
// a Transformer2DModel, and back.
func Transpose(x *Tensor) *Tensor {
	mustFloat32("Transpose", x)
	a, b := x.Dim(-2), x.Dim(-1)
	shape := append(append([]int(nil), x.Shape[:x.Dims()-2]...), b, a)
	out := newUninit(shape...) // transposeInto writes every element
	batch := x.Len() / max(1, a*b)
	transposeInto(out.Data, x.Data, batch, a, b, false)
	record(out, []*Tensor{x}, func(g []float32, d [][]float32) {
		transposeInto(d[0], g, batch, b, a, true)
	})
	return out
}

// transposeInto writes (or, with add, adds) the transpose of each of batch
// [a, b] matrices of src into dst as [b, a], in cache tiles.
func transposeInto(dst, src []float32, batch, a, b int, add bool) {
	const tile = 32
	parallelFor(batch*((a+tile-1)/tile), 1, func(lo, hi int) {
		tiles := (a + tile - 1) / tile
		for t := lo; t < hi; t++ {
			n, i0 := t/tiles, (t%tiles)*tile
			src := src[n*a*b:]
			dst := dst[n*a*b:]
			for j0 := 0; j0 < b; j0 += tile {
				for i := i0; i < min(i0+tile, a); i++ {
					for j := j0; j < min(j0+tile, b); j++ {
						if add {
							dst[j*a+i] += src[i*b+j]
						} else {
							dst[j*a+i] = src[i*b+j]
						}
					}
				}
			}
		}
	})
}

// UpsampleNearest2x doubles the height and width of x [N, C, H, W] by
// repeating each pixel (torch F.interpolate(scale_factor=2, mode="nearest")),
// returning [N, C, 2H, 2W].
func UpsampleNearest2x(x *Tensor) *Tensor {
	mustFloat32("UpsampleNearest2x", x)
	if x.Dims() != 4 {
		panic(fmt.Sprintf("tensor: UpsampleNearest2x needs NCHW, got %v", x.Shape))
	}
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := newUninit(n, c, 2*h, 2*w)
	parallelFor(n*c, 4, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src := x.Data[p*h*w : (p+1)*h*w]
			dst := out.Data[p*4*h*w : (p+1)*4*h*w]
			for y := 0; y < h; y++ {
				row := dst[2*y*2*w : (2*y+1)*2*w]
				for xx, v := range src[y*w : (y+1)*w] {
					row[2*xx] = v
					row[2*xx+1] = v
				}
				copy(dst[(2*y+1)*2*w:(2*y+2)*2*w], row)
			}
		}
	})
	recordUpsample(out, x)
	return out
}

// UpsampleNearest resizes x [N, C, H, W] to [N, C, outH, outW] by nearest
// neighbour, as torch F.interpolate(size=(outH, outW), mode="nearest"):
// output pixel i takes input pixel floor(i·H/outH).
func UpsampleNearest(x *Tensor, outH, outW int) *Tensor {
	mustFloat32("UpsampleNearest", x)
	if x.Dims() != 4 {
		panic(fmt.Sprintf("tensor: UpsampleNearest needs NCHW, got %v", x.Shape))
	}
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	if outH == 2*h && outW == 2*w {
		return UpsampleNearest2x(x)
	}
	out := New(n, c, outH, outW)
	sy, sx := float32(h)/float32(outH), float32(w)/float32(outW)
	srcX := make([]int, outW)
	for i := range srcX {
		srcX[i] = min(int(float32(i)*sx), w-1)
	}
	parallelFor(n*c, 4, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src := x.Data[p*h*w : (p+1)*h*w]
			dst := out.Data[p*outH*outW : (p+1)*outH*outW]
			for y := 0; y < outH; y++ {
				sr := src[min(int(float32(y)*sy), h-1)*w:]
				row := dst[y*outW : (y+1)*outW]
				for i := range row {
					row[i] = sr[srcX[i]]
				}
			}
		}
	})
	recordUpsample(out, x)
	return out
}

// recordUpsample records the backward step of a nearest-neighbour resize of
// x to out: each input pixel's gradient is the sum over the output pixels
// that copied it (output pixel i of n reads input floor(i·h/n), as above).
func recordUpsample(out, x *Tensor) {
	if !tracked(x) {
		return
	}
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	outH, outW := out.Shape[2], out.Shape[3]
	sy, sx := float32(h)/float32(outH), float32(w)/float32(outW)
	record(out, []*Tensor{x}, func(g []float32, d [][]float32) {
		dx := d[0]
		parallelFor(n*c, 4, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				src := g[p*outH*outW : (p+1)*outH*outW]
				dst := dx[p*h*w : (p+1)*h*w]
				for y := 0; y < outH; y++ {
					dr := dst[min(int(float32(y)*sy), h-1)*w:]
					for i, v := range src[y*outW : (y+1)*outW] {
						dr[min(int(float32(i)*sx), w-1)] += v
					}
				}
			}
		})
	})
}

// PadBottomRight returns x [N, C, H, W] padded with one row of zeros at the
// bottom and one column at the right, [N, C, H+1, W+1]: diffusers'
// Downsample2D does this (F.pad(x, (0, 1, 0, 1))) before a stride-2
// convolution without padding, as in the VAE encoder.
func PadBottomRight(x *Tensor) *Tensor {
	mustFloat32("PadBottomRight", x)
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := New(n, c, h+1, w+1)
	for p := 0; p < n*c; p++ {
		for y := 0; y < h; y++ {
			copy(out.Data[(p*(h+1)+y)*(w+1):], x.Data[(p*h+y)*w:(p*h+y+1)*w])
		}
	}
	record(out, []*Tensor{x}, func(g []float32, d [][]float32) {
		for p := 0; p < n*c; p++ {
			for y := 0; y < h; y++ {
				addInto(d[0][(p*h+y)*w:(p*h+y+1)*w], g[(p*(h+1)+y)*(w+1):(p*(h+1)+y)*(w+1)+w])
			}
		}
	})
	return out
}

// Narrow returns a copy of x restricted to [start, start+length) along dim
// (torch.narrow followed by contiguous); torch.chunk(moments, 2, dim=1) is
// two Narrows. It panics on a range outside x.
func Narrow(x *Tensor, dim, start, length int) *Tensor {
	mustFloat32("Narrow", x)
	if dim < 0 {
		dim += x.Dims()
	}
	if start < 0 || length < 0 || start+length > x.Shape[dim] {
		panic(fmt.Sprintf("tensor: Narrow of %v along %d to [%d, %d)", x.Shape, dim, start, start+length))
	}
	shape := append([]int(nil), x.Shape...)
	shape[dim] = length
	out := New(shape...)
	outer, inner := numel(x.Shape[:dim]), numel(x.Shape[dim+1:])
	src, n := x.Shape[dim]*inner, length*inner
	for o := 0; o < outer; o++ {
		copy(out.Data[o*n:(o+1)*n], x.Data[o*src+start*inner:])
	}
	record(out, []*Tensor{x}, func(g []float32, d [][]float32) {
		for o := 0; o < outer; o++ {
			addInto(d[0][o*src+start*inner:o*src+start*inner+n], g[o*n:(o+1)*n])
		}
	})
	return out
}

// Gather returns the rows of table [num, dim] at ids as [batch, len(ids)/batch,
// dim] (torch.nn.functional.embedding); the backward step adds each output
// row's gradient to its table row. The table may be half-precision (an
// embedding weight); only the rows looked up are widened to float32. It
// panics on an id outside the table; callers validate ids.
func Gather(table *Tensor, ids []int, batch int) *Tensor {
	dim := table.Shape[1]
	out := New(batch, len(ids)/batch, dim)
	for i, id := range ids {
		dst := out.Data[i*dim : (i+1)*dim]
		if table.IsHalf() { // widen only the rows looked up
			halfToFloat32(dst, table.Half[id*dim:(id+1)*dim], table.HalfKind)
		} else {
			copy(dst, table.Data[id*dim:(id+1)*dim])
		}
	}
	ids = append([]int(nil), ids...)
	record(out, []*Tensor{table}, func(g []float32, d [][]float32) {
		for i, id := range ids {
			addInto(d[0][id*dim:(id+1)*dim], g[i*dim:(i+1)*dim])
		}
	})
	return out
}
