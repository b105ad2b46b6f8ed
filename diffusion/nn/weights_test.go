package nn

// Tests of the prefix-scoped weight builder (Weights) and the in-memory
// sources (RandomSource, MapSource). They need no reference data: every
// expected value is written out by hand in the tables below.

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

func TestWeightsNaming(t *testing.T) {
	t.Parallel()
	root := NewWeights(MapSource{})
	tests := []struct {
		name string
		w    Weights
		key  string // w.Key("weight")
	}{
		{"root", root, "weight"},
		{"sub", root.Sub("conv_in"), "conv_in.weight"},
		{"nested sub", root.Sub("mid_block").Sub("resnets"), "mid_block.resnets.weight"},
		{"sub index", root.SubIndex("down_blocks", 1), "down_blocks.1.weight"},
		{"sub index zero", root.SubIndex("down_blocks", 0), "down_blocks.0.weight"},
		{"index then sub", root.SubIndex("down_blocks", 2).Sub("attentions").SubIndex("transformer_blocks", 0),
			"down_blocks.2.attentions.transformer_blocks.0.weight"},
		{"sub with dots", root.Sub("text_model.encoder"), "text_model.encoder.weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Key("weight"); got != tt.key {
				t.Errorf("Key(%q) = %q, want %q", "weight", got, tt.key)
			}
		})
	}
}

func TestWeightsTensor(t *testing.T) {
	t.Parallel()
	src := MapSource{
		"a.b.weight": tensor.FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"a.b.bias":   tensor.FromData([]float32{7, 8}, 2),
	}
	tests := []struct {
		name    string
		key     string
		shape   []int
		want    []float32 // nil: expect an error and zeros
		errSubs []string  // substrings of the recorded error
	}{
		{name: "present", key: "weight", shape: []int{2, 3}, want: []float32{1, 2, 3, 4, 5, 6}},
		{name: "present 1-D", key: "bias", shape: []int{2}, want: []float32{7, 8}},
		{name: "missing", key: "gamma", shape: []int{4, 5}, errSubs: []string{`"a.b.gamma"`, "missing", "[4 5]"}},
		{name: "wrong shape", key: "weight", shape: []int{3, 2}, errSubs: []string{`"a.b.weight"`, "[2 3]", "[3 2]"}},
		{name: "wrong rank", key: "bias", shape: []int{2, 1}, errSubs: []string{`"a.b.bias"`, "[2]", "[2 1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWeights(src).Sub("a").Sub("b")
			got := w.Tensor(tt.key, tt.shape...)
			if got == nil {
				t.Fatalf("Tensor(%q, %v) = nil", tt.key, tt.shape)
			}
			if !slices.Equal(got.Shape, tt.shape) {
				t.Errorf("shape %v, want the asked %v", got.Shape, tt.shape)
			}
			err := w.Err()
			if tt.want != nil {
				if err != nil {
					t.Errorf("Err() = %v, want nil", err)
				}
				if !slices.Equal(got.Data, tt.want) {
					t.Errorf("data %v, want %v", got.Data, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Err() = nil after loading %q with shape %v", w.Key(tt.key), tt.shape)
			}
			for _, s := range tt.errSubs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Err() = %q, want it to mention %s", err, s)
				}
			}
			for i, v := range got.Data {
				if v != 0 {
					t.Fatalf("on error Tensor returned %v at %d, want a zero tensor", v, i)
				}
			}
		})
	}
}

