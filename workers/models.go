package workers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
)

// ErrModelNotFound is returned for a model name the models directory does
// not hold; a job naming one fails without a retry.
var ErrModelNotFound = errors.New("model not found")

// Models scans Config.ModelsDir and describes every valid model in it,
// reading only configuration files (no weights). Invalid model
// directories are logged and left out.
func (w *Worker) Models() ([]pigment.ModelInfo, error) {
	infos, errs := ScanModels(w.cfg.ModelsDir)
	for _, err := range errs {
		w.log.Warn("skipping model", "err", err)
	}
	if len(infos) == 0 && len(errs) == 0 {
		if _, err := os.Stat(w.cfg.ModelsDir); err != nil {
			return nil, err
		}
	}
	return infos, nil
}

// ScanModels describes the models of dir: each subfolder with a
// model_index.json, named by the folder, or dir itself, named by its base
// name, when it is a model directory. It returns the valid ones sorted by
// name and an error for each invalid one.
func ScanModels(dir string) ([]pigment.ModelInfo, []error) {
	var dirs []string
	if isModelDir(dir) {
		dirs = []string{dir}
	} else {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, []error{err}
		}
		for _, e := range entries {
			if p := filepath.Join(dir, e.Name()); isModelDir(p) { // symlinked models too
				dirs = append(dirs, p)
			}
		}
	}
	var infos []pigment.ModelInfo
	var errs []error
	for _, d := range dirs {
		info, err := ReadModelInfo(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		infos = append(infos, info)
	}
	slices.SortFunc(infos, func(a, b pigment.ModelInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, errs
}

func isModelDir(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "model_index.json"))
	return err == nil && st.Mode().IsRegular()
}

// ReadModelInfo describes the diffusers model directory dir from its
// configuration files, as the gateway needs it to validate requests
// without loading weights.
func ReadModelInfo(dir string) (pigment.ModelInfo, error) {
	name := filepath.Base(filepath.Clean(dir))
	info := pigment.ModelInfo{Name: name, UpdatedAt: time.Now().UTC()}
	wrap := func(err error) error { return fmt.Errorf("model %s: %w", name, err) }
	if _, err := diffusion.ReadModelIndex(dir); err != nil {
		return info, wrap(err)
	}
	vc, err := vae.LoadConfig(filepath.Join(dir, "vae", "config.json"))
	if err != nil {
		return info, wrap(err)
	}
	uc, err := unet.LoadConfig(filepath.Join(dir, "unet", "config.json"))
	if err != nil {
		return info, wrap(err)
	}
	tc, err := clip.LoadTextConfig(filepath.Join(dir, "text_encoder", "config.json"))
	if err != nil {
		return info, wrap(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "scheduler", "scheduler_config.json"))
	if err != nil {
		return info, wrap(err)
	}
	sc, err := sampling.ParseConfig(b)
	if err != nil {
		return info, wrap(err)
	}
	kind, err := sampling.DefaultKind(sc)
	if err != nil {
		return info, wrap(err)
	}
	info.VAEScaleFactor = vc.ScaleFactor()
	info.DefaultSize = uc.SampleSize * info.VAEScaleFactor
	info.Sampler = string(kind)
	info.ClipLayers = tc.NumHiddenLayers
	return info, nil
}

// ModelCache keeps loaded models in memory within a byte budget, evicting
// the least recently used idle model when a load would exceed it. A model
// is loaded once however many jobs ask for it at the same time. Models in
// use are never evicted, so a budget smaller than the models in use is
// exceeded rather than failing jobs. It is safe for concurrent use; share
// one among the Workers of a process.
type ModelCache struct {
	dir    string
	budget int64
	load   func(dir string) (*diffusion.Model, error)

	mu      sync.Mutex
	entries map[string]*modelEntry
	clock   uint64
	loads   *prometheus.CounterVec
}

type modelEntry struct {
	name  string
	done  chan struct{} // closed when the load finished
	model *diffusion.Model
	err   error
	size  int64  // estimated bytes in memory
	refs  int    // jobs using it (or waiting for it)
	used  uint64 // clock of the last use
}

// NewModelCache returns a cache of the models in dir (see
// Config.ModelsDir) holding about budget bytes of weights.
func NewModelCache(dir string, budget int64) *ModelCache {
	return &ModelCache{dir: dir, budget: budget, load: diffusion.LoadModel, entries: map[string]*modelEntry{}}
}

// Dir returns the models directory.
func (c *ModelCache) Dir() string { return c.dir }

