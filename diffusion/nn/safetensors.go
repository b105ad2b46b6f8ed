package nn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// FileSource serves tensors from safetensors files. F16 and BF16 tensors of
// two or more dimensions (the matrices and convolution kernels that hold
// nearly all of a model's weights) load as half-precision tensors
// (tensor.FromHalf), copied out of the file in their 16-bit form, so an fp16
// checkpoint takes half the memory of a float32 one; the ops that read
// weights widen them exactly, giving the same results as float32 weights.
// 1-D tensors (biases, normalisation weights) and every other dtype load as
// float32. Callers that need float32 storage, such as a trainer, call
// Float32 on what Load returns. Several files (sharded checkpoints) may back
// one source; a key must be in exactly one of them.
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
		kind, half := halfKinds[info.DType]
		if !half || len(shape) < 2 {
			return f.Tensor(name)
		}
		b, err := f.Bytes(name)
		if err != nil {
			return nil, err
		}
		// Copy: the file (possibly a read-only mapping) is closed after
		// loading, and the tensor must outlive it.
		bits := make([]uint16, len(b)/2)
		for j := range bits {
			bits[j] = binary.LittleEndian.Uint16(b[2*j:])
		}
		return tensor.FromHalf(bits, kind, shape...), nil
	}
	return nil, fmt.Errorf("%s: missing tensor %q (want shape %v)", s.describe(), name, shape)
}

// halfKinds are the file dtypes kept in 16 bits.
var halfKinds = map[safetensors.DType]tensor.HalfKind{safetensors.F16: tensor.F16, safetensors.BF16: tensor.BF16}

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