func TestWeightsErrJoinsAll(t *testing.T) {
	t.Parallel()
	src := MapSource{"x.weight": tensor.New(2, 2)}
	w := NewWeights(src)
	if err := w.Err(); err != nil {
		t.Fatalf("fresh Weights: Err() = %v", err)
	}
	w.Sub("x").Tensor("weight", 3, 3)    // shape mismatch
	w.Sub("y").Tensor("weight", 1)       // missing
	w.SubIndex("z", 4).Tensor("bias", 2) // missing
	w.Sub("blk").Errorf("bad %s %d", "groups", 7)
	w.Sub("x").Tensor("weight", 2, 2) // fine, adds nothing

	err := w.Err()
	if err == nil {
		t.Fatal("Err() = nil, want four errors")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Err() is %T, want an errors.Join result", err)
	}
	if n := len(joined.Unwrap()); n != 4 {
		t.Errorf("Err() holds %d errors, want 4: %v", n, err)
	}
	for _, s := range []string{`"x.weight"`, `"y.weight"`, `"z.4.bias"`, "blk: bad groups 7"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Err() = %q, want it to mention %s", err, s)
		}
	}
	// The errors are shared by every view of the same load.
	if got := w.Sub("other").Err(); got == nil || got.Error() != err.Error() {
		t.Errorf("Sub view Err() = %v, want the same joined error", got)
	}
}

func TestWeightsUnusedAndStrict(t *testing.T) {
	t.Parallel()
	keys := []string{"a.x", "a.y", "a.sub.z", "ab.z", "b.w", "top"}
	newW := func() Weights {
		src := MapSource{}
		for _, k := range keys {
			src[k] = tensor.New(1)
		}
		return NewWeights(src)
	}
	tests := []struct {
		name   string
		load   []string // full keys loaded, shape [1]
		prefix string   // "" for the root
		unused []string
	}{
		{name: "root, nothing loaded", prefix: "", unused: []string{"a.sub.z", "a.x", "a.y", "ab.z", "b.w", "top"}},
		{name: "root, some loaded", load: []string{"a.x", "top"}, prefix: "", unused: []string{"a.sub.z", "a.y", "ab.z", "b.w"}},
		{name: "prefix excludes sibling ab", load: []string{"a.x"}, prefix: "a", unused: []string{"a.sub.z", "a.y"}},
		{name: "nested prefix", prefix: "a.sub", unused: []string{"a.sub.z"}},
		{name: "all under prefix used", load: []string{"a.x", "a.y", "a.sub.z"}, prefix: "a", unused: nil},
		{name: "no such prefix", prefix: "c", unused: nil},
		{name: "prefix equal to a key is not under it", prefix: "top", unused: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newW()
			for _, k := range tt.load {
				w.Tensor(k, 1)
			}
			if err := w.Err(); err != nil {
				t.Fatal(err)
			}
			view := w
			if tt.prefix != "" {
				view = w.Sub(tt.prefix)
			}
			if got := view.Unused(); !slices.Equal(got, tt.unused) {
				t.Errorf("Unused() = %q, want %q", got, tt.unused)
			}
			// Strict with no filter fails exactly when something is unused.
			err := view.Strict(nil)
			if (err != nil) != (len(tt.unused) > 0) {
				t.Errorf("Strict(nil) = %v with unused %q", err, tt.unused)
			}
			for _, k := range tt.unused {
				if err != nil && !strings.Contains(err.Error(), k) {
					t.Errorf("Strict(nil) = %q, want it to name %q", err, k)
				}
			}
			// Ignoring everything makes it pass.
			if err := view.Strict(func(string) bool { return true }); err != nil {
				t.Errorf("Strict(ignore all) = %v", err)
			}
		})
	}
}

