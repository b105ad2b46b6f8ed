package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

var sink *Tensor

func benchMatMul(b *testing.B, m, k, n int) {
	r := rand.New(rand.NewPCG(1, 1))
	x, w := randn(r, m, k), randn(r, n, k)
	b.SetBytes(int64(4 * (m*k + k*n + m*n)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sink = Linear(x, w, nil)
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkMatMul_256(b *testing.B)         { benchMatMul(b, 256, 256, 256) }
func BenchmarkMatMul_1024(b *testing.B)        { benchMatMul(b, 1024, 1024, 1024) }
func BenchmarkMatMul_FF_4096x320(b *testing.B) { benchMatMul(b, 4096, 320, 2560) }

func benchConv2d(b *testing.B, n, c, h, w int) {
	r := rand.New(rand.NewPCG(2, 2))
	x, wt, bias := randn(r, n, c, h, w), randn(r, c, c, 3, 3), randn(r, c)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// Released as the models' layer chains do (Replace), so the output
		// comes from the pool rather than fresh memory.
		Release(Conv2d(x, wt, bias, Conv2dParams{Stride: 1, Padding: 1}))
	}
	b.ReportMetric(2*float64(n*c*c*9*h*w)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkConv2d_320x64x64(b *testing.B)   { benchConv2d(b, 1, 320, 64, 64) }
func BenchmarkConv2d_1280x8x8(b *testing.B)    { benchConv2d(b, 1, 1280, 8, 8) }
func BenchmarkConv2d_128x256x256(b *testing.B) { benchConv2d(b, 1, 128, 256, 256) }

// pigment-tiny's UNet at 16x16 latents, a training batch of 32.
func BenchmarkConv2d_Batch32_32x16x16(b *testing.B) { benchConv2d(b, 32, 32, 16, 16) }

func BenchmarkGroupNorm_320x64x64(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	x, w, bias := randn(r, 2, 320, 64, 64), randn(r, 320), randn(r, 320)
	b.SetBytes(int64(8 * x.Len()))
	b.ReportAllocs()
	for b.Loop() {
		sink = GroupNorm(x, 32, w, bias, 1e-5)
	}
}

func benchAttention(b *testing.B, lq, lk, heads, d int) {
	r := rand.New(rand.NewPCG(4, 4))
	q, k, v := randn(r, 2, lq, heads*d), randn(r, 2, lk, heads*d), randn(r, 2, lk, heads*d)
	scale := float32(1 / math.Sqrt(float64(d)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// Released as the UNet's Attention.Forward does (Replace), so the
		// output comes from the pool rather than fresh memory.
		Release(Attention(q, k, v, heads, scale, false))
	}
	b.ReportMetric(4*float64(2*heads*lq*lk*d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// SD 1.5's largest self-attention (64x64 latents, 8 heads of 40) and its
// cross-attention to 77 text tokens.
func BenchmarkAttention_Self4096(b *testing.B)  { benchAttention(b, 4096, 4096, 8, 40) }
func BenchmarkAttention_Cross4096(b *testing.B) { benchAttention(b, 4096, 77, 8, 40) }

// The fused attention's row-block products for SD 1.5's cross-attention
// (one thread, operands in L1): scores (k = 40 head dims, n = 77 keys) and
// P·v (k = 77 keys, n = 40).
func benchRows6(b *testing.B, k, n int) {
	if attnRows6 == nil {
		b.Skip("no vector rows kernel on this CPU")
	}
	r := rand.New(rand.NewPCG(5, 5))
	a, w, c := randn(r, 6*k).Data, randn(r, k*n).Data, make([]float32, 6*n)
	for b.Loop() {
		attnRows6(a, k, w, n, c, n, k, n)
	}
	b.ReportMetric(float64(2*6*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkRows6_Scores(b *testing.B) { benchRows6(b, 40, 77) }
func BenchmarkRows6_Values(b *testing.B) { benchRows6(b, 77, 40) }
func BenchmarkRows6_Wide(b *testing.B)   { benchRows6(b, 256, 64) }

// More SD 1.5 3x3 convolution sizes: the UNet's 640 channels at 32x32 and
// 1280 at 16x16, and the VAE decoder's 512 channels at 64x64 and 128x128
// and 128 channels at its full 512x512.
func BenchmarkConv2d_640x32x32(b *testing.B)   { benchConv2d(b, 1, 640, 32, 32) }
func BenchmarkConv2d_1280x16x16(b *testing.B)  { benchConv2d(b, 1, 1280, 16, 16) }
func BenchmarkConv2d_512x64x64(b *testing.B)   { benchConv2d(b, 1, 512, 64, 64) }
func BenchmarkConv2d_512x128x128(b *testing.B) { benchConv2d(b, 1, 512, 128, 128) }
func BenchmarkConv2d_128x512x512(b *testing.B) { benchConv2d(b, 1, 128, 512, 512) }

// The UNet's up-block convolutions after the skip concatenation: 1920 → 640
// channels at 32x32 and 960 → 320 at 64x64.
func benchConv2dIO(b *testing.B, cin, cout, h, w int) {
	r := rand.New(rand.NewPCG(2, 2))
	x, wt, bias := randn(r, 1, cin, h, w), randn(r, cout, cin, 3, 3), randn(r, cout)
	b.ReportAllocs()
	for b.Loop() {
		Release(Conv2d(x, wt, bias, Conv2dParams{Stride: 1, Padding: 1}))
	}
	b.ReportMetric(2*float64(cout*cin*9*h*w)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkConv2d_1920to640x32x32(b *testing.B) { benchConv2dIO(b, 1920, 640, 32, 32) }
func BenchmarkConv2d_960to320x64x64(b *testing.B)  { benchConv2dIO(b, 960, 320, 64, 64) }

// Linear layers with their bias, released as the models do: the UNet's
// attention output projection at 64x64 latents (8192 tokens, 320 → 320) and
// its feed-forward's down projection (1280 → 320).
func benchLinearBias(b *testing.B, rows, in, out int) {
	r := rand.New(rand.NewPCG(1, 1))
	x, w, bias := randn(r, rows, in), randn(r, out, in), randn(r, out)
	b.ReportAllocs()
	for b.Loop() {
		Release(Linear(x, w, bias))
	}
	b.ReportMetric(2*float64(rows)*float64(in)*float64(out)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkLinear_Bias_8192x320x320(b *testing.B)  { benchLinearBias(b, 8192, 320, 320) }
func BenchmarkLinear_Bias_8192x1280x320(b *testing.B) { benchLinearBias(b, 8192, 1280, 320) }
