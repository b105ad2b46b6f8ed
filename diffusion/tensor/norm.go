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
//
// Backward (when x, weight or bias is tracked) uses each group's mean and
// 1/std saved by the forward: dbias = Σ g, dweight = Σ g·x̂ over N and the
// spatial positions, and dx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂)) per
// group, the reductions in float64.
func GroupNorm(x *Tensor, groups int, weight, bias *Tensor, eps float32) *Tensor {
	out := newUninit(x.Shape...) // groupNorm writes every element
	groupNorm(out, x, groups, weight, bias, eps, true)
	return out
}

// GroupNormTo is GroupNorm writing into dst, which must have x's shape and
// may be x itself. When an input is tracked, dst is rebound to a fresh slice
// rather than overwritten (see Tape), so with dst == x the values x had stay
// available to the backward steps that saved them.
func GroupNormTo(dst, x *Tensor, groups int, weight, bias *Tensor, eps float32) {
	groupNorm(dst, x, groups, weight, bias, eps, false)
}

// groupNorm is GroupNormTo; owned says dst.Data is a new slice nothing else
// refers to, which a tracked call may then write to directly.
func groupNorm(dst, x *Tensor, groups int, weight, bias *Tensor, eps float32, owned bool) {
	mustFloat32("GroupNorm", dst, x, weight, bias)
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
	xd := x.Data
	var wd, bd []float32
	if weight != nil {
		wd = weight.Data
	}
	if bias != nil {
		bd = bias.Data
	}
	fresh := tracked(x, weight, bias)
	var stats []float32 // mean and rstd of each (n, group), saved for backward
	if fresh {
		if !owned {
			dst.Data = makeFloats(len(xd)) // see Tape: never overwrite saved values
		}
		stats = make([]float32, 2*n*groups)
	}
	out := dst.Data
	parallelFor(n*groups, 1, func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			base := ng * size
			src := xd[base : base+size]
			mean, rstd := meanRstd(src, eps)
			if stats != nil {
				stats[2*ng], stats[2*ng+1] = mean, rstd
			}
			g := ng % groups
			for ci := 0; ci < cpg; ci++ {
				a, b := groupAffine(wd, bd, g*cpg+ci, mean, rstd)
				s := src[ci*spatial : (ci+1)*spatial]
				d := out[base+ci*spatial : base+(ci+1)*spatial]
				for i, v := range s {
					d[i] = v*a + b
				}
			}
		}
	})
	if !fresh {
		dst.ag = nil
		return
	}
	record(dst, []*Tensor{x, weight, bias}, func(g []float32, d [][]float32) {
		dx, dw, db := d[0], d[1], d[2]
		// Per (n, channel) plane: Σ g and Σ g·x̂.
		sg := make([]float64, n*c)
		sgx := make([]float64, n*c)
		parallelFor(n*c, 4, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				ng := p / cpg // planes of one group are consecutive
				mean := stats[2*ng]
				gp, xp := g[p*spatial:(p+1)*spatial], xd[p*spatial:(p+1)*spatial]
				var s, sx float64
				for i, v := range gp {
					s += float64(v)
					sx += float64(v) * float64(xp[i]-mean)
				}
				sg[p], sgx[p] = s, sx*float64(stats[2*ng+1])
			}
		})
		for p := range sg {
			ch := p % c
			if db != nil {
				db[ch] += float32(sg[p])
			}
			if dw != nil {
				dw[ch] += float32(sgx[p])
			}
		}
		if dx == nil {
			return
		}
		parallelFor(n*groups, 1, func(lo, hi int) {
			for ng := lo; ng < hi; ng++ {
				mean, rstd := stats[2*ng], stats[2*ng+1]
				grp := ng % groups
				var a, b float64 // mean(g·w) and mean(g·w·x̂) over the group
				for ci := 0; ci < cpg; ci++ {
					wc := 1.0
					if wd != nil {
						wc = float64(wd[grp*cpg+ci])
					}
					a += wc * sg[ng*cpg+ci]
					b += wc * sgx[ng*cpg+ci]
				}
				ma, mb := float32(a/float64(size)), float32(b/float64(size))
				for ci := 0; ci < cpg; ci++ {
					wc := float32(1)
					if wd != nil {
						wc = wd[grp*cpg+ci]
					}
					off := ng*size + ci*spatial
					gp, xp, dp := g[off:off+spatial], xd[off:off+spatial], dx[off:off+spatial]
					for i, v := range gp {
						xh := (xp[i] - mean) * rstd
						dp[i] += rstd * (v*wc - ma - xh*mb)
					}
				}
			}
		})
	})
}

// groupAffine returns GroupNorm's map x̂ = x·a + b for channel ch of a group
// with the given mean and 1/std: a = rstd·γ, b = β − mean·a (γ = 1 and β = 0
// when weight or bias is nil). Conv2dGroupNormSiLU uses it too, so both give
// the same bits.
func groupAffine(weight, bias []float32, ch int, mean, rstd float32) (a, b float32) {
	scale, shift := float32(1), float32(0)
	if weight != nil {
		scale = weight[ch]
	}
	if bias != nil {
		shift = bias[ch]
	}
	a = rstd * scale
	return a, shift - mean*a
}