func TestWeightsStrict(t *testing.T) {
	t.Parallel()
	t.Run("ignore filters keys", func(t *testing.T) {
		src := MapSource{
			"m.weight":                   tensor.New(1),
			"m.position_ids":             tensor.New(1),
			"m.num_batches_tracked":      tensor.New(1),
			"m.unexpected.extra_weights": tensor.New(1),
		}
		w := NewWeights(src)
		w.Sub("m").Tensor("weight", 1)
		ignore := func(k string) bool {
			return strings.HasSuffix(k, "position_ids") || strings.HasSuffix(k, "num_batches_tracked")
		}
		err := w.Strict(ignore)
		if err == nil {
			t.Fatal("Strict = nil, want the unexpected key reported")
		}
		if !strings.Contains(err.Error(), "m.unexpected.extra_weights") {
			t.Errorf("Strict = %q, want it to name m.unexpected.extra_weights", err)
		}
		for _, k := range []string{"position_ids", "num_batches_tracked", "m.weight"} {
			if strings.Contains(err.Error(), k) {
				t.Errorf("Strict = %q, mentions %s which is ignored or used", err, k)
			}
		}
	})
	t.Run("load errors win", func(t *testing.T) {
		w := NewWeights(MapSource{"unused": tensor.New(1)})
		w.Tensor("missing", 1)
		err := w.Strict(nil)
		if err == nil || !strings.Contains(err.Error(), `"missing"`) {
			t.Errorf("Strict = %v, want the missing-key error", err)
		}
	})
	t.Run("long list truncated", func(t *testing.T) {
		src := MapSource{}
		for _, k := range []string{"k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10"} {
			src[k] = tensor.New(1)
		}
		err := NewWeights(src).Strict(nil)
		if err == nil {
			t.Fatal("Strict = nil with 11 unused keys")
		}
		msg := err.Error()
		if !strings.Contains(msg, "k07") || strings.Contains(msg, "k08") || !strings.Contains(msg, "and 3 more") {
			t.Errorf("Strict = %q, want the first 8 keys and \"and 3 more\"", msg)
		}
	})
}

func TestMapSource(t *testing.T) {
	t.Parallel()
	x := tensor.FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	m := MapSource{"b": x, "a": tensor.New(0)}
	tests := []struct {
		name    string
		key     string
		shape   []int
		wantErr []string // nil: success
	}{
		{name: "exact", key: "b", shape: []int{2, 3}},
		{name: "empty tensor", key: "a", shape: []int{0}},
		{name: "transposed", key: "b", shape: []int{3, 2}, wantErr: []string{`"b"`, "[2 3]", "[3 2]"}},
		{name: "flattened", key: "b", shape: []int{6}, wantErr: []string{`"b"`, "[2 3]", "[6]"}},
		{name: "extra dim", key: "b", shape: []int{1, 2, 3}, wantErr: []string{`"b"`, "[1 2 3]"}},
		{name: "missing", key: "c", shape: []int{1}, wantErr: []string{`"c"`, "missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Load(tt.key, tt.shape)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Load(%q, %v): %v", tt.key, tt.shape, err)
				}
				if !slices.Equal(got.Shape, tt.shape) {
					t.Errorf("shape %v, want %v", got.Shape, tt.shape)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load(%q, %v) succeeded, want an error", tt.key, tt.shape)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
	if got := m.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Names() = %q, want sorted [a b]", got)
	}
	if !m.Has("b") || m.Has("c") {
		t.Errorf("Has(b)=%v Has(c)=%v, want true false", m.Has("b"), m.Has("c"))
	}
}

// loadRandom loads keys in order from a fresh RandomSource and returns the
// tensors by key.
func loadRandom(seed uint64, keys []string, shape []int) map[string]*tensor.Tensor {
	s := NewRandomSource(seed)
	out := map[string]*tensor.Tensor{}
	for _, k := range keys {
		x, err := s.Load(k, shape)
		if err != nil {
			panic(err)
		}
		out[k] = x
	}
	return out
}

func TestRandomSourceDeterministic(t *testing.T) {
	// Not parallel: it changes GOMAXPROCS.
	// 3×40000 = 120000 values: two 64Ki segments, so the parallel fill is
	// exercised.
	shape := []int{3, 40000}
	keys := []string{"conv.weight", "proj.weight", "down_blocks.0.attn.to_q.weight"}
	reversed := slices.Clone(keys)
	slices.Reverse(reversed)

	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	one := loadRandom(7, keys, shape)
	runtime.GOMAXPROCS(2)
	two := loadRandom(7, reversed, shape)
	runtime.GOMAXPROCS(prev)

	for _, k := range keys {
		if !slices.Equal(one[k].Data, two[k].Data) {
			t.Errorf("%s: values differ between GOMAXPROCS 1 (forward order) and 2 (reverse order)", k)
		}
	}
	if slices.Equal(one[keys[0]].Data, one[keys[1]].Data) {
		t.Errorf("%s and %s got identical values", keys[0], keys[1])
	}
	other := loadRandom(8, keys[:1], shape)
	if slices.Equal(one[keys[0]].Data, other[keys[0]].Data) {
		t.Errorf("seeds 7 and 8 give identical %s", keys[0])
	}
	// The segments of one tensor must not repeat each other.
	d := one[keys[0]].Data
	if slices.Equal(d[:1000], d[1<<16:1<<16+1000]) {
		t.Errorf("segment 1 of %s repeats segment 0", keys[0])
	}
}

func TestRandomSourceValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		key   string
		shape []int
		value float32 // every value, when std == 0
		std   float64 // expected std; 0 means every value is value
	}{
		{name: "bias", key: "conv_in.bias", shape: []int{320}, value: 0},
		{name: "2-D bias is still zero", key: "x.bias", shape: []int{4, 8}, value: 0},
		{name: "norm weight", key: "norm1.weight", shape: []int{64}, value: 1},
		{name: "linear weight", key: "proj.weight", shape: []int{64, 256}, std: 1.0 / 16},
		{name: "conv weight", key: "conv.weight", shape: []int{64, 16, 3, 3}, std: 1.0 / 12},
		{name: "embedding", key: "token_embedding.weight", shape: []int{1000, 4}, std: 0.5},
		{name: "non-weight name", key: "pos_embed", shape: []int{100, 100}, std: 0.1},
		{name: "1-D non-weight", key: "scale", shape: []int{10000}, std: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := NewRandomSource(1).Load(tt.key, tt.shape)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x.Shape, tt.shape) {
				t.Fatalf("shape %v, want %v", x.Shape, tt.shape)
			}
			if tt.std == 0 {
				for i, v := range x.Data {
					if v != tt.value {
						t.Fatalf("value %v at %d, want every value %v", v, i, tt.value)
					}
				}
				return
			}
			var sum, sq float64
			for _, v := range x.Data {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			n := float64(len(x.Data))
			mean := sum / n
			std := math.Sqrt(sq/n - mean*mean)
			// Sampling error of the std is about std/sqrt(2n) (< 1% here),
			// of the mean std/sqrt(n); the bounds are loose.
			if math.Abs(std-tt.std) > 0.1*tt.std {
				t.Errorf("std %.4g, want %.4g (1/sqrt(fan_in)) within 10%%", std, tt.std)
			}
			if math.Abs(mean) > 6*tt.std/math.Sqrt(n) {
				t.Errorf("mean %.4g, want ≈ 0 (std %.4g, n %d)", mean, tt.std, len(x.Data))
			}
		})
	}
}

