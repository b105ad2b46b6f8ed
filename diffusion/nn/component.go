package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// OpenComponent opens the weights of one diffusers/transformers component
// folder (unet/, vae/, text_encoder/) whose weight file is named base
// ("diffusion_pytorch_model" or "model"). It looks, in order, for
// base.safetensors, base.fp16.safetensors, and a sharded checkpoint's
// base.safetensors.index.json, whose weight_map lists the shard files.
func OpenComponent(dir, base string) (*FileSource, error) {
	for _, name := range []string{base + ".safetensors", base + ".fp16.safetensors"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return OpenSafetensors(p)
		}
	}
	for _, name := range []string{base + ".safetensors.index.json", base + ".fp16.safetensors.index.json"} {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &index); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		var shards []string
		for _, f := range index.WeightMap {
			if filepath.Base(f) != f || f == "." || f == ".." {
				return nil, fmt.Errorf("%s: shard name %q is not a plain file name", p, f)
			}
			if !slices.Contains(shards, f) {
				shards = append(shards, f)
			}
		}
		if len(shards) == 0 {
			return nil, fmt.Errorf("%s: weight_map lists no shard files", p)
		}
		slices.Sort(shards)
		for i := range shards {
			shards[i] = filepath.Join(dir, shards[i])
		}
		return OpenSafetensors(shards...)
	}
	return nil, fmt.Errorf("%s: no %s.safetensors weights found (.bin/.ckpt pickles are not supported; convert them to safetensors)", dir, base)
}