// meanRstd returns the mean of s and 1/sqrt(var(s)+eps), biased variance,
// computed in float64 in two passes. Each pass keeps four partial sums, so
// consecutive additions do not wait on each other (one running sum made
// the GroupNorm statistics of a 512x512 VAE decode latency-bound).
func meanRstd(s []float32, eps float32) (float32, float32) {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		q := s[i : i+4 : i+4]
		s0 += float64(q[0])
		s1 += float64(q[1])
		s2 += float64(q[2])
		s3 += float64(q[3])
	}
	for ; i < len(s); i++ {
		s0 += float64(s[i])
	}
	mean := (s0 + s1 + s2 + s3) / float64(len(s))
	var q0, q1, q2, q3 float64
	i = 0
	for ; i+4 <= len(s); i += 4 {
		q := s[i : i+4 : i+4]
		d0, d1, d2, d3 := float64(q[0])-mean, float64(q[1])-mean, float64(q[2])-mean, float64(q[3])-mean
		q0 += d0 * d0
		q1 += d1 * d1
		q2 += d2 * d2
		q3 += d3 * d3
	}
	for ; i < len(s); i++ {
		d := float64(s[i]) - mean
		q0 += d * d
	}
	variance := (q0 + q1 + q2 + q3) / float64(len(s))
	return float32(mean), float32(1 / math.Sqrt(variance+float64(eps)))
}

// LayerNorm is torch.nn.LayerNorm over the last dimension (Ba et al. 2016).
// x: [..., D]; weight, bias: [D] or nil. Returns a new tensor of x's shape.
//
// Backward (when x, weight or bias is tracked) uses each row's mean and
// 1/std saved by the forward: dbias = Σ g, dweight = Σ g·x̂ over the rows,
// and dx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂)) per row, the reductions
// in float64.
func LayerNorm(x, weight, bias *Tensor, eps float32) *Tensor {
	mustFloat32("LayerNorm", x, weight, bias)
	d := x.Dim(-1)
	if (weight != nil && weight.Len() != d) || (bias != nil && bias.Len() != d) {
		panic(fmt.Sprintf("tensor: LayerNorm of %v with weight/bias of another size", x.Shape))
	}
	out := New(x.Shape...)
	rows := x.Len() / max(1, d)
	xd := x.Data
	var wd, bd []float32
	if weight != nil {
		wd = weight.Data
	}
	if bias != nil {
		bd = bias.Data
	}
	var stats []float32 // mean and rstd of each row, saved for backward
	if tracked(x, weight, bias) {
		stats = make([]float32, 2*rows)
	}
	parallelFor(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src := xd[r*d : (r+1)*d]
			dst := out.Data[r*d : (r+1)*d]
			mean, rstd := meanRstd(src, eps)
			if stats != nil {
				stats[2*r], stats[2*r+1] = mean, rstd
			}
			for i, v := range src {
				y := (v - mean) * rstd
				if wd != nil {
					y *= wd[i]
				}
				if bd != nil {
					y += bd[i]
				}
				dst[i] = y
			}
		}
	})
	if stats == nil {
		return out
	}
	record(out, []*Tensor{x, weight, bias}, func(g []float32, grads [][]float32) {
		dx, dw, db := grads[0], grads[1], grads[2]
		if dw != nil || db != nil {
			// Column sums over the rows, split by column so workers write
			// disjoint parts of dw and db.
			parallelFor(d, 16, func(lo, hi int) {
				sg := make([]float64, hi-lo)
				sgx := make([]float64, hi-lo)
				for r := 0; r < rows; r++ {
					mean, rstd := stats[2*r], stats[2*r+1]
					gr, xr := g[r*d+lo:r*d+hi], xd[r*d+lo:r*d+hi]
					for i, v := range gr {
						sg[i] += float64(v)
						sgx[i] += float64(v * ((xr[i] - mean) * rstd))
					}
				}
				for i := range sg {
					if db != nil {
						db[lo+i] += float32(sg[i])
					}
					if dw != nil {
						dw[lo+i] += float32(sgx[i])
					}
				}
			})
		}
		if dx == nil {
			return
		}
		w := wd
		if w == nil {
			w = make([]float32, d)
			fill(w, 1)
		}
		parallelFor(rows, 16, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				mean, rstd := stats[2*r], stats[2*r+1]
				gr, xr, dr, w := g[r*d:(r+1)*d], xd[r*d:(r+1)*d], dx[r*d:(r+1)*d], w[:d]
				// Σ g·w and Σ g·w·x̂ over the row, in two partial sums each.
				var a0, a1, b0, b1 float64
				i := 0
				for ; i+2 <= d; i += 2 {
					g0, g1 := gr[i]*w[i], gr[i+1]*w[i+1]
					a0 += float64(g0)
					a1 += float64(g1)
					b0 += float64(g0 * ((xr[i] - mean) * rstd))
					b1 += float64(g1 * ((xr[i+1] - mean) * rstd))
				}
				if i < d {
					a0 += float64(gr[i] * w[i])
					b0 += float64(gr[i] * w[i] * ((xr[i] - mean) * rstd))
				}
				ma, mb := float32((a0+a1)/float64(d)), float32((b0+b1)/float64(d))
				for i, v := range gr {
					dr[i] += rstd * (v*w[i] - ma - (xr[i]-mean)*rstd*mb)
				}
			}
		})
	})
	return out
}
