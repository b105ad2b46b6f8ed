package safetensors

import (
	"encoding/binary"
	"math"
)

// DType is the element type of a tensor, spelled as in the "dtype" field of
// a safetensors header.
type DType string

// The element types Pigment knows. Their names and sizes follow the
// safetensors specification (https://github.com/huggingface/safetensors).
// All of them can be read as float32; F32, F16 and BF16 can also be written.
const (
	F64    DType = "F64"     // IEEE 754 binary64
	F32    DType = "F32"     // IEEE 754 binary32
	F16    DType = "F16"     // IEEE 754 binary16
	BF16   DType = "BF16"    // bfloat16: the high 16 bits of a binary32
	F8E4M3 DType = "F8_E4M3" // float8 e4m3fn: no infinities, NaN is S.1111.111
	F8E5M2 DType = "F8_E5M2" // float8 e5m2: the high 8 bits of a binary16
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	Bool   DType = "BOOL" // one byte; zero is false, anything else true
)

// Size returns the number of bytes per element of d, or 0 if d is not a
// known dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case F8E4M3, F8E5M2, I8, U8, Bool:
		return 1
	}
	return 0
}

// F16ToFloat32 returns the value of the IEEE 754 binary16 number with bits h.
// The conversion is exact: subnormals are normalised, infinities stay
// infinite and a NaN keeps its sign and payload.
func F16ToFloat32(h uint16) float32 {
	// Move exponent and fraction into place and rebias the exponent
	// (F. Giesen, "half_to_float_fast5").
	bits := uint32(h&0x7fff) << 13
	exp := bits & 0x0f800000
	bits += (127 - 15) << 23
	switch exp {
	case 0x0f800000: // infinity or NaN: extend the exponent to all ones
		bits += (128 - 16) << 23
	case 0: // zero or subnormal: renormalise with an exact float subtraction
		bits += 1 << 23
		bits = math.Float32bits(math.Float32frombits(bits) - 6.103515625e-05) // 2⁻¹⁴
	}
	return math.Float32frombits(bits | uint32(h&0x8000)<<16)
}

// Float32ToF16 returns the IEEE 754 binary16 bits nearest to f, ties to
// even. Values beyond the binary16 range become infinities, values too small
// become (signed) zero, and a NaN stays a NaN with the same sign.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		// Keep the high payload bits and set the quiet bit so that the
		// result cannot collapse into an infinity.
		return sign | 0x7e00 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // biased binary16 exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal (or zero) in binary16: the result is
		// round(significand · 2^(e-14)) units of 2⁻²⁴.
		if e < -10 {
			return sign // below half the smallest subnormal
		}
		m := mant | 0x800000
		s := uint(14 - e)
		r := m >> s
		rem := m & (1<<s - 1)
		half := uint32(1) << (s - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++ // may carry into the smallest normal, which is correct
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // a carry into the exponent (up to infinity) is correct
	}
	return sign | uint16(r)
}

// BF16ToFloat32 returns the value of the bfloat16 number with bits h, which
// are the high 16 bits of a float32.
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBF16 returns the bfloat16 bits nearest to f, ties to even.
// Values beyond the bfloat16 range become infinities and a NaN stays a NaN
// with the same sign.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // NaN: set the quiet bit
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// f8e4m3ToFloat32 returns the value of the float8 e4m3fn number with bits h:
// bias 7, no infinities, S.1111.111 is NaN.
func f8e4m3ToFloat32(h uint8) float32 {
	sign := uint32(h&0x80) << 24
	exp := uint32(h>>3) & 0xf
	mant := uint32(h & 7)
	switch {
	case exp == 0xf && mant == 7:
		return math.Float32frombits(sign | 0x7fc00000)
	case exp == 0:
		// Subnormal: mant·2⁻⁹, exact in float32.
		v := float32(mant) / 512
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-7)<<23 | mant<<20)
}

// decode converts len(dst) elements of type d from the little-endian bytes
// src to float32. The caller guarantees len(src) == len(dst)*d.Size() and
// that d is known.
func decode(dst []float32, src []byte, d DType) {
	le := binary.LittleEndian
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case F16:
		decodeF16(dst, src)
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(le.Uint16(src[2*i:])) << 16)
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case F8E4M3:
		for i := range dst {
			dst[i] = f8e4m3ToFloat32(src[i])
		}
	case F8E5M2:
		for i := range dst {
			dst[i] = F16ToFloat32(uint16(src[i]) << 8)
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(src[8*i:])))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(src[4*i:])))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:])))
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case U64:
		for i := range dst {
			dst[i] = float32(le.Uint64(src[8*i:]))
		}
	case U32:
		for i := range dst {
			dst[i] = float32(le.Uint32(src[4*i:]))
		}
	case U16:
		for i := range dst {
			dst[i] = float32(le.Uint16(src[2*i:]))
		}
	case U8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case Bool:
		for i := range dst {
			if src[i] != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	default:
		panic("safetensors: decode of unknown dtype " + string(d))
	}
}

func decodeF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = F16ToFloat32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
	}
}

// encode appends the little-endian bytes of src converted to d (F32, F16 or
// BF16) to dst.
func encode(dst []byte, src []float32, d DType) []byte {
	le := binary.LittleEndian
	switch d {
	case F32:
		for _, v := range src {
			dst = le.AppendUint32(dst, math.Float32bits(v))
		}
	case F16:
		for _, v := range src {
			dst = le.AppendUint16(dst, Float32ToF16(v))
		}
	case BF16:
		for _, v := range src {
			dst = le.AppendUint16(dst, Float32ToBF16(v))
		}
	default:
		panic("safetensors: encode to unsupported dtype " + string(d))
	}
	return dst
}
