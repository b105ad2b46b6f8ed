package safetensors

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// minifloat describes a small binary floating-point format for the
// reference conversions below, which work from the definition of the
// format (sign, biased exponent, fraction) in float64 rather than by bit
// shuffling.
type minifloat struct {
	name         string
	ebits, mbits uint
	fn           bool // "finite" variant (e4m3fn): no infinities, only all-ones is NaN
}

var (
	fmtF16    = minifloat{name: "F16", ebits: 5, mbits: 10}
	fmtBF16   = minifloat{name: "BF16", ebits: 8, mbits: 7}
	fmtE5M2   = minifloat{name: "F8_E5M2", ebits: 5, mbits: 2}
	fmtE4M3FN = minifloat{name: "F8_E4M3", ebits: 4, mbits: 3, fn: true}
)

// value returns the value of bits in format m, and whether it is NaN.
func (m minifloat) value(bits uint32) (float64, bool) {
	neg := bits>>(m.ebits+m.mbits)&1 == 1
	e := int(bits>>m.mbits) & (1<<m.ebits - 1)
	f := bits & (1<<m.mbits - 1)
	emax := 1<<m.ebits - 1
	bias := 1<<(m.ebits-1) - 1
	var v float64
	switch {
	case m.fn && e == emax && f == 1<<m.mbits-1:
		return math.NaN(), true
	case !m.fn && e == emax && f != 0:
		return math.NaN(), true
	case !m.fn && e == emax:
		v = math.Inf(1)
	case e == 0:
		v = math.Ldexp(float64(f), 1-bias-int(m.mbits))
	default:
		v = math.Ldexp(float64(f|1<<m.mbits), e-bias-int(m.mbits))
	}
	if neg {
		v = math.Copysign(v, -1)
	}
	return v, false
}

// nearest returns the bits of format m nearest to the float32 x, ties to
// the even bit pattern, by binary search over the non-negative finite
// values (which increase with their bit patterns). maxFinite is the bit
// pattern of the largest finite value. Beyond it, rounding goes to
// infinity as if the exponent range continued.
func (m minifloat) nearest(x float32, maxFinite uint32) uint32 {
	signBit := uint32(1) << (m.ebits + m.mbits)
	inf := uint32(1<<m.ebits-1) << m.mbits
	a := math.Abs(float64(x))
	sign := uint32(0)
	if math.Signbit(float64(x)) {
		sign = signBit
	}
	val := func(b uint32) float64 { v, _ := m.value(b); return v }
	// h = largest pattern with val(h) <= a.
	h := uint32(sort.Search(int(maxFinite)+1, func(i int) bool { return val(uint32(i)) > a })) - 1
	lo := val(h)
	var hi float64
	if h == maxFinite {
		hi = lo + (lo - val(h-1)) // the next value of an unbounded exponent range
	} else {
		hi = val(h + 1)
	}
	switch {
	case a-lo < hi-a:
	case a-lo > hi-a || h&1 == 1:
		h++
	}
	if h > maxFinite {
		h = inf
	}
	return sign | h
}

func checkDecode(t *testing.T, m minifloat, conv func(uint32) float32) {
	t.Helper()
	for b := uint32(0); b < 1<<(1+m.ebits+m.mbits); b++ {
		got := conv(b)
		want, nan := m.value(b)
		neg := b>>(m.ebits+m.mbits) == 1
		if nan {
			if !math.IsNaN(float64(got)) || math.Signbit(float64(got)) != neg {
				t.Errorf("%s %#x: got %v (%#08x), want a NaN with sign %v", m.name, b, got, math.Float32bits(got), neg)
			}
			continue
		}
		if math.Float32bits(got) != math.Float32bits(float32(want)) || float64(float32(want)) != want {
			t.Errorf("%s %#x: got %v (%#08x), want %v", m.name, b, got, math.Float32bits(got), want)
		}
	}
}

// TestDecodeExhaustive checks every bit pattern of the 16- and 8-bit
// formats against the reference decoding.
func TestDecodeExhaustive(t *testing.T) {
	checkDecode(t, fmtF16, func(b uint32) float32 { return F16ToFloat32(uint16(b)) })
	checkDecode(t, fmtBF16, func(b uint32) float32 { return BF16ToFloat32(uint16(b)) })
	// The bulk decoders, through raw little-endian bytes.
	bulk := func(d DType) func(uint32) float32 {
		return func(b uint32) float32 {
			var buf [2]byte
			binary.LittleEndian.PutUint16(buf[:], uint16(b))
			var out [1]float32
			decode(out[:], buf[:d.Size()], d)
			return out[0]
		}
	}
	checkDecode(t, fmtF16, bulk(F16))
	checkDecode(t, fmtBF16, bulk(BF16))
	checkDecode(t, fmtE5M2, bulk(F8E5M2))
	checkDecode(t, fmtE4M3FN, bulk(F8E4M3))
}

