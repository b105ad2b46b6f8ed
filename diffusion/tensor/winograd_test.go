package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestWinogradTransforms holds every winoImpl to the scalar one on random
// tiles, for tile counts 1..50 (each tail of a sixteen-tile group), both
// output row counts and odd widths, and checks that nothing outside the
// destination's tiles and columns is written.
func TestWinogradTransforms(t *testing.T) {
	const guard = -7.25
	r := rand.New(rand.NewPCG(11, 12))
	for _, impl := range winoImpls() {
		for n := 1; n <= 50; n++ {
			ls := 32*((n+15)/16) + 32
			src := randn(r, 4*ls).Data
			const ld = 64
			got, want := make([]float32, 16*ld), make([]float32, 16*ld)
			for i := range got {
				got[i], want[i] = guard, guard
			}
			impl.input(src, ls, got, ld, n)
			winoInputGo(src, ls, want, ld, n)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s input n %d: V[%d][%d] = %g, want %g", impl.name, n, i/ld, i%ld, got[i], want[i])
				}
			}
			m := randn(r, 16*ld).Data
			for _, w := range []int{2*n - 1, 2 * n} {
				for rows := 1; rows <= 2; rows++ {
					const ldd = 128
					got, want := make([]float32, 2*ldd), make([]float32, 2*ldd)
					for i := range got {
						got[i], want[i] = guard, guard
					}
					impl.output(m, ld, got, ldd, rows, n, w, 0.5)
					winoOutputGo(m, ld, want, ldd, rows, n, w, 0.5)
					for i := range got {
						if got[i] != want[i] || (i%ldd >= w || i/ldd >= rows) && got[i] != guard {
							t.Fatalf("%s output n %d w %d rows %d: y[%d][%d] = %g, want %g", impl.name, n, w, rows, i/ldd, i%ldd, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestWinogradConv3x3 checks winogradConv3x3, with every transform pair,
// against the textbook convolution: planes from 1x1 to 9x65 (odd sizes, one
// to five sixteen-tile groups per row), several images, with and without a
// bias, and blocks of one or two tile rows as well as whole planes.
func TestWinogradConv3x3(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	cases := []struct{ n, cin, h, w, cout int }{
		{1, 1, 1, 1, 1},
		{1, 3, 1, 2, 2},
		{2, 5, 3, 5, 4},
		{1, 8, 7, 33, 6},
		{1, 4, 16, 64, 3},
		{2, 2, 9, 65, 2},
		{1, 3, 4, 160, 5},
	}
	for _, impl := range winoImpls() {
		for _, c := range cases {
			for _, blockTiles := range []int{0, 1, 2} { // 0: the default blocks
				for _, withBias := range []bool{false, true} {
					name := fmt.Sprintf("%s/%dx%dx%dx%d→%d/block%d/bias%v", impl.name, c.n, c.cin, c.h, c.w, c.cout, blockTiles, withBias)
					t.Run(name, func(t *testing.T) {
						if blockTiles > 0 {
							old := winoMaxFloats
							winoMaxFloats = 16 * max(c.cin, c.cout) * (c.w + 1) / 2 * blockTiles
							defer func() { winoMaxFloats = old }()
						}
						x := randn(r, c.n, c.cin, c.h, c.w)
						wt := randn(r, c.cout, c.cin, 3, 3)
						var b *Tensor
						var bd []float32
						if withBias {
							b = randn(r, c.cout)
							bd = b.Data
						}
						out := New(c.n, c.cout, c.h, c.w)
						winogradConv3x3(impl, func(dst []float32, i, ch, y int) {
							copy(dst, x.Data[((i*c.cin+ch)*c.h+y)*c.w:][:c.w])
						}, c.n, c.cin, c.h, c.w, c.cout, wt.Data, bd, out.Data)
						want := naiveConv2d(x, wt, b, Conv2dParams{1, 1})
						if d, at := MaxAbsDiff(out, want); d > 1e-4*math.Sqrt(float64(9*c.cin)) {
							t.Fatalf("max abs diff %g at %d (got %g want %g)", d, at, out.Data[at], want.Data[at])
						}
					})
				}
			}
		}
	}
}

// TestConv2dWinograd checks that Conv2d and Conv2dUpsample2x take the
// Winograd path for SD-sized 3x3 convolutions where a vector transform
// exists, agree with the textbook convolution there, and that the fused
// upsampling stays bit for bit the composition; the FLOP count is the
// direct convolution's.
func TestConv2dWinograd(t *testing.T) {
	if !useWinograd(3, 3, Conv2dParams{1, 1}, 32, 40, 64, 66) {
		t.Skip("no Winograd path on this machine (no vector transforms or no Packed BLAS)")
	}
	if useWinograd(3, 3, Conv2dParams{1, 1}, 4, 40, 64, 64) || useWinograd(3, 3, Conv2dParams{2, 1}, 32, 40, 64, 64) ||
		useWinograd(1, 1, Conv2dParams{1, 0}, 32, 40, 64, 64) || useWinograd(3, 3, Conv2dParams{1, 1}, 32, 40, 32, 32) {
		t.Fatal("Winograd path taken for a convolution it does not serve")
	}
	r := rand.New(rand.NewPCG(15, 16))
	x, w, b := randn(r, 2, 32, 64, 66), randn(r, 40, 32, 3, 3), randn(r, 40)
	before := FLOPs()
	got := Conv2d(x, w, b, Conv2dParams{1, 1})
	if n, want := FLOPs()-before, int64(2*2*40*32*9*64*66); n != want {
		t.Errorf("Conv2d counted %d FLOPs, want %d (the direct convolution's)", n, want)
	}
	assertClose(t, "Conv2d", got, naiveConv2d(x, w, b, Conv2dParams{1, 1}), 1e-3)
	small := randn(r, 1, 32, 32, 33)
	up := Conv2dUpsample2x(small, w, b, Conv2dParams{1, 1})
	ref := Conv2d(UpsampleNearest2x(small), w, b, Conv2dParams{1, 1})
	if d, at := MaxAbsDiff(up, ref); d != 0 {
		t.Fatalf("Conv2dUpsample2x differs from the composition by %g at %d", d, at)
	}
	assertClose(t, "Conv2dUpsample2x", up, naiveConv2d(UpsampleNearest2x(small), w, b, Conv2dParams{1, 1}), 1e-3)
}

// TestConv2dGroupNormSiLU holds the fused op to the composition it stands
// for, bit for bit: on the Winograd path (two images, 8 groups of 4
// channels, an affine norm, with and without the convolution's bias) and on
// the fallbacks (a plane too small for Winograd, no norm affine), with and
// without consume; x survives unless consumed.
func TestConv2dGroupNormSiLU(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	cases := []struct {
		name           string
		n, cin, h, w   int
		cout, groups   int
		affine, biased bool
	}{
		{"winograd", 2, 32, 64, 66, 40, 8, true, true},
		{"winograd no conv bias", 1, 32, 65, 64, 32, 32, true, false},
		{"small plane: composition", 2, 32, 16, 16, 8, 8, true, true},
		{"no norm affine", 1, 32, 64, 64, 32, 4, false, true},
	}
	for _, c := range cases {
		for _, consume := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/consume=%v", c.name, consume), func(t *testing.T) {
				x := randn(r, c.n, c.cin, c.h, c.w)
				for i := range x.Data {
					x.Data[i] = 3*x.Data[i] + 1 // a mean and a spread to normalise away
				}
				var gw, gb, b *Tensor
				if c.affine {
					gw, gb = randn(r, c.cin), randn(r, c.cin)
				}
				if c.biased {
					b = randn(r, c.cout)
				}
				wt := randn(r, c.cout, c.cin, 3, 3)
				p := Conv2dParams{1, 1}
				hn := SiLU(GroupNorm(x, c.groups, gw, gb, 1e-6))
				want := Conv2d(hn, wt, b, p)
				keep := x.Clone()
				got := Conv2dGroupNormSiLU(x, c.groups, gw, gb, 1e-6, wt, b, p, consume)
				if d, at := MaxAbsDiff(got, want); d != 0 {
					t.Fatalf("differs from the composition by %g at %d", d, at)
				}
				if !consume {
					if d, _ := MaxAbsDiff(x, keep); d != 0 {
						t.Fatal("x changed without consume")
					}
				}
			})
		}
	}
}
