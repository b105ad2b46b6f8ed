package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// randHalf returns n random finite 16-bit values of kind of magnitude about
// 2⁻⁶…4 (weight-like), with both signs, including a few zeros and, for F16,
// subnormals.
func randHalf(r *rand.Rand, kind HalfKind, n int) []uint16 {
	bits := make([]uint16, n)
	for i := range bits {
		sign := uint16(r.IntN(2)) << 15
		switch kind {
		case F16:
			exp := uint16(9 + r.IntN(8)) // 2⁻⁶ … 2¹
			if i%97 == 3 {
				exp = 0 // subnormal or zero
			}
			bits[i] = sign | exp<<10 | uint16(r.IntN(1<<10))
		case BF16:
			exp := uint16(121 + r.IntN(8))
			bits[i] = sign | exp<<7 | uint16(r.IntN(1<<7))
		}
	}
	return bits
}

// sameBits reports the first index where got and want differ bit for bit.
func sameBits(t *testing.T, name string, got, want *Tensor) {
	t.Helper()
	if !SameShape(got, want) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
	}
	if got.IsHalf() || want.IsHalf() {
		t.Fatalf("%s: result is half-precision", name)
	}
	for i := range want.Data {
		if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
			t.Fatalf("%s: element %d = %v, want %v (bit for bit)", name, i, got.Data[i], want.Data[i])
		}
	}
}

func TestHalfStorage(t *testing.T) {
	for _, kind := range []HalfKind{F16, BF16} {
		t.Run(kind.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(kind)))
			bits := randHalf(r, kind, 2*3*4)
			h := FromHalf(bits, kind, 2, 3, 4)
			if !h.IsHalf() || h.Data != nil || h.HalfKind != kind {
				t.Fatalf("FromHalf: IsHalf %v, Data %v, kind %v", h.IsHalf(), h.Data, h.HalfKind)
			}
			if h.Len() != 24 || h.Dims() != 3 || h.Dim(-1) != 4 {
				t.Errorf("Len %d Dims %d Dim(-1) %d", h.Len(), h.Dims(), h.Dim(-1))
			}
			f := h.Float32()
			if f.IsHalf() || len(f.Data) != 24 || !SameShape(f, h) {
				t.Fatalf("Float32: %v with %d values", f.Shape, len(f.Data))
			}
			for i, b := range bits {
				var want float32
				if kind == F16 {
					want = f16ToFloat32(b)
				} else {
					want = math.Float32frombits(uint32(b) << 16)
				}
				if f.Data[i] != want {
					t.Fatalf("element %d = %v, want %v", i, f.Data[i], want)
				}
			}
			if f.Float32() != f {
				t.Error("Float32 of a float32 tensor is not the tensor itself")
			}
			// Views and copies keep the storage.
			v := h.Reshape(6, -1)
			if !v.IsHalf() || v.Shape[1] != 4 || &v.Half[0] != &bits[0] {
				t.Errorf("Reshape: %v half %v", v.Shape, v.IsHalf())
			}
			c := h.Clone()
			if !c.IsHalf() || &c.Half[0] == &bits[0] || c.HalfKind != kind {
				t.Error("Clone does not deep-copy the half storage")
			}
			sameBits(t, "Clone", c.Float32(), f)
			if d := h.Detach(); !d.IsHalf() || d.HalfKind != kind {
				t.Error("Detach lost the half storage")
			}
			if d, _ := MaxAbsDiff(h, f); d != 0 {
				t.Errorf("MaxAbsDiff(half, its Float32) = %g", d)
			}
			if e := FromHalf(nil, kind, 0, 3); !e.IsHalf() || e.Len() != 0 {
				t.Error("empty half tensor is not half")
			}
		})
	}
}

func TestF16DecodeSpecials(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504},
		{0x0001, float32(math.Ldexp(1, -24))}, {0x03ff, float32(math.Ldexp(1023, -24))},
		{0x0400, float32(math.Ldexp(1, -14))}, {0x3555, 0.333251953125},
		{0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	} {
		if got := f16Table()[c.h]; got != c.want {
			t.Errorf("F16 %#04x = %v, want %v", c.h, got, c.want)
		}
	}
	if got := f16Table()[0x8000]; got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("F16 0x8000 = %v, want -0", got)
	}
	if got := f16Table()[0x7e01]; !math.IsNaN(float64(got)) || math.Float32bits(got) != 0x7fc02000 {
		t.Errorf("F16 NaN 0x7e01 = %#08x, want payload kept (0x7fc02000)", math.Float32bits(got))
	}
}