// TestF16NaNPayload checks that F16ToFloat32 keeps NaN payloads.
func TestF16NaNPayload(t *testing.T) {
	for _, h := range []uint16{0x7c01, 0x7e00, 0x7fff, 0xfc01, 0xfe00, 0x7d55} {
		want := uint32(h&0x8000)<<16 | 0x7f800000 | uint32(h&0x3ff)<<13
		if got := math.Float32bits(F16ToFloat32(h)); got != want {
			t.Errorf("F16ToFloat32(%#04x) = %#08x, want %#08x", h, got, want)
		}
	}
}

// encodeInputs returns float32 values that exercise rounding to format m:
// every finite value, the midpoints between neighbours and the float32
// values either side of them, both signs, specials and random bit patterns.
func encodeInputs(m minifloat, maxFinite uint32) []float32 {
	val := func(b uint32) float32 { v, _ := m.value(b); return float32(v) }
	var xs []float32
	for b := uint32(0); b <= maxFinite; b++ {
		lo := val(b)
		var hi float32
		if b == maxFinite {
			hi = lo + (lo - val(b-1))
		} else {
			hi = val(b + 1)
		}
		mid := float32((float64(lo) + float64(hi)) / 2) // exact
		xs = append(xs, lo, mid,
			math.Nextafter32(mid, 0), math.Nextafter32(mid, float32(math.Inf(1))),
			math.Nextafter32(lo, float32(math.Inf(1))))
	}
	xs = append(xs, float32(math.Inf(1)), math.MaxFloat32, math.SmallestNonzeroFloat32, 1e-30, 1e30)
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 18 {
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	n := len(xs)
	for _, x := range xs[:n] {
		xs = append(xs, -x)
	}
	return xs
}

func checkEncode(t *testing.T, m minifloat, maxFinite uint32, conv func(float32) uint16) {
	t.Helper()
	fails := 0
	for _, x := range encodeInputs(m, maxFinite) {
		got := uint32(conv(x))
		if math.IsNaN(float64(x)) {
			if _, nan := m.value(got); !nan {
				t.Errorf("%s(%v) = %#x, want a NaN", m.name, x, got)
			}
			if got>>(m.ebits+m.mbits) != math.Float32bits(x)>>31 {
				t.Errorf("%s(%#08x) = %#x, NaN sign lost", m.name, math.Float32bits(x), got)
			}
			continue
		}
		if want := m.nearest(x, maxFinite); got != want {
			t.Errorf("%s(%v = %#08x) = %#x, want %#x", m.name, x, math.Float32bits(x), got, want)
			if fails++; fails > 20 {
				t.Fatal("too many failures")
			}
		}
	}
}

// TestEncode checks Float32ToF16 and Float32ToBF16 against the reference
// nearest-value search.
func TestEncode(t *testing.T) {
	checkEncode(t, fmtF16, 0x7bff, Float32ToF16)
	checkEncode(t, fmtBF16, 0x7f7f, Float32ToBF16)
}

// TestRoundTripExhaustive checks that every non-NaN 16-bit value survives
// conversion to float32 and back.
func TestRoundTripExhaustive(t *testing.T) {
	for b := 0; b < 1<<16; b++ {
		h := uint16(b)
		if got := Float32ToF16(F16ToFloat32(h)); got != h && h&0x7fff <= 0x7c00 {
			t.Errorf("F16 %#04x round-trips to %#04x", h, got)
		}
		if got := Float32ToBF16(BF16ToFloat32(h)); got != h && h&0x7fff <= 0x7f80 {
			t.Errorf("BF16 %#04x round-trips to %#04x", h, got)
		}
	}
}

// TestRoundTripValues checks float32 → F16/BF16 → float32 for
// representative values.
func TestRoundTripValues(t *testing.T) {
	inf := float32(math.Inf(1))
	tests := []struct {
		in, f16, bf16 float32
	}{
		{0, 0, 0},
		{1, 1, 1},
		{-2.5, -2.5, -2.5},
		{0.1, 0.0999755859375, 0.10009765625},
		{1.0 / 3, 0.333251953125, 0.333984375},
		{3.14159265, 3.140625, 3.140625},
		{65504, 65504, 65536},
		{65519.996, 65504, 65536},
		{65520, inf, 65536},
		{1e5, inf, 99840},
		{6.1035156e-05, 6.1035156e-05, 6.1035156e-05}, // smallest F16 normal
		{5.9604645e-08, 5.9604645e-08, 5.9604645e-08}, // smallest F16 subnormal
		{2.9802322e-08, 0, 2.9802322e-08},             // half of it: tie to even (0)
		{2.9802326e-08, 5.9604645e-08, 2.9802322e-08}, // just above half
		{1e-8, 0, 1.0011718e-08},
		{1.0009765625, 1.0009765625, 1}, // 1 + 2^-10
		{1.00048828125, 1, 1},           // 1 + 2^-11: tie to even (1)
		{1.00146484375, 1.001953125, 1}, // 1 + 3·2^-11: tie to even (1 + 2^-9)
		{-inf, -inf, -inf},
		{1.7014118e38, inf, 1.7014118e38},
		{math.MaxFloat32, inf, inf},
	}
	for _, tt := range tests {
		if got := F16ToFloat32(Float32ToF16(tt.in)); got != tt.f16 {
			t.Errorf("F16 round trip of %v = %v, want %v", tt.in, got, tt.f16)
		}
		if got := BF16ToFloat32(Float32ToBF16(tt.in)); got != tt.bf16 {
			t.Errorf("BF16 round trip of %v = %v, want %v", tt.in, got, tt.bf16)
		}
	}
	// Signed zero and NaN.
	if b := Float32ToF16(float32(math.Copysign(0, -1))); b != 0x8000 {
		t.Errorf("F16(-0) = %#04x, want 0x8000", b)
	}
	if v := F16ToFloat32(Float32ToF16(float32(math.NaN()))); !math.IsNaN(float64(v)) {
		t.Errorf("F16 round trip of NaN = %v", v)
	}
	if v := BF16ToFloat32(Float32ToBF16(math.Float32frombits(0x7f800001))); !math.IsNaN(float64(v)) {
		t.Errorf("BF16 round trip of a NaN with a low payload = %v", v)
	}
}

// TestDecodeIntegers checks the integer and BOOL conversions.
func TestDecodeIntegers(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		d    DType
		raw  []byte
		want float32
	}{
		{I8, []byte{0xff}, -1},
		{U8, []byte{0xff}, 255},
		{Bool, []byte{2}, 1},
		{Bool, []byte{0}, 0},
		{I16, le.AppendUint16(nil, 0x8000), -32768},
		{U16, le.AppendUint16(nil, 0x8000), 32768},
		{I32, le.AppendUint32(nil, 0xfffffffe), -2},
		{U32, le.AppendUint32(nil, 0xfffffffe), 4294967294},
		{I64, le.AppendUint64(nil, 1<<40), 1 << 40},
		{I64, le.AppendUint64(nil, math.MaxUint64), -1},
		{U64, le.AppendUint64(nil, math.MaxUint64), 1 << 64},
		{F64, le.AppendUint64(nil, math.Float64bits(0.1)), 0.1},
		{F32, le.AppendUint32(nil, math.Float32bits(-3.5)), -3.5},
	}
	for _, tt := range tests {
		var got [1]float32
		decode(got[:], tt.raw, tt.d)
		if got[0] != tt.want {
			t.Errorf("%s % x = %v, want %v", tt.d, tt.raw, got[0], tt.want)
		}
	}
}

func TestDTypeSize(t *testing.T) {
	sizes := map[DType]int{F64: 8, F32: 4, F16: 2, BF16: 2, F8E4M3: 1, F8E5M2: 1,
		I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, Bool: 1,
		"f32": 0, "": 0, "F4": 0, "C64": 0}
	for d, want := range sizes {
		if got := d.Size(); got != want {
			t.Errorf("%q.Size() = %d, want %d", d, got, want)
		}
	}
}

var sinkF32 []float32

func benchDecode(b *testing.B, d DType, n int) {
	// Weights-like values: N(0, 0.1²).
	r := rand.New(rand.NewPCG(3, 4))
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(r.NormFloat64() * 0.1)
	}
	src := encode(nil, vals, d)
	dst := make([]float32, n)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		decode(dst, src, d)
	}
	sinkF32 = dst
}

func BenchmarkDecodeF16_1M(b *testing.B)  { benchDecode(b, F16, 1<<20) }
func BenchmarkDecodeBF16_1M(b *testing.B) { benchDecode(b, BF16, 1<<20) }
func BenchmarkDecodeF32_1M(b *testing.B)  { benchDecode(b, F32, 1<<20) }
