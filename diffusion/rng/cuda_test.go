package rng

import (
	"math"
	"strconv"
	"testing"
)

// TestPhilox4x32KnownAnswers checks Philox4x32 against the known-answer
// vectors of the Random123 distribution (tests/kat_vectors, lines
// "philox4x32 7 …" and "philox4x32 10 …"; columns: counter[4], key[2],
// expected[4], all hex uint32).
func TestPhilox4x32KnownAnswers(t *testing.T) {
	tests := []struct {
		rounds int
		ctr    [4]uint32
		key    [2]uint32
		want   [4]uint32
	}{
		{7, [4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}},
		{7, [4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
		{7, [4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
		{10, [4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{10, [4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{10, [4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, tt := range tests {
		if got := philox4x32(tt.ctr, tt.key, tt.rounds); got != tt.want {
			t.Errorf("philox4x32-%d(%08x, %08x) = %08x, want %08x", tt.rounds, tt.ctr, tt.key, got, tt.want)
		}
	}
}

// TestCUDAGolden checks the example in the docstring of AUTOMATIC1111's
// modules/rng_philox.py (stable-diffusion-webui), seed 0, shape 3×4:
//
//	g = Generator(seed=0)
//	print(g.randn(shape=(3, 4)))
//	[[-0.92466259 -0.42534415 -2.6438457   0.14518388]
//	 [-0.12086647 -0.57972564 -0.62285122 -0.32838709]
//	 [-1.07454231 -0.36314407 -1.67105067  2.26550497]]
//
// These are not what that file's NumPy code returns (it evaluates
// Box–Muller in float64, as CUDA.Randn does, and differs from them by up
// to 3 float32 ulps); they look like torch's actual GPU output, which
// rounds to the same four decimals as the well-known
// torch.manual_seed(0); torch.randn(12, device="cuda") = [-0.9247, -0.4253,
// -2.6438, 0.1452, …]. Recomputing u, v and s in float32 from our Philox
// words, the differences amount to sin errors of at most 1.43·2^-22,
// within the documented 2^-21.41 bound of CUDA's __sincosf, which
// curand_normal4 uses on the device. So the Philox words, the
// counter/subsequence layout and the key are right, and the values can
// only be compared to ~1e-6.
func TestCUDAGolden(t *testing.T) {
	want := []float32{
		-0.92466259, -0.42534415, -2.6438457, 0.14518388,
		-0.12086647, -0.57972564, -0.62285122, -0.32838709,
		-1.07454231, -0.36314407, -1.67105067, 2.26550497,
	}
	got := NewCUDA(0).Randn(3, 4)
	if len(got.Shape) != 2 || got.Shape[0] != 3 || got.Shape[1] != 4 {
		t.Fatalf("shape %v", got.Shape)
	}
	worst := 0.0
	for i, w := range want {
		d := math.Abs(float64(got.Data[i]) - float64(w))
		worst = math.Max(worst, d)
		if d > 1e-6 {
			t.Errorf("[%d] = %.9g, want %.9g ± 1e-6", i, got.Data[i], w)
		}
	}
	t.Logf("max |got-want| = %.3g", worst)
}

// TestCUDAConstants pins the float32 constants rng_philox.py takes from
// curand: CURAND_2POW32_INV is exactly 2^-32 and CURAND_2POW32_INV_2PI is
// 2^-32 · float32(2π) (bits 0x30c90fdb), whether the product is formed in
// float32 (curand) or in float64 and rounded (rng_philox.py).
func TestCUDAConstants(t *testing.T) {
	if pow32Inv != 0x1p-32 || pow32InvHalf != 0x1p-33 {
		t.Errorf("2^-32 constants = %g, %g", pow32Inv, pow32InvHalf)
	}
	if b := math.Float32bits(float32(pow32Inv2Pi)); b != 0x30c90fdb {
		t.Errorf("CURAND_2POW32_INV_2PI bits %#x, want 0x30c90fdb", b)
	}
	if f := float32(0x1p-32) * float32(6.2831855); float64(f) != pow32Inv2Pi || 2*pow32Inv2PiHalf != pow32Inv2Pi {
		t.Errorf("float32 product %g, float64 %g, half %g", f, pow32Inv2Pi, pow32Inv2PiHalf)
	}
}

// TestCUDAOffset checks that each call moves the Philox counter on by one
// block (torch's offset by 4) and that element i uses subsequence i:
// the k-th call equals a fresh draw at counter k.
func TestCUDAOffset(t *testing.T) {
	g := NewCUDA(1234)
	first := g.Randn(4, 4, 4)
	second := g.Randn(7)
	third := g.Randn(1, 4, 64, 64)
	if g.counter != 3 {
		t.Errorf("counter after 3 calls = %d, want 3", g.counter)
	}
	for k, x := range [][]float32{first.Data, second.Data, third.Data} {
		for i, v := range x {
			blk := philox4x32([4]uint32{uint32(k), 0, uint32(i), 0}, [2]uint32{1234, 0}, 10)
			if want := boxMullerCUDA(blk, 0); v != want {
				t.Fatalf("call %d element %d = %v, want %v", k, i, v, want)
			}
		}
	}
	// Determinism: a fresh generator repeats the first call, and the second
	// call's first values differ from the first call's.
	again := NewCUDA(1234).Randn(4, 4, 4)
	for i := range again.Data {
		if again.Data[i] != first.Data[i] {
			t.Fatalf("not deterministic at %d", i)
		}
	}
	if second.Data[0] == first.Data[0] {
		t.Error("second call repeats the first")
	}
	// The 64-bit seed is the key: seeds differing only above bit 32 differ.
	if NewCUDA(5).Randn(1).Data[0] == NewCUDA(5 + 1<<32).Randn(1).Data[0] {
		t.Error("seed high word ignored")
	}
	// Empty draws consume nothing.
	h := NewCUDA(9)
	h.Randn(0)
	if h.counter != 0 {
		t.Errorf("empty draw advanced the counter to %d", h.counter)
	}
}

// TestCUDAOnLayout checks the grid-capped layout of NewCUDAOn: on a GPU
// running 256 threads at once, 1025 elements take two curand_normal4
// calls per thread (offset +8), element 256 is the cos partner of element
// 0 (component 1), 512 and 768 the second Box–Muller pair, 1024 the next
// block of thread 0; a draw that fits behaves as NewCUDA's.
func TestCUDAOnLayout(t *testing.T) {
	dev := CUDADevice{MultiProcessorCount: 1, MaxThreadsPerMultiProcessor: 256}
	g := NewCUDAOn(dev, 77)
	x := g.Randn(1025)
	if g.counter != 2 {
		t.Errorf("counter = %d, want 2", g.counter)
	}
	key := [2]uint32{77, 0}
	b0 := philox4x32([4]uint32{0, 0, 0, 0}, key, 10)
	b1 := philox4x32([4]uint32{1, 0, 0, 0}, key, 10)
	for _, c := range []struct {
		li   int
		blk  [4]uint32
		comp int
	}{{0, b0, 0}, {256, b0, 1}, {512, b0, 2}, {768, b0, 3}, {1024, b1, 0}} {
		if want := boxMullerCUDA(c.blk, c.comp); x.Data[c.li] != want {
			t.Errorf("element %d = %v, want component %d = %v", c.li, x.Data[c.li], c.comp, want)
		}
	}
	// sin² + cos² of one pair gives back -2 ln u.
	u := float64(b0[0])*0x1p-32 + 0x1p-33
	if r2 := float64(x.Data[0])*float64(x.Data[0]) + float64(x.Data[256])*float64(x.Data[256]); math.Abs(r2+2*math.Log(u)) > 1e-5*(1+r2) {
		t.Errorf("s² = %v, want %v", r2, -2*math.Log(u))
	}
	// After the capped draw, a small one matches NewCUDA at counter 2.
	small := g.Randn(10)
	ref := NewCUDA(77)
	ref.counter = 2
	want := ref.Randn(10)
	for i := range small.Data {
		if small.Data[i] != want.Data[i] {
			t.Fatalf("small draw differs at %d", i)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("NewCUDAOn with no multiprocessors did not panic")
		}
	}()
	NewCUDAOn(CUDADevice{}, 0)
}

// TestRandnStatistics draws a million values from each generator and
// checks the first four moments of N(0, 1) within a few standard errors.
func TestRandnStatistics(t *testing.T) {
	if testing.Short() {
		t.Skip("statistics in -short mode")
	}
	for _, tt := range []struct {
		name string
		src  Source
	}{{"cpu", NewCPU(2024)}, {"cuda", NewCUDA(2024)}, {"cuda-capped", NewCUDAOn(CUDADevice{MultiProcessorCount: 4, MaxThreadsPerMultiProcessor: 2048}, 2024)}} {
		t.Run(tt.name, func(t *testing.T) {
			var n, s1, s2, s3, s4 float64
			for range 4 {
				for _, v := range tt.src.Randn(250000).Data {
					x := float64(v)
					n++
					s1 += x
					s2 += x * x
					s3 += x * x * x
					s4 += x * x * x * x
				}
			}
			mean, m2 := s1/n, s2/n
			std := math.Sqrt(m2 - mean*mean)
			skew, kurt := s3/n, s4/n
			// Standard errors for n = 1e6: mean 1e-3, std 7e-4, skew 2.4e-3, E[x^4] 1e-2.
			if math.Abs(mean) > 5e-3 || math.Abs(std-1) > 4e-3 || math.Abs(skew) > 1.2e-2 || math.Abs(kurt-3) > 5e-2 {
				t.Errorf("mean %.5f std %.5f E[x³] %.5f E[x⁴] %.4f", mean, std, skew, kurt)
			}
			t.Logf("mean %.5f std %.5f E[x³] %.5f E[x⁴] %.4f", mean, std, skew, kurt)
		})
	}
}

func TestNew(t *testing.T) {
	for _, kind := range []string{"cpu", "cuda"} {
		s, err := New(kind, 3)
		if err != nil || s == nil {
			t.Fatalf("New(%q) = %v, %v", kind, s, err)
		}
	}
	if a, b := mustNew(t, "cpu").Randn(8).Data[0], NewCPU(3).Randn(8).Data[0]; a != b {
		t.Error(`New("cpu") is not NewCPU`)
	}
	if a, b := mustNew(t, "cuda").Randn(8).Data[0], NewCUDA(3).Randn(8).Data[0]; a != b {
		t.Error(`New("cuda") is not NewCUDA`)
	}
	for _, kind := range []string{"", "CPU", "mps", "philox"} {
		if _, err := New(kind, 0); err == nil || !contains(err.Error(), strconv.Quote(kind)) {
			t.Errorf("New(%q) error = %v, want one naming the value", kind, err)
		}
	}
}

func mustNew(t *testing.T, kind string) Source {
	t.Helper()
	s, err := New(kind, 3)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func BenchmarkRandnCUDA_1x4x64x64(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(4 * 4 * 64 * 64)
	g := NewCUDA(0)
	for b.Loop() {
		sink = g.Randn(1, 4, 64, 64)
	}
}
