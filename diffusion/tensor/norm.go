package tensor

import (
	"fmt"
	"math"
)

// GroupNorm is torch.nn.GroupNorm (Wu & He 2018, "Group Normalization"):
// the channels are split into groups, each group of each batch item is
// normalised to zero mean and unit variance (biased variance, eps added
// inside the square root), then scaled and shifted per channel.
// x: [N, C, ...]; weight, bias: [C] or nil (no affine). Returns a new tensor
// of x's shape. Statistics are accumulated in float64. It panics if C is not
// divisible by groups.
func GroupNorm(x *Tensor, groups int, weight, bias *Tensor, eps float32) *Tensor {
	out := New(x.Shape...)
	GroupNormTo(out, x, groups, weight, bias, eps)
	return out
}

// GroupNormTo is GroupNorm writing into dst, which must have x's shape and
// may be x itself.
func GroupNormTo(dst, x *Tensor, groups int, weight, bias *Tensor, eps float32) {
	mustSameShape("GroupNorm", dst, x)
	if x.Dims() < 2 {
		panic(fmt.Sprintf("tensor: GroupNorm needs [N, C, ...], got %v", x.Shape))
	}
	n, c := x.Shape[0], x.Shape[1]
	if groups <= 0 || c%groups != 0 {
		panic(fmt.Sprintf("tensor: GroupNorm of %d channels into %d groups", c, groups))
	}
	spatial := x.Len() / max(1, n*c)
	cpg := c / groups
	size := cpg * spatial
	parallelFor(n*groups, 1, func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			base := ng * size
			src := x.Data[base : base+size]
			mean, rstd := meanRstd(src, eps)
			g := ng % groups
			for ci := 0; ci < cpg; ci++ {
				ch := g*cpg + ci
				scale, shift := float32(1), float32(0)
				if weight != nil {
					scale = weight.Data[ch]
				}
				if bias != nil {
					shift = bias.Data[ch]
				}
				a := rstd * scale
				b := shift - mean*a
				s := src[ci*spatial : (ci+1)*spatial]
				d := dst.Data[base+ci*spatial : base+(ci+1)*spatial]
				for i, v := range s {
					d[i] = v*a + b
				}
			}
		}
	})
}

// meanRstd returns the mean of s and 1/sqrt(var(s)+eps), biased variance,
// computed in float64.
func meanRstd(s []float32, eps float32) (float32, float32) {
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	mean := sum / float64(len(s))
	var sq float64
	for _, v := range s {
		d := float64(v) - mean
		sq += d * d
	}
	variance := sq / float64(len(s))
	return float32(mean), float32(1 / math.Sqrt(variance+float64(eps)))
}

// LayerNorm is torch.nn.LayerNorm over the last dimension (Ba et al. 2016).
// x: [..., D]; weight, bias: [D] or nil. Returns a new tensor of x's shape.
func LayerNorm(x, weight, bias *Tensor, eps float32) *Tensor {
	d := x.Dim(-1)
	if (weight != nil && weight.Len() != d) || (bias != nil && bias.Len() != d) {
		panic(fmt.Sprintf("tensor: LayerNorm of %v with weight/bias of another size", x.Shape))
	}
	out := New(x.Shape...)
	rows := x.Len() / max(1, d)
	parallelFor(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src := x.Data[r*d : (r+1)*d]
			dst := out.Data[r*d : (r+1)*d]
			mean, rstd := meanRstd(src, eps)
			for i, v := range src {
				y := (v - mean) * rstd
				if weight != nil {
					y *= weight.Data[i]
				}
				if bias != nil {
					y += bias.Data[i]
				}
				dst[i] = y
			}
		}
	})
	return out
}
