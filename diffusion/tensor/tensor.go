// Package tensor is Pigment's small float32 tensor type and the numeric
// operations the Stable Diffusion models need, with the reverse-mode
// automatic differentiation the trainer runs the same model code under.
//
// A Tensor is a dense row-major array: the last dimension varies fastest, so
// a 4-D image batch is laid out NCHW ([batch, channels, height, width]) and a
// token sequence is [batch, seq, hidden]. There is no lazy graph; every op
// runs when called. Tensors watched by a Tape (model parameters during
// training) make every op that reads them record its backward step; for the
// untracked tensors of inference that costs one nil check per op. Heavy work (matrix products and
// convolutions) goes through the BLAS variable, a BLAS-shaped Sgemm
// interface: by default Packed, a cache-blocked packed SGEMM with AVX-512
// and AVX2+FMA micro-kernels in assembly and a pure-Go fallback; gonum's
// blas32 or any other implementation can stand behind the same interface.
//
// Model weights may instead be stored in 16 bits, as fp16 and bf16
// checkpoints ship them (FromHalf): Linear, Conv2d, MatMul and Gather widen
// them exactly to float32 as they run, so results are bit for bit those of
// float32 weights at half the memory.
//
// Ops follow gonum's conventions: the destination comes first where there is
// one (AddTo(dst, a, b)), doc comments state the shapes, and programmer errors
// (mismatched shapes) panic with a "tensor: " prefixed message. Errors from the
// outside world (files, user input) are handled by the callers, never here.
package tensor

import (
	"fmt"
	"math"
)

// Tensor is a dense row-major float32 array of the given Shape.
// len(Data) always equals the product of Shape, except for a half-precision
// tensor.
//
// A half-precision tensor (FromHalf; IsHalf reports it) keeps its values in
// 16 bits, as fp16 and bf16 checkpoints store model weights: Half holds the
// elements in the format HalfKind, len(Half) equals the product of Shape,
// Data is nil, and the values are Half widened exactly to float32. Linear,
// Conv2d and MatMul take such a tensor as a weight and Gather as its table,
// giving bit for bit the results of its Float32 conversion; every other op
// panics on one. Half-precision tensors cannot be tracked for training.
type Tensor struct {
	Shape []int
	Data  []float32

	// Half is the 16-bit storage of a half-precision tensor, nil otherwise.
	Half []uint16
	// HalfKind is the format of Half (F16 or BF16); zero when Half is nil.
	HalfKind HalfKind

	// ag is the tensor's node on a Tape when it is tracked for training
	// (see autograd.go); nil for every tensor of plain inference.
	ag *gradNode
}

// New returns a zero-filled tensor of the given shape, in storage given
// back by Release when a buffer of that size is pooled (see pool.go).
// It panics if a dimension is negative.
func New(shape ...int) *Tensor {
	n := numel(shape)
	if b := get(n); b != nil {
		parallelFor(n, 1<<16, func(lo, hi int) { clear(b[lo:hi]) })
		return &Tensor{Shape: append([]int(nil), shape...), Data: b}
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: makeFloats(n)}
}

// FromData wraps data (not copied) as a tensor of the given shape.
// It panics if len(data) does not equal the product of shape.
func FromData(data []float32, shape ...int) *Tensor {
	if len(data) != numel(shape) {
		panic(fmt.Sprintf("tensor: %d values do not fill shape %v", len(data), shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Full returns a tensor of the given shape with every element set to v.
func Full(v float32, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = v
	}
	return t
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// Len returns the number of elements.
func (t *Tensor) Len() int {
	if t.Half != nil {
		return len(t.Half)
	}
	return len(t.Data)
}

// Dims returns the number of dimensions.
func (t *Tensor) Dims() int { return len(t.Shape) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Clone returns a deep copy of t (half-precision storage stays half).
func (t *Tensor) Clone() *Tensor {
	if t.IsHalf() {
		return &Tensor{Shape: append([]int(nil), t.Shape...), Half: append([]uint16{}, t.Half...), HalfKind: t.HalfKind}
	}
	out := &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
	record(out, []*Tensor{t}, func(g []float32, d [][]float32) { addInto(d[0], g) })
	return out
}

// Reshape returns a view of t with a new shape sharing t's data (or its
// half-precision storage). One dimension may be -1 and is then inferred. It
// panics if the element counts differ.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	shape = append([]int(nil), shape...)
	infer := -1
	n := 1
	for i, d := range shape {
		if d == -1 {
			if infer >= 0 {
				panic("tensor: more than one -1 in Reshape")
			}
			infer = i
			continue
		}
		n *= d
	}
	size := t.Len()
	if infer >= 0 {
		if n == 0 || size%n != 0 {
			panic(fmt.Sprintf("tensor: cannot reshape %v to %v", t.Shape, shape))
		}
		shape[infer] = size / n
		n *= shape[infer]
	}
	if n != size {
		panic(fmt.Sprintf("tensor: cannot reshape %v to %v", t.Shape, shape))
	}
	if t.IsHalf() {
		return &Tensor{Shape: shape, Half: t.Half, HalfKind: t.HalfKind}
	}
	out := &Tensor{Shape: shape, Data: t.Data}
	record(out, []*Tensor{t}, func(g []float32, d [][]float32) { addInto(d[0], g) })
	return out
}

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b *Tensor) bool {
	if len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}

func mustSameShape(op string, a, b *Tensor) {
	if !SameShape(a, b) {
		panic(fmt.Sprintf("tensor: %s shape mismatch %v vs %v", op, a.Shape, b.Shape))
	}
}

// MaxAbsDiff returns max |a-b| over all elements and the flat index where it
// occurs; NaN in either input counts as an infinite difference. Either may be
// half-precision. It panics if the shapes differ.
func MaxAbsDiff(a, b *Tensor) (float64, int) {
	mustSameShape("MaxAbsDiff", a, b)
	a, b = a.Float32(), b.Float32()
	worst, at := 0.0, -1
	for i := range a.Data {
		d := math.Abs(float64(a.Data[i]) - float64(b.Data[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > worst || at < 0 {
			worst, at = d, i
		}
	}
	return worst, at
}

// String describes the shape, not the values.
func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v", t.Shape) }
