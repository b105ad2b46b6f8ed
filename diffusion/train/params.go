// Package train trains Pigment's diffusion models with the engine's own
// layer code: the same clip.TextModel, unet.UNet2DConditionModel and
// vae.AutoencoderKL that serve inference run forward on a tensor.Tape, whose
// Backward gives the gradients (see diffusion/tensor/autograd.go). It holds
// the optimiser (AdamW), the exponential moving average of weights,
// checkpoints that resume exactly, the word-level CLIP vocabulary writer and
// the two training stages of latent diffusion (Rombach et al. 2022): the
// autoencoder first, then the UNet and the text encoder on its latents.
package train

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Params is a model's trainable tensors by checkpoint key (its state dict),
// in the order the model constructor loaded them.
type Params struct {
	Names   []string
	Tensors []*tensor.Tensor
}

// Count returns the number of scalar parameters.
func (p Params) Count() int {
	n := 0
	for _, t := range p.Tensors {
		n += t.Len()
	}
	return n
}

// Watch makes every parameter a leaf of tp.
func (p Params) Watch(tp *tensor.Tape) { tp.Watch(p.Tensors...) }

// Unwatch stops tracking every parameter (for inference with them).
func (p Params) Unwatch() { tensor.Unwatch(p.Tensors...) }

// Save writes the parameters to a safetensors file at path in dtype (F32,
// F16 or BF16), sorted by key, as a diffusers or transformers checkpoint
// stores them; prefix is prepended to each key. The write is atomic.
func (p Params) Save(path string, dtype safetensors.DType, metadata map[string]string) error {
	return safetensors.WriteFile(path, p.tensors("", dtype), metadata)
}

func (p Params) tensors(prefix string, dtype safetensors.DType) []safetensors.Tensor {
	ts := make([]safetensors.Tensor, len(p.Names))
	for i, name := range p.Names {
		t := p.Tensors[i]
		ts[i] = safetensors.Tensor{Name: prefix + name, Shape: t.Shape, Data: t.Data, DType: dtype}
	}
	slices.SortFunc(ts, func(a, b safetensors.Tensor) int { return strings.Compare(a.Name, b.Name) })
	return ts
}

// Select returns the parameters whose names start with one of prefixes.
func (p Params) Select(prefixes ...string) Params {
	var out Params
	for i, n := range p.Names {
		for _, pre := range prefixes {
			if strings.HasPrefix(n, pre) {
				out.Names = append(out.Names, n)
				out.Tensors = append(out.Tensors, p.Tensors[i])
				break
			}
		}
	}
	return out
}

// index returns the position of each name.
func (p Params) index() map[string]int {
	m := make(map[string]int, len(p.Names))
	for i, n := range p.Names {
		m[n] = i
	}
	return m
}

// Recorder is an nn.Source that passes every load through to Source and
// keeps the tensor it returns: building a model from a Recorder yields the
// model and its Params. From nn.RandomSource it gives a model initialised
// for training from scratch; from a checkpoint (nn.FileSource, whose loads
// are copies) one to fine-tune.
type Recorder struct {
	nn.Source
	mu     sync.Mutex
	params Params
}

// NewRecorder records the loads from src.
func NewRecorder(src nn.Source) *Recorder { return &Recorder{Source: src} }

// Load implements nn.Source.
func (r *Recorder) Load(name string, shape []int) (*tensor.Tensor, error) {
	t, err := r.Source.Load(name, shape)
	if err != nil {
		return nil, err
	}
	t = t.Float32() // fp16/bf16 checkpoint weights are trained in float32
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.params.Names, name) {
		return nil, fmt.Errorf("train: parameter %q loaded twice", name)
	}
	r.params.Names = append(r.params.Names, name)
	r.params.Tensors = append(r.params.Tensors, t)
	return t, nil
}

// Params returns the tensors loaded so far.
func (r *Recorder) Params() Params {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Params{Names: slices.Clone(r.params.Names), Tensors: slices.Clone(r.params.Tensors)}
}