func TestRandomSourceNamesAndHas(t *testing.T) {
	t.Parallel()
	s := NewRandomSource(3)
	if !s.Has("anything.at.all") {
		t.Error("Has = false, want true for every key")
	}
	if got := s.Names(); len(got) != 0 {
		t.Errorf("Names() before loading = %q, want none", got)
	}
	w := NewWeights(s)
	w.Sub("a").Tensor("weight", 2, 2)
	w.Sub("a").Tensor("bias", 2)
	if got, want := s.Names(), []string{"a.weight", "a.bias"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if err := w.Strict(nil); err != nil {
		t.Errorf("Strict after loading everything = %v", err)
	}
}

// errSource fails every load, to check that Weights keeps the source's
// error value.
type errSource struct{ MapSource }

var errBoom = errors.New("boom")

func (errSource) Load(string, []int) (*tensor.Tensor, error) { return nil, errBoom }

func TestWeightsKeepsSourceError(t *testing.T) {
	t.Parallel()
	w := NewWeights(errSource{})
	x := w.Tensor("k", 2, 3)
	if !errors.Is(w.Err(), errBoom) {
		t.Errorf("Err() = %v, want it to wrap the source's error", w.Err())
	}
	if x == nil || !slices.Equal(x.Shape, []int{2, 3}) {
		t.Errorf("Tensor on error = %v, want zeros of shape [2 3]", x)
	}
}
