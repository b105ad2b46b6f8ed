// Package nn holds Pigment's weight loading and the basic layers every model
// component is built from (Linear, Conv2d, GroupNorm, LayerNorm, Embedding).
//
// Weights are looked up through a prefix-scoped builder, like candle's
// VarBuilder.pp or a directory path: w.Sub("down_blocks").Sub("0") names
// "down_blocks.0", and each checkpoint key string appears once, at the
// constructor of the struct that owns the tensor. Loading errors (missing key,
// wrong shape) are collected rather than returned from every constructor, so
// model constructors stay as readable as the checkpoint layout they mirror;
// Weights.Err reports all of them, each naming the full key.
package nn

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Source provides the tensors of one checkpoint by full key.
type Source interface {
	// Load returns the tensor named name, as float32 or, for a tensor of
	// two or more dimensions, possibly half-precision (tensor.FromHalf;
	// call Float32 where float32 storage is needed). It must have the given
	// shape; an implementation returns an error naming the key otherwise.
	Load(name string, shape []int) (*tensor.Tensor, error)
	// Has reports whether name exists.
	Has(name string) bool
	// Names lists every key of the checkpoint.
	Names() []string
}

// Weights is a prefix-scoped view of a Source that records which keys were
// used and every load error. The zero value is not usable; see NewWeights.
type Weights struct {
	prefix string
	state  *loadState
}

type loadState struct {
	src  Source
	mu   sync.Mutex
	used map[string]bool
	errs []error
}

// NewWeights starts loading from src at the root prefix.
func NewWeights(src Source) Weights {
	return Weights{state: &loadState{src: src, used: map[string]bool{}}}
}

// Sub returns the view of the child named name (joined with ".").
func (w Weights) Sub(name string) Weights {
	if w.prefix == "" {
		return Weights{prefix: name, state: w.state}
	}
	return Weights{prefix: w.prefix + "." + name, state: w.state}
}

// SubIndex is Sub with a list index, for keys such as "down_blocks.1".
func (w Weights) SubIndex(name string, i int) Weights {
	return w.Sub(fmt.Sprintf("%s.%d", name, i))
}

// Key returns the full key of name under this prefix.
func (w Weights) Key(name string) string {
	if w.prefix == "" {
		return name
	}
	return w.prefix + "." + name
}

// Has reports whether the checkpoint holds name under this prefix, for
// optional tensors such as conv_shortcut.
func (w Weights) Has(name string) bool { return w.state.src.Has(w.Key(name)) }

// Tensor loads name under this prefix, which must have the given shape. On
// error it records the error and returns a zero tensor of that shape, so
// construction can go on and report every problem at once through Err.
func (w Weights) Tensor(name string, shape ...int) *tensor.Tensor {
	key := w.Key(name)
	t, err := w.state.src.Load(key, shape)
	w.state.mu.Lock()
	defer w.state.mu.Unlock()
	w.state.used[key] = true
	if err != nil {
		w.state.errs = append(w.state.errs, err)
		return tensor.New(shape...)
	}
	return t
}

// Errorf records a construction error (an unsupported config value, say)
// against this prefix.
func (w Weights) Errorf(format string, args ...any) {
	w.state.mu.Lock()
	defer w.state.mu.Unlock()
	w.state.errs = append(w.state.errs, fmt.Errorf("%s: %s", w.prefix, fmt.Sprintf(format, args...)))
}

// Err returns every load error so far joined into one, or nil.
func (w Weights) Err() error {
	w.state.mu.Lock()
	defer w.state.mu.Unlock()
	return errors.Join(w.state.errs...)
}