func TestHalfPanics(t *testing.T) {
	h := FromHalf(make([]uint16, 6), F16, 2, 3)
	x := New(2, 3)
	for _, c := range []struct {
		name, want string
		f          func()
	}{
		{"FromHalf size", "do not fill", func() { FromHalf(make([]uint16, 5), F16, 2, 3) }},
		{"FromHalf kind", "unknown kind", func() { FromHalf(make([]uint16, 6), 0, 2, 3) }},
		{"Watch", "Watch of a half-precision tensor", func() { NewTape().Watch(h) }},
		{"Add", "Add of a half-precision tensor", func() { Add(x, h) }},
		{"Scale", "Scale of a half-precision tensor", func() { Scale(h, 2) }},
		{"SiLU", "SiLU of a half-precision tensor", func() { SiLU(h) }},
		{"LayerNorm weight", "LayerNorm of a half-precision tensor", func() { LayerNorm(x, FromHalf(make([]uint16, 3), F16, 3), nil, 1e-5) }},
		{"GroupNorm weight", "GroupNorm of a half-precision tensor", func() {
			GroupNorm(New(1, 2, 2, 2), 1, FromHalf(make([]uint16, 2), BF16, 2), nil, 1e-5)
		}},
		{"Linear input", "Linear input of a half-precision tensor", func() { Linear(h, New(4, 3), nil) }},
		{"Linear bias", "Linear bias of a half-precision tensor", func() { Linear(x, New(4, 3), FromHalf(make([]uint16, 4), F16, 4)) }},
		{"Conv2d input", "Conv2d input of a half-precision tensor", func() { Conv2d(h.Reshape(1, 1, 2, 3), New(1, 1, 1, 1), nil, Conv2dParams{}) }},
		{"Concat", "Concat of a half-precision tensor", func() { Concat(0, x, h) }},
		{"Softmax", "Softmax of a half-precision tensor", func() { Softmax(h) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, c.want) {
					t.Errorf("panic %q, want one containing %q", msg, c.want)
				}
			}()
			c.f()
		})
	}
}

// halfOpCase is one op run with a half-precision weight and with its
// Float32 conversion.
type halfOpCase struct {
	name string
	// run applies the op to x with weight w (half or float32).
	run func(w *Tensor) *Tensor
	// shape of the weight.
	shape []int
}

func halfOpCases(r *rand.Rand) []halfOpCase {
	x2 := randn(r, 2, 5, 24)
	x4 := randn(r, 2, 6, 9, 11)
	bias7 := randn(r, 7)
	bias5 := randn(r, 5)
	a := randn(r, 3, 4, 16)
	ids := []int{0, 3, 3, 9, 1, 7}
	xl := randn(r, 3, 512)
	return []halfOpCase{
		{"Linear", func(w *Tensor) *Tensor { return Linear(x2, w, bias7) }, []int{7, 24}},
		{"Linear no bias", func(w *Tensor) *Tensor { return Linear(x2, w, nil) }, []int{7, 24}},
		// Over 1<<16 values, so the widening runs in parallel.
		{"Linear large", func(w *Tensor) *Tensor { return Linear(xl, w, nil) }, []int{300, 512}},
		{"Conv2d 3x3 pad1", func(w *Tensor) *Tensor { return Conv2d(x4, w, bias5, Conv2dParams{Stride: 1, Padding: 1}) }, []int{5, 6, 3, 3}},
		{"Conv2d 3x3 stride2", func(w *Tensor) *Tensor { return Conv2d(x4, w, nil, Conv2dParams{Stride: 2}) }, []int{5, 6, 3, 3}},
		{"Conv2d 1x1", func(w *Tensor) *Tensor { return Conv2d(x4, w, bias5, Conv2dParams{}) }, []int{5, 6, 1, 1}},
		{"MatMul b", func(w *Tensor) *Tensor { return MatMul(a, w) }, []int{16, 6}},
		{"MatMul batched b", func(w *Tensor) *Tensor { return MatMul(a, w) }, []int{3, 16, 6}},
		{"MatMul a", func(w *Tensor) *Tensor { return MatMul(w, a) }, []int{3, 5, 4}},
		{"Gather", func(w *Tensor) *Tensor { return Gather(w, ids, 2) }, []int{10, 8}},
	}
}

