package rng

// Reference draws come from ../shared/refs (torch 1.13.1, Debian x86-64
// build, CPU), read through internal/refcases. They were produced by
//
//	torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed), dtype=torch.float32)
//
// (cases/rng, kind randn_fresh),
//
//	g = torch.Generator('cpu').manual_seed(seed)
//	for shape in shapes: torch.randn(shape, generator=g)
//
// (cases/rng, kind randn_sequence), and by diffusers' pipelines called with
// generator=torch.Generator('cpu').manual_seed(seed), whose every randn is
// recorded in outputs.random_draws of the txt2img and img2img cases.

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// sameBits reports an error unless got and want have the same shape and
// identical float32 bit patterns, naming the first differing element.
func sameBits(t *testing.T, name string, got, want *tensor.Tensor) bool {
	t.Helper()
	if !tensor.SameShape(got, want) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape, want.Shape)
		return false
	}
	bad, first := 0, -1
	for i, w := range want.Data {
		if math.Float32bits(got.Data[i]) != math.Float32bits(w) {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ; first at index %d %v: got %.9g (%#08x), want %.9g (%#08x)",
			name, bad, len(want.Data), first, refcases.Unravel(first, want.Shape),
			got.Data[first], math.Float32bits(got.Data[first]), want.Data[first], math.Float32bits(want.Data[first]))
		return false
	}
	return true
}

func seedOf(t *testing.T, c refcases.Case, section string) uint64 {
	t.Helper()
	// Seeds up to 1234567890123 are exact in a JSON float64.
	return uint64(c.Float(t, section, "seed"))
}

func TestCPURandnFresh(t *testing.T) {
	s := refcases.Open(t, "rng")
	cases := s.ByKind("randn_fresh")
	if len(cases) == 0 {
		t.Fatal("no randn_fresh cases")
	}
	pass := 0
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			want := s.CaseTensor(t, c, "outputs", "tensor")
			got := NewCPU(seedOf(t, c, "inputs")).Randn(c.Ints(t, "inputs", "shape")...)
			if sameBits(t, c.ID, got, want) {
				pass++
			}
		})
	}
	t.Logf("%d of %d randn_fresh cases bit-exact", pass, len(cases))
}

func TestCPURandnSequence(t *testing.T) {
	s := refcases.Open(t, "rng")
	cases := s.ByKind("randn_sequence")
	if len(cases) == 0 {
		t.Fatal("no randn_sequence cases")
	}
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			shapes := c.Value(t, "inputs", "shapes_in_order").([]any)
			names := c.Strings(t, "outputs", "tensors_in_order")
			if len(shapes) != len(names) {
				t.Fatalf("%d shapes, %d tensors", len(shapes), len(names))
			}
			g := NewCPU(seedOf(t, c, "inputs"))
			for i, name := range names {
				var shape []int
				for _, d := range shapes[i].([]any) {
					shape = append(shape, int(d.(float64)))
				}
				if !sameBits(t, name, g.Randn(shape...), s.Tensor(t, name)) {
					return // later draws are shifted too
				}
			}
		})
	}
}

// TestCPUPipelineDraws replays every pipeline run's sequence of draws
// (initial latents, VAE posterior sample, img2img noise, per-step
// ancestral and DDIM eta noise) from one generator.
func TestCPUPipelineDraws(t *testing.T) {
	total, runs := 0, 0
	for _, pipeline := range []string{"tiny-sd15", "tiny-sd2v", "tiny-sd15-fp16"} {
		t.Run(pipeline, func(t *testing.T) {
			s := refcases.Open(t, pipeline)
			for _, c := range s.Cases {
				if !c.Has("outputs", "random_draws") {
					continue
				}
				runs++
				t.Run(c.ID, func(t *testing.T) {
					g := NewCPU(seedOf(t, c, "params"))
					for i, d := range c.Value(t, "outputs", "random_draws").([]any) {
						draw := d.(map[string]any)
						name := draw["tensor"].(string)
						want := s.Tensor(t, name)
						var shape []int
						for _, v := range draw["shape"].([]any) {
							shape = append(shape, int(v.(float64)))
						}
						got := g.Randn(shape...)
						if !sameBits(t, fmt.Sprintf("draw %d (%v)", i, draw["by"]), got, want) {
							return
						}
						total++
					}
				})
			}
			for _, c := range s.ByKind("vae_encode") {
				t.Run(c.ID, func(t *testing.T) {
					want := s.CaseTensor(t, c, "outputs", "sample_noise")
					got := NewCPU(uint64(c.Float(t, "params", "sample_generator_seed"))).Randn(want.Shape...)
					if sameBits(t, "sample_noise", got, want) {
						total++
					}
				})
			}
		})
	}
	t.Logf("%d pipeline draws bit-exact over %d runs", total, runs)
}

