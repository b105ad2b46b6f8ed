package tensor

import (
	"fmt"
	"math"
	"sync"
)

// HalfKind is the 16-bit floating-point format of a half-precision tensor's
// storage (see Tensor.Half). Both formats widen to float32 exactly.
type HalfKind uint8

const (
	// F16 is IEEE 754 binary16 (torch.float16): 1 sign, 5 exponent and
	// 10 fraction bits.
	F16 HalfKind = 1 + iota
	// BF16 is bfloat16 (torch.bfloat16): the high 16 bits of a float32.
	BF16
)

// String returns "F16" or "BF16", the safetensors dtype names.
func (k HalfKind) String() string {
	switch k {
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	}
	return fmt.Sprintf("HalfKind(%d)", uint8(k))
}

// FromHalf wraps bits (not copied), the row-major elements of a tensor of the
// given shape in the 16-bit format kind, as a half-precision tensor: its
// Data is nil and its values are bits widened exactly to float32. Such a
// tensor takes half the memory of a float32 one; Linear, Conv2d and MatMul
// accept it as their weight (MatMul as either operand) and Gather as its
// table, and Float32 converts it for everything else. It panics if
// len(bits) does not equal the product of shape or kind is not F16 or BF16.
func FromHalf(bits []uint16, kind HalfKind, shape ...int) *Tensor {
	if len(bits) != numel(shape) {
		panic(fmt.Sprintf("tensor: %d values do not fill shape %v", len(bits), shape))
	}
	if kind != F16 && kind != BF16 {
		panic(fmt.Sprintf("tensor: FromHalf of unknown kind %v", kind))
	}
	if bits == nil {
		bits = []uint16{} // non-nil, so that an empty tensor stays half
	}
	return &Tensor{Shape: append([]int(nil), shape...), Half: bits, HalfKind: kind}
}

// IsHalf reports whether t stores its values in 16 bits (Half), not in Data.
func (t *Tensor) IsHalf() bool { return t.Half != nil }

// Float32 returns t itself when it is a float32 tensor, and otherwise a new
// float32 tensor of the same shape holding t's values widened exactly (every
// F16 and BF16 value, subnormals, infinities and NaN payloads included, is a
// float32). Code that needs Data (an optimiser, a checkpoint writer) calls it
// on tensors that may come from a half-precision checkpoint.
func (t *Tensor) Float32() *Tensor {
	if !t.IsHalf() {
		return t
	}
	out := &Tensor{Shape: append([]int(nil), t.Shape...), Data: make([]float32, len(t.Half))}
	halfToFloat32(out.Data, t.Half, t.HalfKind)
	return out
}

// f16Table maps every binary16 bit pattern to its float32 value; built on
// first use (256 KiB).
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = f16ToFloat32(uint16(h))
	}
	return &t
})

// f16ToFloat32 decodes one binary16 number exactly: normal numbers rebias
// the exponent, subnormals (m·2⁻²⁴) are exact float32 products, and
// infinities and NaNs keep their sign and payload.
func f16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0: // zero or subnormal
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// halfToFloat32 widens src, in format kind, into dst (same length), in
// parallel for large slices.
func halfToFloat32(dst []float32, src []uint16, kind HalfKind) {
	dst = dst[:len(src)]
	switch kind {
	case F16:
		table := f16Table()
		parallelFor(len(src), 1<<16, func(lo, hi int) {
			d, s := dst[lo:hi], src[lo:hi]
			for i, h := range s {
				d[i] = table[h]
			}
		})
	case BF16:
		parallelFor(len(src), 1<<16, func(lo, hi int) {
			d, s := dst[lo:hi], src[lo:hi]
			for i, h := range s {
				d[i] = math.Float32frombits(uint32(h) << 16)
			}
		})
	default:
		panic(fmt.Sprintf("tensor: half-precision tensor of unknown kind %v", kind))
	}
}

// scratchPools hold float32 buffers (*[]float32) into which ops widen a
// half-precision weight, or build another temporary, for one call. Each call takes its own buffer, so
// models running concurrently in one process never share one; a buffer
// grows to the largest weight it has held.
var scratchPools [2]sync.Pool // small buffers and large ones (scratchClass)

// weightData returns the float32 values of w for an op's matrix product:
// w.Data itself for a float32 tensor. A half-precision w is widened into a
// pooled scratch buffer, returned as scratch for the caller to hand back with
// putScratch once the op no longer reads it, or, when keep is true (an input
// of the op is tracked, so its backward step will read the values later),
// into a private slice and scratch is nil.
func weightData(w *Tensor, keep bool) (data []float32, scratch *[]float32) {
	if !w.IsHalf() {
		return w.Data, nil
	}
	if keep {
		return w.Float32().Data, nil
	}
	s := getScratch(len(w.Half))
	halfToFloat32(*s, w.Half, w.HalfKind)
	return *s, s
}

// getScratch returns a pooled buffer of n floats with undefined contents,
// for the caller to overwrite and hand back with putScratch: a large
// temporary (an im2col matrix, a widened weight) then costs neither an
// allocation nor the runtime's zeroing of it on every call.
//
// Buffers under minPooledLen floats have a pool of their own: a small
// request would otherwise take whatever large buffer the pool hands out,
// and the next large request would allocate another (garbage that raises
// the peak RSS of a whole generation, whose heap runs close to the GC's
// goal).
func getScratch(n int) *[]float32 {
	s, _ := scratchPools[scratchClass(n)].Get().(*[]float32)
	if s == nil || cap(*s) < n {
		b := makeFloats(n) // a smaller pooled buffer is dropped
		s = &b
	}
	*s = (*s)[:n]
	return s
}

// putScratch returns a buffer from weightData to the pool; nil is ignored.
func putScratch(s *[]float32) {
	if s != nil {
		scratchPools[scratchClass(cap(*s))].Put(s)
	}
}

// scratchClass is the pool of a scratch buffer of n floats: 0 small, 1 large.
func scratchClass(n int) int {
	if n < minPooledLen {
		return 0
	}
	return 1
}

// mustFloat32 panics if any of ts (nil entries allowed) is a half-precision
// tensor: op reads Data and accepts only float32 tensors.
func mustFloat32(op string, ts ...*Tensor) {
	for _, t := range ts {
		if t != nil && t.IsHalf() {
			panic(fmt.Sprintf("tensor: %s of a half-precision tensor %v (convert it with Float32)", op, t.Shape))
		}
	}
}