// TestHalfWeightsBitIdentical checks that every op accepting a
// half-precision weight gives bit for bit the result of its Float32
// conversion, also when called from several goroutines at once (each takes
// its own pooled scratch buffer; run it under -race).
func TestHalfWeightsBitIdentical(t *testing.T) {
	for _, kind := range []HalfKind{F16, BF16} {
		r := rand.New(rand.NewPCG(3, uint64(kind)))
		for _, c := range halfOpCases(r) {
			t.Run(kind.String()+"/"+c.name, func(t *testing.T) {
				h := FromHalf(randHalf(r, kind, numel(c.shape)), kind, c.shape...)
				want := c.run(h.Float32())
				sameBits(t, "sequential", c.run(h), want)
				var wg sync.WaitGroup
				errs := make(chan string, 8)
				for g := 0; g < 8; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 5; i++ {
							got := c.run(h)
							for j := range want.Data {
								if math.Float32bits(got.Data[j]) != math.Float32bits(want.Data[j]) {
									errs <- fmt.Sprintf("element %d = %v, want %v", j, got.Data[j], want.Data[j])
									return
								}
							}
						}
					}()
				}
				wg.Wait()
				close(errs)
				for e := range errs {
					t.Errorf("concurrent: %s", e)
				}
			})
		}
	}
}

// TestHalfWeightsConcurrentMixed runs different half weights of different
// sizes through Linear and Conv2d from many goroutines, so pooled scratch
// buffers are reused across ops and sizes while others are in use.
func TestHalfWeightsConcurrentMixed(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	type job struct {
		run  func() *Tensor
		want *Tensor
	}
	var jobs []job
	for i, kind := range []HalfKind{F16, BF16, F16, BF16} {
		out, in := 8+4*i, 12+8*i
		x := randn(r, 3, in)
		w := FromHalf(randHalf(r, kind, out*in), kind, out, in)
		jobs = append(jobs, job{func() *Tensor { return Linear(x, w, nil) }, Linear(x, w.Float32(), nil)})
		xc := randn(r, 1, 3+i, 6, 7)
		wc := FromHalf(randHalf(r, kind, (2+i)*(3+i)*9), kind, 2+i, 3+i, 3, 3)
		p := Conv2dParams{Stride: 1, Padding: 1}
		jobs = append(jobs, job{func() *Tensor { return Conv2d(xc, wc, nil, p) }, Conv2d(xc, wc.Float32(), nil, p)})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				j := jobs[(g+i)%len(jobs)]
				got := j.run()
				for k := range j.want.Data {
					if math.Float32bits(got.Data[k]) != math.Float32bits(j.want.Data[k]) {
						mu.Lock()
						bad++
						mu.Unlock()
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if bad > 0 {
		t.Errorf("%d goroutines saw a result differing from the float32 weights", bad)
	}
}

// TestHalfWeightsTracked checks the training path: with a tracked input and
// a half-precision weight, the backward step must see the weight's values,
// not a pooled buffer that other ops have since reused.
func TestHalfWeightsTracked(t *testing.T) {
	for _, kind := range []HalfKind{F16, BF16} {
		r := rand.New(rand.NewPCG(9, uint64(kind)))
		for _, c := range []struct {
			name  string
			x     *Tensor
			shape []int
			op    func(x, w *Tensor) *Tensor
		}{
			{"Linear", randn(r, 4, 10), []int{6, 10}, func(x, w *Tensor) *Tensor { return Linear(x, w, nil) }},
			{"Conv2d 3x3", randn(r, 1, 3, 5, 5), []int{4, 3, 3, 3}, func(x, w *Tensor) *Tensor { return Conv2d(x, w, nil, Conv2dParams{Stride: 1, Padding: 1}) }},
			{"Conv2d 1x1", randn(r, 1, 3, 5, 5), []int{4, 3, 1, 1}, func(x, w *Tensor) *Tensor { return Conv2d(x, w, nil, Conv2dParams{}) }},
			{"MatMul", randn(r, 2, 3, 10), []int{10, 6}, func(x, w *Tensor) *Tensor { return MatMul(x, w) }},
		} {
			t.Run(kind.String()+"/"+c.name, func(t *testing.T) {
				h := FromHalf(randHalf(r, kind, numel(c.shape)), kind, c.shape...)
				other := FromHalf(randHalf(r, kind, numel(c.shape)), kind, c.shape...)
				grad := func(w *Tensor) (*Tensor, *Tensor) {
					x := c.x.Clone()
					tp := NewTape()
					tp.Watch(x)
					out := c.op(x, w)
					// Reuse the scratch pool with other values before Backward.
					for i := 0; i < 4; i++ {
						c.op(c.x, other)
					}
					seed := make([]float32, out.Len())
					for i := range seed {
						seed[i] = float32(i%7) - 3
					}
					tp.Backward(out, seed)
					return out, x.Grad()
				}
				gotOut, gotGrad := grad(h)
				wantOut, wantGrad := grad(h.Float32())
				sameBits(t, "forward", gotOut, wantOut)
				sameBits(t, "dx", gotGrad, wantGrad)
			})
		}
	}
}