// TestCPUSeedLow32 checks at::mt19937's seeding: only the low 32 bits of
// the seed count.
func TestCPUSeedLow32(t *testing.T) {
	a := NewCPU(42).Randn(2, 16)
	b := NewCPU(42+1<<32).Randn(2, 16)
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			t.Fatalf("seed 42 and 42+2^32 differ at %d: %v vs %v", i, a.Data[i], b.Data[i])
		}
	}
}

// TestMT19937 checks the engine against the C++11 standard's required
// 10000th output of std::mt19937 with the default seed 5489
// ([rand.predef]: 4123659995).
func TestMT19937(t *testing.T) {
	var m mt19937
	m.seed(5489)
	var v uint32
	for range 10000 {
		v = m.uint32()
	}
	if v != 4123659995 {
		t.Errorf("10000th output = %d, want 4123659995", v)
	}
}

// TestCPUNormalCache checks the double path's cached Box–Muller partner:
// two draws of 1 equal one draw of 2, an odd draw leaves the partner for
// the next small draw, and a vectorised draw (>= 16) neither uses nor
// clears it.
func TestCPUNormalCache(t *testing.T) {
	two := NewCPU(7).Randn(2)
	g := NewCPU(7)
	a, b := g.Randn(1), g.Randn(1)
	if a.Data[0] != two.Data[0] || b.Data[0] != two.Data[1] {
		t.Errorf("randn(1), randn(1) = %v, %v; randn(2) = %v", a.Data, b.Data, two.Data)
	}

	// Same words consumed: randn(1); randn(16); randn(1) uses the cache.
	g = NewCPU(7)
	first := g.Randn(1)
	mid := g.Randn(16)
	second := g.Randn(1)
	if first.Data[0] != two.Data[0] || second.Data[0] != two.Data[1] {
		t.Errorf("cache across a vectorised draw: got %v, %v, want %v", first.Data[0], second.Data[0], two.Data)
	}
	// The vectorised draw starts right after the 4 words of the pair.
	h := NewCPU(7)
	h.engine.uint64()
	h.engine.uint64()
	want := h.Randn(16)
	for i := range want.Data {
		if mid.Data[i] != want.Data[i] {
			t.Fatalf("vectorised draw after a cached pair differs at %d", i)
		}
	}
}

func TestCPUEmptyAndScalar(t *testing.T) {
	g := NewCPU(0)
	if e := g.Randn(0, 4); len(e.Data) != 0 {
		t.Errorf("randn(0, 4) has %d values", len(e.Data))
	}
	// An empty draw consumes nothing.
	if got, want := g.Randn(), NewCPU(0).Randn(1); got.Data[0] != want.Data[0] || len(got.Shape) != 0 {
		t.Errorf("randn() = %v shape %v, want %v shape []", got.Data, got.Shape, want.Data)
	}
}

func TestRandnNegativePanics(t *testing.T) {
	for _, s := range []Source{NewCPU(0), NewCUDA(0)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%T.Randn(2, -1) did not panic", s)
				}
			}()
			s.Randn(2, -1)
		}()
	}
}

