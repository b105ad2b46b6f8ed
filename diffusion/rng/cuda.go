package rng

import (
	"fmt"
	"math"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// CUDA is torch.Generator("cuda").manual_seed(seed) as seen by
// torch.randn(shape, generator=g, device="cuda") in float32, computed on
// the CPU the way AUTOMATIC1111's modules/rng_philox.py does.
//
// Torch (aten/src/ATen/native/cuda/DistributionTemplates.h, normal_kernel
// → distribution_nullary_kernel with curand_normal4, unroll 4) launches
// blocks of 256 threads, grid = min(ceil(numel/256),
// multiProcessorCount·maxThreadsPerMultiProcessor/256). Thread idx calls
// curand_init(seed, idx, offset) — Philox4x32-10 with key (seed low, seed
// high) and counter (offset/4 low, offset/4 high, idx low, idx high) —
// and each curand_normal4 turns one Philox block (x0, x1, x2, x3) into
// four normals (s1·sin v1, s1·cos v1, s2·sin v2, s2·cos v2) by
// Box–Muller, u = x0·2^-32 + 2^-33, v = x1·2π·2^-32 + π·2^-32,
// s = sqrt(-2 ln u) (curand_normal.h _curand_box_muller), then steps the
// counter. Element li = idx + stride·(ii + 4k) (stride = grid·256) gets
// component ii of thread idx's k-th block. Each launch reserves
// 4·ceil(numel/(4·stride)) offsets (calc_execution_policy), so the
// generator's Philox counter moves on by ceil(numel/(4·stride)) blocks.
//
// NewCUDA assumes a grid large enough for one thread per element, which
// every GPU has for Stable Diffusion latents (a 1×4×128×128 draw needs
// 65,536 threads; an RTX 3090 runs 125,952): element i is then component 0
// of the first Philox block of subsequence i, and every call advances the
// counter by exactly one block (torch's offset by 4). That is the model of
// rng_philox.py, whose Generator uses counter (offset, 0, i, 0) and adds 1
// per call. For bigger tensors torch's layout depends on the GPU; use
// NewCUDAOn with its properties.
//
// Verified here: Philox4x32-10 against the Random123 known-answer
// vectors; the Box–Muller constants; the key, counter and subsequence
// layout and the offset stepping, against the twelve values in the
// docstring of rng_philox.py (seed 0, shape 3×4), which look like torch's
// GPU output and which this matches to within 2.4e-7, not to the bit (see
// TestCUDAGolden). Not verified, for want of a GPU and of reference data:
// bit equality with rng_philox.py's NumPy output (it should hold but for
// rare last-bit differences between NumPy's and Go's float64 log and sin)
// and with torch on a GPU. The latter cannot be expected: the device
// computes the Box–Muller in float32 with logf and the __sincosf hardware
// approximation, whereas this code, like rng_philox.py, evaluates it in
// float64 and rounds once, so the two differ by a few float32 ulps (~1e-6
// absolute). The grid-capped layout of NewCUDAOn follows the torch source
// and is untested against a GPU.
type CUDA struct {
	key     [2]uint32
	counter uint64 // Philox blocks consumed: torch's philox_offset_per_thread_ / 4
	threads int    // most threads one launch runs; 0: one per element
}

// CUDADevice holds the two cudaDeviceProp fields that fix the launch grid
// of torch's CUDA random kernels.
type CUDADevice struct {
	MultiProcessorCount         int // e.g. 132 for an H100 SXM, 82 for an RTX 3090
	MaxThreadsPerMultiProcessor int // e.g. 2048 (sm_80, sm_90), 1536 (sm_86, sm_89)
}

// NewCUDA returns a CUDA generator seeded like
// torch.Generator("cuda").manual_seed(seed) (all 64 bits are the Philox
// key), on a GPU large enough to give every element its own thread.
func NewCUDA(seed uint64) *CUDA {
	return &CUDA{key: [2]uint32{uint32(seed), uint32(seed >> 32)}}
}

// NewCUDAOn is NewCUDA for a particular GPU: tensors with more elements
// than dev runs threads at once
// (MultiProcessorCount · (MaxThreadsPerMultiProcessor/256) · 256) are laid
// out and advance the offset as torch does on that GPU. It panics if a
// field of dev is not positive or the GPU cannot hold one 256-thread
// block per multiprocessor.
func NewCUDAOn(dev CUDADevice, seed uint64) *CUDA {
	blocksPerSM := dev.MaxThreadsPerMultiProcessor / cudaBlockSize
	if dev.MultiProcessorCount <= 0 || blocksPerSM <= 0 {
		panic(fmt.Sprintf("rng: invalid CUDA device %+v", dev))
	}
	g := NewCUDA(seed)
	g.threads = dev.MultiProcessorCount * blocksPerSM * cudaBlockSize
	return g
}

// cudaBlockSize is block_size_bound in DistributionTemplates.h.
const cudaBlockSize = 256

// Randn implements Source. It returns a float32 tensor of the given shape
// with the draws described on CUDA and advances the Philox counter as one
// torch kernel launch does (not at all for an empty tensor). It panics if
// a dimension is negative or the tensor has 2^31 elements or more (torch
// splits those into several launches, which this does not model).
func (g *CUDA) Randn(shape ...int) *tensor.Tensor {
	n := numel(shape)
	t := tensor.New(shape...)
	if n == 0 {
		return t
	}
	if n > math.MaxInt32 {
		panic(fmt.Sprintf("rng: CUDA draw of %d elements is too large", n))
	}
	// stride = grid · 256 threads.
	stride := (n + cudaBlockSize - 1) / cudaBlockSize * cudaBlockSize
	if g.threads > 0 && stride > g.threads {
		stride = g.threads
	}
	blocks := (n-1)/(4*stride) + 1 // curand_normal4 calls per thread
	for li := range t.Data {
		idx := li % stride
		q := li / stride
		ctr := g.counter + uint64(q/4)
		x := philox4x32([4]uint32{uint32(ctr), uint32(ctr >> 32), uint32(idx), 0}, g.key, 10)
		t.Data[li] = boxMullerCUDA(x, q%4)
	}
	g.counter += uint64(blocks)
	return t
}

// Box–Muller constants of rng_philox.py, which takes curand's
// CURAND_2POW32_INV = 2.3283064e-10f and CURAND_2POW32_INV_2PI =
// 2.3283064e-10f * 6.2831855f as float32 arrays and computes with them in
// float64 (NumPy promotes uint32 × float32 to float64).
var (
	pow32Inv     = float64(float32(2.3283064e-10)) // exactly 2^-32
	pow32InvHalf = float64(float32(2.3283064e-10) / 2)
	pow32Inv2Pi  = float64(float32(mulFloat64(2.3283064e-10, 6.2831855)))
	// two_pow32_inv_2pi / 2 is halved in float32, which is exact.
	pow32Inv2PiHalf = float64(float32(mulFloat64(2.3283064e-10, 6.2831855)) / 2)
)

// mulFloat64 returns a·b rounded to float64, as Python evaluates
// 2.3283064e-10 * 6.2831855 (a Go constant expression would be exact).
func mulFloat64(a, b float64) float64 { return a * b }

// boxMullerCUDA returns component ii (0–3) of curand_normal4 for the
// Philox block x, evaluated as rng_philox.py's box_muller does (float64,
// one rounding to float32 at the end): components 0 and 1 are s·sin v and
// s·cos v from (x[0], x[1]), 2 and 3 the same from (x[2], x[3]).
// rng_philox.py itself only ever needs component 0.
func boxMullerCUDA(x [4]uint32, ii int) float32 {
	a, b := x[0], x[1]
	if ii >= 2 {
		a, b = x[2], x[3]
	}
	u := float64(float64(a)*pow32Inv) + pow32InvHalf
	v := float64(float64(b)*pow32Inv2Pi) + pow32Inv2PiHalf
	s := math.Sqrt(-2.0 * math.Log(u))
	if ii%2 == 0 {
		return float32(s * math.Sin(v))
	}
	return float32(s * math.Cos(v))
}
