package nn

import "github.com/pigment-ai/pigment/diffusion/tensor"

// Linear is torch.nn.Linear: weight [out, in], bias [out] or nil.
type Linear struct {
	Weight, Bias *tensor.Tensor
}

// NewLinear loads weight [out, in] and, if withBias, bias [out] from w.
func NewLinear(w Weights, in, out int, withBias bool) *Linear {
	l := &Linear{Weight: w.Tensor("weight", out, in)}
	if withBias {
		l.Bias = w.Tensor("bias", out)
	}
	return l
}

// Forward maps x [..., in] to [..., out].
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Linear(x, l.Weight, l.Bias)
}

// Conv2d is torch.nn.Conv2d with square kernels: weight [out, in, k, k],
// bias [out].
type Conv2d struct {
	Weight, Bias *tensor.Tensor
	tensor.Conv2dParams
}

// NewConv2d loads a k×k convolution from in to out channels with bias.
func NewConv2d(w Weights, in, out, k, stride, padding int) *Conv2d {
	return &Conv2d{
		Weight:       w.Tensor("weight", out, in, k, k),
		Bias:         w.Tensor("bias", out),
		Conv2dParams: tensor.Conv2dParams{Stride: stride, Padding: padding},
	}
}

// Forward maps x [N, in, H, W] to [N, out, H', W'].
func (c *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Conv2d(x, c.Weight, c.Bias, c.Conv2dParams)
}

// ForwardUpsampled2x is Forward of x upsampled 2x by nearest neighbour,
// [N, in, H, W] → [N, out, 2H', 2W'] for a size-keeping convolution,
// without storing the upsampled x (tensor.Conv2dUpsample2x).
func (c *Conv2d) ForwardUpsampled2x(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Conv2dUpsample2x(x, c.Weight, c.Bias, c.Conv2dParams)
}

// ForwardGroupNormSiLU is Forward(SiLU(g.Forward(x))), the normalisation,
// activation and convolution of a ResNet block, without storing the
// normalised x where the convolution allows (tensor.Conv2dGroupNormSiLU).
// With consume, x is given up: the caller must not use it afterwards.
func (c *Conv2d) ForwardGroupNormSiLU(x *tensor.Tensor, g *GroupNorm, consume bool) *tensor.Tensor {
	return tensor.Conv2dGroupNormSiLU(x, g.Groups, g.Weight, g.Bias, g.Eps, c.Weight, c.Bias, c.Conv2dParams, consume)
}

// GroupNorm is torch.nn.GroupNorm with affine weight and bias [C].
type GroupNorm struct {
	Weight, Bias *tensor.Tensor
	Groups       int
	Eps          float32
}

// NewGroupNorm loads a GroupNorm over channels split into groups.
func NewGroupNorm(w Weights, groups, channels int, eps float32) *GroupNorm {
	if groups <= 0 || channels%groups != 0 {
		w.Errorf("group norm of %d channels into %d groups", channels, groups)
		groups = 1
	}
	return &GroupNorm{Weight: w.Tensor("weight", channels), Bias: w.Tensor("bias", channels), Groups: groups, Eps: eps}
}

// Forward normalises x [N, C, ...], returning a new tensor of its shape.
func (g *GroupNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.GroupNorm(x, g.Groups, g.Weight, g.Bias, g.Eps)
}

// ForwardInPlace normalises x in place and returns it, for a caller that
// owns x and needs its values no more (a tracked x keeps them for the
// backward step: see tensor.GroupNormTo). It saves allocating, and zeroing,
// an activation-sized tensor.
func (g *GroupNorm) ForwardInPlace(x *tensor.Tensor) *tensor.Tensor {
	tensor.GroupNormTo(x, x, g.Groups, g.Weight, g.Bias, g.Eps)
	return x
}

// LayerNorm is torch.nn.LayerNorm over the last dimension, weight and bias [D].
type LayerNorm struct {
	Weight, Bias *tensor.Tensor
	Eps          float32
}

// NewLayerNorm loads a LayerNorm of width d.
func NewLayerNorm(w Weights, d int, eps float32) *LayerNorm {
	return &LayerNorm{Weight: w.Tensor("weight", d), Bias: w.Tensor("bias", d), Eps: eps}
}

// Forward normalises x [..., D].
func (l *LayerNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.LayerNorm(x, l.Weight, l.Bias, l.Eps)
}

// Embedding is torch.nn.Embedding: a table [num, dim] indexed by id.
type Embedding struct {
	Weight *tensor.Tensor
}

// NewEmbedding loads a [num, dim] table.
func NewEmbedding(w Weights, num, dim int) *Embedding {
	return &Embedding{Weight: w.Tensor("weight", num, dim)}
}

// Forward looks up ids [B, L] (given flat with their batch size) and returns
// [B, L, dim]. It panics on an id outside the table; callers validate ids.
func (e *Embedding) Forward(ids []int, batch int) *tensor.Tensor {
	return tensor.Gather(e.Weight, ids, batch)
}