func (c *ModelCache) setLoadCounter(v *prometheus.CounterVec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loads == nil {
		c.loads = v
	}
}

// path returns the directory of model name, or ErrModelNotFound.
func (c *ModelCache) path(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	if isModelDir(c.dir) {
		if filepath.Base(filepath.Clean(c.dir)) == name {
			return c.dir, nil
		}
		return "", fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	p := filepath.Join(c.dir, name)
	if !isModelDir(p) {
		return "", fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	return p, nil
}

// Get returns model name, loading it if needed, and a release function
// the caller must call when done with it. It returns ErrModelNotFound for
// an unknown name, the load error if the model does not load (not cached:
// the next Get tries again), or ctx's error if ctx is done first (the load
// itself goes on and is cached).
func (c *ModelCache) Get(ctx context.Context, name string) (*diffusion.Model, func(), error) {
	path, err := c.path(name)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	e, ok := c.entries[name]
	if !ok {
		e = &modelEntry{name: name, done: make(chan struct{})}
		c.entries[name] = e
		go c.fill(e, path)
	}
	e.refs++
	c.mu.Unlock()

	select {
	case <-e.done:
	case <-ctx.Done():
		c.release(e)
		return nil, nil, ctx.Err()
	}
	if e.err != nil {
		c.release(e)
		return nil, nil, e.err
	}
	var once sync.Once
	return e.model, func() { once.Do(func() { c.release(e) }) }, nil
}

// fill loads e, first evicting idle models to make room for its estimated
// size.
func (c *ModelCache) fill(e *modelEntry, path string) {
	size := EstimateModelBytes(path)
	c.mu.Lock()
	e.size = size
	c.evictLocked()
	c.mu.Unlock()

	m, err := safeLoad(c.load, path)

	c.mu.Lock()
	defer c.mu.Unlock()
	e.model, e.err = m, err
	if err != nil {
		if c.entries[e.name] == e {
			delete(c.entries, e.name)
		}
	} else if c.loads != nil {
		c.loads.WithLabelValues(e.name).Inc()
	}
	close(e.done)
}

func safeLoad(load func(string) (*diffusion.Model, error), path string) (m *diffusion.Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("load model %s: panic: %v\n%s", path, r, debug.Stack())
		}
	}()
	return load(path)
}

func (c *ModelCache) release(e *modelEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	c.clock++
	e.used = c.clock
	c.evictLocked()
}

// evictLocked drops least recently used idle models while the estimated
// size of all entries (loading ones included) exceeds the budget.
func (c *ModelCache) evictLocked() {
	for {
		var total int64
		var victim *modelEntry
		for _, e := range c.entries {
			total += e.size
			if e.refs > 0 || !closed(e.done) {
				continue
			}
			if victim == nil || e.used < victim.used {
				victim = e
			}
		}
		if total <= c.budget || victim == nil {
			return
		}
		delete(c.entries, victim.name)
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Loaded returns the names of the models in memory (or loading), sorted.
func (c *ModelCache) Loaded() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for name := range c.entries {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// EstimateModelBytes estimates the memory a loaded model takes: its
// weights as the engine keeps them, F16 and BF16 tensors of two or more
// dimensions in 2 bytes per value (nn.FileSource keeps them in 16 bits) and
// everything else as float32. It reads only safetensors headers; a file
// whose header does not parse counts twice its size.
func EstimateModelBytes(dir string) int64 {
	var total int64
	for _, comp := range []struct{ sub, base string }{
		{"unet", "diffusion_pytorch_model"},
		{"vae", "diffusion_pytorch_model"},
		{"text_encoder", "model"},
	} {
		for _, p := range weightFiles(filepath.Join(dir, comp.sub), comp.base) {
			total += weightBytes(p)
		}
	}
	return total
}

// weightFiles lists the safetensors files of a component as
// nn.OpenComponent picks them: base.safetensors, else
// base.fp16.safetensors, else the shards (every other .safetensors file).
func weightFiles(dir, base string) []string {
	for _, name := range []string{base + ".safetensors", base + ".fp16.safetensors"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return []string{p}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	return files
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func weightBytes(path string) int64 {
	f, err := safetensors.Open(path)
	if err != nil {
		st, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return 2 * st.Size()
	}
	defer f.Close()
	var n int64
	for _, name := range f.Names() {
		if in, ok := f.Info(name); ok {
			size := int64(4)
			if (in.DType == safetensors.F16 || in.DType == safetensors.BF16) && len(in.Shape) >= 2 {
				size = 2
			}
			n += size * int64(in.Len())
		}
	}
	return n
}