// TestLog256Sincos256 checks the float32 Cephes kernels against float64
// math over the inputs normalFill16 feeds them: within 2 ulp.
func TestLog256Sincos256(t *testing.T) {
	ulps := func(got float32, want float64) float64 {
		w := float32(want)
		ulp := float64(math.Nextafter32(float32(math.Abs(float64(w))), float32(math.Inf(1))) - float32(math.Abs(float64(w))))
		return math.Abs(float64(got)-want) / ulp
	}
	worstLog, worstTrig := 0.0, 0.0
	for k := uint32(1); k <= 1<<24; k += 97 {
		u := float32(k) / (1 << 24)
		if u != 1 {
			worstLog = math.Max(worstLog, ulps(log256(u), math.Log(float64(u))))
		}
		theta := twoPi * (float32(k-1) / (1 << 24))
		s, c := sincos256(theta)
		// Absolute error relative to the ulp of 1: the Cephes reduction
		// is accurate in absolute terms near the zeros.
		worstTrig = math.Max(worstTrig, math.Abs(float64(s)-math.Sin(float64(theta)))/0x1p-24)
		worstTrig = math.Max(worstTrig, math.Abs(float64(c)-math.Cos(float64(theta)))/0x1p-24)
	}
	if worstLog > 2 || worstTrig > 2 {
		t.Errorf("log256 worst %.2f ulp, sincos256 worst %.2f ulp(1)", worstLog, worstTrig)
	}
}

// TestFMA32 checks the single-rounding float32 multiply–add against
// math/big on random triples and on constructed ones whose exact value
// lies just off a float32 rounding midpoint by less than a float64 ulp,
// where rounding to float64 first and then to float32 goes wrong.
func TestFMA32(t *testing.T) {
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	check := func(a, b, c float32) {
		if got, want := fma32(a, b, c), exact(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		a := float32(r.NormFloat64())
		b := float32(r.NormFloat64())
		c := float32(r.NormFloat64())
		check(a, b, c)
		check(a, b, -float32(float64(a)*float64(b))) // cancellation
		// Results in float32's subnormal range.
		check(a*0x1p-70, b*0x1p-70, c*0x1p-140)
	}
	// a·b = H·2^31 ± 1 (odd a, b = ±a⁻¹ mod 2^31 below 2^24) plus
	// c = K·2^30 with K odd: the exact sum is a float32 midpoint ± 1, and
	// the ±1 is below half a float64 ulp at 2^54. Scaled by 2^-60.
	hard := 0
	for a := uint64(1<<23 + 1); a < 1<<24 && hard < 200; a += 2 {
		inv := uint64(1) // a⁻¹ mod 2^31 by Newton iteration
		for range 5 {
			inv = inv * (2 - a*inv) & (1<<31 - 1)
		}
		for _, bInt := range []uint64{inv, (1<<31 - inv) & (1<<31 - 1)} {
			if bInt >= 1<<24 || bInt == 0 {
				continue
			}
			af := float32(math.Ldexp(float64(a), -30))
			bf := float32(math.Ldexp(float64(bInt), -30))
			cf := float32(math.Ldexp(float64(1<<24-1), -30))
			check(af, bf, cf)
			if float32(math.FMA(float64(af), float64(bf), float64(cf))) != exact(af, bf, cf) {
				hard++
			}
		}
	}
	if hard == 0 {
		t.Error("constructed no case where double rounding fails; the test is not testing fma32's rounding")
	}
	t.Logf("%d constructed double-rounding cases correct", hard)
}

func benchRandnCPU(b *testing.B, shape ...int) {
	n := numel(shape)
	b.ReportAllocs()
	b.SetBytes(int64(4 * n))
	g := NewCPU(0)
	for b.Loop() {
		sink = g.Randn(shape...)
	}
}

var sink *tensor.Tensor

func BenchmarkRandnCPU_1x4x64x64(b *testing.B)   { benchRandnCPU(b, 1, 4, 64, 64) }
func BenchmarkRandnCPU_1x4x128x128(b *testing.B) { benchRandnCPU(b, 1, 4, 128, 128) }
