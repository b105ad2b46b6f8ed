package nn

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// FileSource serves tensors from safetensors files, converting F32, F16 and
// BF16 to float32 as they are loaded. Several files (sharded checkpoints)
// may back one source; a key must be in exactly one of them.
type FileSource struct {
	files []*safetensors.File
	paths []string
}

// OpenSafetensors opens the given safetensors files as one Source.
func OpenSafetensors(paths ...string) (*FileSource, error) {
	s := &FileSource{}
	for _, p := range paths {
		f, err := safetensors.Open(p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files = append(s.files, f)
		s.paths = append(s.paths, p)
	}
	return s, nil
}

// Close releases the files.
func (s *FileSource) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files = nil
	return errors.Join(errs...)
}

// Load implements Source.
func (s *FileSource) Load(name string, shape []int) (*tensor.Tensor, error) {
	for i, f := range s.files {
		info, ok := f.Info(name)
		if !ok {
			continue
		}
		if !slices.Equal(info.Shape, shape) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, the model config wants %v", s.paths[i], name, info.Shape, shape)
		}
		return f.Tensor(name)
	}
	return nil, fmt.Errorf("%s: missing tensor %q (want shape %v)", s.describe(), name, shape)
}

// Has implements Source.
func (s *FileSource) Has(name string) bool {
	for _, f := range s.files {
		if _, ok := f.Info(name); ok {
			return true
		}
	}
	return false
}

// Names implements Source.
func (s *FileSource) Names() []string {
	var out []string
	for _, f := range s.files {
		out = append(out, f.Names()...)
	}
	slices.Sort(out)
	return out
}

func (s *FileSource) describe() string {
	if len(s.paths) == 1 {
		return s.paths[0]
	}
	return fmt.Sprint(s.paths)
}

// Shape returns the stored shape of name.
func (s *FileSource) Shape(name string) ([]int, bool) {
	for _, f := range s.files {
		if info, ok := f.Info(name); ok {
			return info.Shape, true
		}
	}
	return nil, false
}
