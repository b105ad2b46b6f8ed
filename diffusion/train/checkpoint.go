package train

import (
	"fmt"
	"maps"
	"strconv"

	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// State is everything a training run needs to resume exactly where it
// stopped: the step count, the parameters, the optimiser moments and the
// EMA. Data and noise are drawn from generators seeded by (seed, step), so
// no random-generator state needs saving.
type State struct {
	Step   int
	Params Params
	Opt    *AdamW
	EMA    *EMA
	// Meta is free-form run information (stage, config) saved alongside.
	Meta map[string]string
}

// Checkpoint key prefixes in the safetensors file.
const (
	keyParam = "param/"
	keyEMA   = "ema/"
	keyM     = "adam_m/"
	keyV     = "adam_v/"
)

// SaveCheckpoint writes s to path (one safetensors file, float32, written
// atomically so a crash never leaves a torn checkpoint).
func SaveCheckpoint(path string, s State) error {
	ts := s.Params.tensors(keyParam, safetensors.F32)
	ts = append(ts, s.EMA.Params(s.Params).tensors(keyEMA, safetensors.F32)...)
	for i, name := range s.Params.Names {
		shape := s.Params.Tensors[i].Shape
		ts = append(ts,
			safetensors.Tensor{Name: keyM + name, Shape: shape, Data: s.Opt.M[i]},
			safetensors.Tensor{Name: keyV + name, Shape: shape, Data: s.Opt.V[i]})
	}
	meta := maps.Clone(s.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta["step"] = strconv.Itoa(s.Step)
	meta["adam_step"] = strconv.Itoa(s.Opt.Step)
	meta["ema_updates"] = strconv.Itoa(s.EMA.Updates)
	return safetensors.WriteFile(path, ts, meta)
}

// LoadCheckpoint reads path into s, whose Params, Opt and EMA must already
// be built for the same model: every parameter must be present with the same
// shape. It returns the checkpoint's metadata.
func LoadCheckpoint(path string, s *State) (map[string]string, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	meta := f.Metadata()
	load := func(key string, dst []float32, shape []int) error {
		t, err := f.Tensor(key)
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", path, err)
		}
		if !tensor.SameShape(t, tensor.FromData(dst, shape...)) {
			return fmt.Errorf("checkpoint %s: %s has shape %v, the model wants %v", path, key, t.Shape, shape)
		}
		copy(dst, t.Data)
		return nil
	}
	for i, name := range s.Params.Names {
		p := s.Params.Tensors[i]
		for _, part := range []struct {
			prefix string
			dst    []float32
		}{{keyParam, p.Data}, {keyEMA, s.EMA.Shadow[i]}, {keyM, s.Opt.M[i]}, {keyV, s.Opt.V[i]}} {
			if err := load(part.prefix+name, part.dst, p.Shape); err != nil {
				return nil, err
			}
		}
	}
	for key, dst := range map[string]*int{"step": &s.Step, "adam_step": &s.Opt.Step, "ema_updates": &s.EMA.Updates} {
		v, err := strconv.Atoi(meta[key])
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: metadata %s: %q is not a count", path, key, meta[key])
		}
		*dst = v
	}
	return meta, nil
}