// Unused returns the checkpoint keys under this prefix that no constructor
// loaded, sorted. A strict loader treats any as an error: they mean the
// model definition and the checkpoint disagree.
func (w Weights) Unused() []string {
	w.state.mu.Lock()
	defer w.state.mu.Unlock()
	var out []string
	for _, name := range w.state.src.Names() {
		if w.state.used[name] {
			continue
		}
		if w.prefix == "" || strings.HasPrefix(name, w.prefix+".") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Strict returns Err, or an error listing the unused keys (ignoring those
// for which ignore returns true) when there are any.
func (w Weights) Strict(ignore func(key string) bool) error {
	if err := w.Err(); err != nil {
		return err
	}
	var extra []string
	for _, k := range w.Unused() {
		if ignore == nil || !ignore(k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		if len(extra) > 8 {
			extra = append(extra[:8], fmt.Sprintf("… and %d more", len(extra)-8))
		}
		return fmt.Errorf("unexpected keys in checkpoint: %s", strings.Join(extra, ", "))
	}
	return nil
}

// RandomSource makes up weights of whatever shape is asked: biases and
// normalisation shifts are 0, normalisation scales are 1, and every other
// tensor is drawn from N(0, 1/fan_in) with fan_in the product of all but
// the first dimension (He-style scaling that keeps activations of order 1).
// Each tensor's values depend only on the seed and its key, not on the order
// of loading. It builds randomly initialised models for benchmarks and
// training.
type RandomSource struct {
	seed uint64
	mu   sync.Mutex
	keys []string
}

// NewRandomSource returns a RandomSource with the given seed.
func NewRandomSource(seed uint64) *RandomSource {
	return &RandomSource{seed: seed}
}

// Load implements Source.
func (s *RandomSource) Load(name string, shape []int) (*tensor.Tensor, error) {
	s.mu.Lock()
	s.keys = append(s.keys, name)
	s.mu.Unlock()
	t := tensor.New(shape...)
	last := name[strings.LastIndexByte(name, '.')+1:]
	switch {
	case last == "bias":
	case len(shape) == 1 && last == "weight":
		for i := range t.Data {
			t.Data[i] = 1
		}
	default:
		fanIn := 1
		for _, d := range shape[1:] {
			fanIn *= d
		}
		std := 1 / math.Sqrt(float64(max(fanIn, 1)))
		h := fnv.New64a()
		h.Write([]byte(name))
		key := h.Sum64()
		// Fill in fixed 64Ki-value segments, each with its own stream, so
		// large tensors are generated on every core and the result does not
		// depend on the core count.
		const seg = 1 << 16
		nseg := (len(t.Data) + seg - 1) / seg
		var wg sync.WaitGroup
		next := make(chan int, nseg)
		for i := 0; i < nseg; i++ {
			next <- i
		}
		close(next)
		for w := 0; w < min(runtime.GOMAXPROCS(0), nseg); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					r := rand.New(rand.NewPCG(s.seed^key, uint64(i)))
					part := t.Data[i*seg : min((i+1)*seg, len(t.Data))]
					for j := range part {
						part[j] = float32(r.NormFloat64() * std)
					}
				}
			}()
		}
		wg.Wait()
	}
	return t, nil
}

// Has implements Source: a RandomSource has every optional tensor.
func (s *RandomSource) Has(string) bool { return true }

// Names implements Source: the keys loaded so far.
func (s *RandomSource) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

// Float32Source wraps src so that every tensor it loads has float32 storage:
// half-precision tensors (such as FileSource returns for F16 and BF16
// weights) are widened exactly with Float32. Code that writes to weights,
// a trainer fine-tuning a checkpoint, loads through it.
func Float32Source(src Source) Source { return float32Source{src} }

type float32Source struct{ Source }

func (s float32Source) Load(name string, shape []int) (*tensor.Tensor, error) {
	t, err := s.Source.Load(name, shape)
	if err != nil {
		return nil, err
	}
	return t.Float32(), nil
}

// MapSource serves tensors from memory, checking shapes; tests and
// converters use it.
type MapSource map[string]*tensor.Tensor

// Load implements Source.
func (m MapSource) Load(name string, shape []int) (*tensor.Tensor, error) {
	t, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("missing tensor %q (want shape %v)", name, shape)
	}
	if !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("tensor %q has shape %v, want %v", name, t.Shape, shape)
	}
	return t, nil
}

// Has implements Source.
func (m MapSource) Has(name string) bool { _, ok := m[name]; return ok }

// Names implements Source.
func (m MapSource) Names() []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
