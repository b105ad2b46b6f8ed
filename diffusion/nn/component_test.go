package nn

// Tests of OpenComponent (finding a component's weight files, including
// sharded checkpoints) on small safetensors files written to t.TempDir(),
// and of the basic layers on tiny inputs whose outputs are computed by hand
// (each table row says how; torch.nn gives the same numbers).

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// writeST writes tensors to dir/name.
func writeST(t *testing.T, dir, name string, tensors ...safetensors.Tensor) {
	t.Helper()
	if err := safetensors.WriteFile(filepath.Join(dir, name), tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// writeIndex writes dir/name as a sharded checkpoint's index.
func writeIndex(t *testing.T, dir, name string, weightMap map[string]string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenComponent(t *testing.T) {
	t.Parallel()
	const base = "diffusion_pytorch_model"
	w1 := safetensors.Tensor{Name: "conv.weight", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}
	b1 := safetensors.Tensor{Name: "conv.bias", Shape: []int{2}, Data: []float32{0.5, -0.5}}
	n1 := safetensors.Tensor{Name: "norm.weight", Shape: []int{3}, Data: []float32{1, 1, 1}}
	// 1/3 is not representable in float16; its F16 rounding is 0.33325195.
	f16 := safetensors.Tensor{Name: "conv.weight", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 1.0 / 3}, DType: safetensors.F16}

	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  map[string][]float32 // key → values; shape [len] except conv.weight [2 2]
		// errSubs, when set, are substrings of the expected error.
		errSubs []string
	}{
		{
			name:  "plain",
			setup: func(t *testing.T, dir string) { writeST(t, dir, base+".safetensors", w1, b1) },
			want:  map[string][]float32{"conv.weight": {1, 2, 3, 4}, "conv.bias": {0.5, -0.5}},
		},
		{
			name:  "fp16 fallback",
			setup: func(t *testing.T, dir string) { writeST(t, dir, base+".fp16.safetensors", f16) },
			want:  map[string][]float32{"conv.weight": {1, 2, 3, safetensors.F16ToFloat32(safetensors.Float32ToF16(1.0 / 3))}},
		},
		{
			name: "plain preferred over fp16",
			setup: func(t *testing.T, dir string) {
				writeST(t, dir, base+".fp16.safetensors", f16)
				writeST(t, dir, base+".safetensors", w1, b1)
			},
			want: map[string][]float32{"conv.weight": {1, 2, 3, 4}, "conv.bias": {0.5, -0.5}},
		},
		{
			name: "sharded",
			setup: func(t *testing.T, dir string) {
				writeST(t, dir, base+"-00001-of-00002.safetensors", w1, b1)
				writeST(t, dir, base+"-00002-of-00002.safetensors", n1)
				writeIndex(t, dir, base+".safetensors.index.json", map[string]string{
					"conv.weight": base + "-00001-of-00002.safetensors",
					"conv.bias":   base + "-00001-of-00002.safetensors",
					"norm.weight": base + "-00002-of-00002.safetensors",
				})
			},
			want: map[string][]float32{"conv.weight": {1, 2, 3, 4}, "conv.bias": {0.5, -0.5}, "norm.weight": {1, 1, 1}},
		},
		{
			name: "sharded fp16 index",
			setup: func(t *testing.T, dir string) {
				writeST(t, dir, "a.safetensors", f16)
				writeST(t, dir, "b.safetensors", n1)
				writeIndex(t, dir, base+".fp16.safetensors.index.json", map[string]string{"conv.weight": "a.safetensors", "norm.weight": "b.safetensors"})
			},
			want: map[string][]float32{"conv.weight": {1, 2, 3, safetensors.F16ToFloat32(safetensors.Float32ToF16(1.0 / 3))}, "norm.weight": {1, 1, 1}},
		},
		{
			name: "shard path escapes the folder",
			setup: func(t *testing.T, dir string) {
				writeIndex(t, dir, base+".safetensors.index.json", map[string]string{"conv.weight": "../x"})
			},
			errSubs: []string{`"../x"`, "not a plain file name"},
		},
		{
			name: "shard in a subfolder",
			setup: func(t *testing.T, dir string) {
				writeIndex(t, dir, base+".safetensors.index.json", map[string]string{"conv.weight": "sub/x.safetensors"})
			},
			errSubs: []string{`"sub/x.safetensors"`, "not a plain file name"},
		},
		{
			// filepath.Base("..") == "..", so ".." needs its own check.
			name: "shard is the parent folder",
			setup: func(t *testing.T, dir string) {
				writeIndex(t, dir, base+".safetensors.index.json", map[string]string{"conv.weight": ".."})
			},
			errSubs: []string{`".."`, "not a plain file name"},
		},
		{
			name: "shard is the folder itself",
			setup: func(t *testing.T, dir string) {
				writeIndex(t, dir, base+".safetensors.index.json", map[string]string{"conv.weight": "."})
			},
			errSubs: []string{`"."`, "not a plain file name"},
		},
		{
			name: "empty weight_map",
			setup: func(t *testing.T, dir string) {
				writeIndex(t, dir, base+".safetensors.index.json", map[string]string{})
			},
			errSubs: []string{base + ".safetensors.index.json", "no shard"},
		},
		{
			name: "shard missing",
			setup: func(t *testing.T, dir string) {
				writeIndex(t, dir, base+".safetensors.index.json", map[string]string{"conv.weight": "gone.safetensors"})
			},
			errSubs: []string{"gone.safetensors"},
		},
		{
			name: "malformed index",
			setup: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, base+".safetensors.index.json"), []byte(`{"weight_map": [`), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			errSubs: []string{base + ".safetensors.index.json"},
		},
		{
			name:    "empty folder",
			setup:   func(t *testing.T, dir string) {},
			errSubs: []string{base + ".safetensors", ".bin", "not supported"},
		},
		{
			name: "only a pickle",
			setup: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, base+".bin"), []byte("PK\x03\x04"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			errSubs: []string{base + ".safetensors", ".bin", "not supported"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tt.setup(t, dir)
			src, err := OpenComponent(dir, base)
			if tt.errSubs != nil {
				if err == nil {
					src.Close()
					t.Fatalf("OpenComponent succeeded, want an error mentioning %q", tt.errSubs)
				}
				for _, s := range tt.errSubs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenComponent: %v", err)
			}
			defer src.Close()
			var keys []string
			for k := range tt.want {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if got := src.Names(); !slices.Equal(got, keys) {
				t.Errorf("Names() = %q, want %q", got, keys)
			}
			for _, k := range keys {
				shape := []int{len(tt.want[k])}
				if k == "conv.weight" {
					shape = []int{2, 2}
				}
				x, err := src.Load(k, shape)
				if err != nil {
					t.Errorf("Load(%q): %v", k, err)
					continue
				}
				if got := x.Float32().Data; !slices.Equal(got, tt.want[k]) {
					t.Errorf("%s = %v, want %v", k, got, tt.want[k])
				}
				if !src.Has(k) {
					t.Errorf("Has(%q) = false", k)
				}
			}
			// A shape mismatch and a missing key name the key.
			if _, err := src.Load("conv.weight", []int{4}); err == nil || !strings.Contains(err.Error(), `"conv.weight"`) {
				t.Errorf("Load with the wrong shape: %v, want an error naming the key", err)
			}
			if _, err := src.Load("nope", []int{1}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
				t.Errorf("Load of a missing key: %v, want an error naming the key", err)
			}
			if src.Has("nope") {
				t.Error(`Has("nope") = true`)
			}
		})
	}
}

// mapWeights builds Weights over the given tensors.
func mapWeights(kv map[string]*tensor.Tensor) Weights { return NewWeights(MapSource(kv)) }

// closeTo fails the test if got and want differ in shape or by more than
// 1e-5 anywhere.
func closeTo(t *testing.T, got *tensor.Tensor, wantShape []int, want []float32) {
	t.Helper()
	if !slices.Equal(got.Shape, wantShape) {
		t.Fatalf("shape %v, want %v", got.Shape, wantShape)
	}
	for i := range want {
		if d := math.Abs(float64(got.Data[i] - want[i])); !(d <= 1e-5) {
			t.Fatalf("got %v\nwant %v\n(first difference at %d)", got.Data, want, i)
		}
	}
}

func TestLinear(t *testing.T) {
	t.Parallel()
	// W = [[1 2 3] [4 5 6]], b = [10 20].
	wt := tensor.FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := tensor.FromData([]float32{10, 20}, 2)
	tests := []struct {
		name      string
		bias      bool
		x         *tensor.Tensor
		wantShape []int
		want      []float32
	}{
		// [1 0 -1]·W^T = [1-3, 4-6] = [-2 -2]; [1 1 1] → [6 15].
		{"no bias", false, tensor.FromData([]float32{1, 0, -1, 1, 1, 1}, 2, 3), []int{2, 2}, []float32{-2, -2, 6, 15}},
		{"bias", true, tensor.FromData([]float32{1, 0, -1, 1, 1, 1}, 2, 3), []int{2, 2}, []float32{8, 18, 16, 35}},
		// [..., in] with two leading dims: [0 1 0] → W[:,1] = [2 5].
		{"3-D input", true, tensor.FromData([]float32{0, 1, 0, 0, 0, 0}, 1, 2, 3), []int{1, 2, 2}, []float32{12, 25, 10, 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := map[string]*tensor.Tensor{"fc.weight": wt}
			if tt.bias {
				kv["fc.bias"] = b
			}
			w := mapWeights(kv)
			l := NewLinear(w.Sub("fc"), 3, 2, tt.bias)
			if err := w.Strict(nil); err != nil {
				t.Fatal(err)
			}
			if !tt.bias && l.Bias != nil {
				t.Error("withBias=false loaded a bias")
			}
			closeTo(t, l.Forward(tt.x), tt.wantShape, tt.want)
		})
	}
	t.Run("wrong in/out", func(t *testing.T) {
		w := mapWeights(map[string]*tensor.Tensor{"fc.weight": wt, "fc.bias": b})
		NewLinear(w.Sub("fc"), 2, 3, true)
		if err := w.Err(); err == nil || !strings.Contains(err.Error(), `"fc.weight"`) || !strings.Contains(err.Error(), `"fc.bias"`) {
			t.Errorf("Err() = %v, want shape errors naming fc.weight and fc.bias", err)
		}
	})
}

func TestConv2d(t *testing.T) {
	t.Parallel()
	// x = 1×1×3×3 holding 1..9.
	x := tensor.FromData([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3)
	tests := []struct {
		name                    string
		out, k, stride, padding int
		weight, bias            []float32
		wantShape               []int
		want                    []float32
	}{
		// 1×1 kernel ×2, bias 1.
		{"1x1", 1, 1, 1, 0, []float32{2}, []float32{1}, []int{1, 1, 3, 3}, []float32{3, 5, 7, 9, 11, 13, 15, 17, 19}},
		// All-ones 2×2: sums of each 2×2 window (1+2+4+5=12, ...).
		{"2x2 valid", 1, 2, 1, 0, []float32{1, 1, 1, 1}, []float32{0}, []int{1, 1, 2, 2}, []float32{12, 16, 24, 28}},
		// All-ones 3×3 padded by 1: sums of the 3×3 neighbourhoods.
		{"3x3 same", 1, 3, 1, 1, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}, []float32{0}, []int{1, 1, 3, 3},
			[]float32{12, 21, 16, 27, 45, 33, 24, 39, 28}},
		// Stride 2, padding 1: the corner windows of "3x3 same", plus bias -1.
		{"3x3 stride 2", 1, 3, 2, 1, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}, []float32{-1}, []int{1, 1, 2, 2},
			[]float32{11, 15, 23, 27}},
		// Two output channels: centre tap (identity) and its negation + 100.
		{"two outputs", 2, 3, 1, 1, []float32{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0}, []float32{0, 100}, []int{1, 2, 3, 3},
			[]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 99, 98, 97, 96, 95, 94, 93, 92, 91}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mapWeights(map[string]*tensor.Tensor{
				"conv.weight": tensor.FromData(tt.weight, tt.out, 1, tt.k, tt.k),
				"conv.bias":   tensor.FromData(tt.bias, tt.out),
			})
			c := NewConv2d(w.Sub("conv"), 1, tt.out, tt.k, tt.stride, tt.padding)
			if err := w.Strict(nil); err != nil {
				t.Fatal(err)
			}
			closeTo(t, c.Forward(x), tt.wantShape, tt.want)
		})
	}
}

func TestGroupNorm(t *testing.T) {
	t.Parallel()
	// x = [1, 4, 2]: channels [0 2] [4 6] [1 1] [3 3]. With 2 groups the
	// first group {0,2,4,6} has mean 3, variance 5; the second {1,1,3,3}
	// mean 2, variance 1. With 4 groups every channel is its own group.
	x := tensor.FromData([]float32{0, 2, 4, 6, 1, 1, 3, 3}, 1, 4, 2)
	s5 := float32(1 / math.Sqrt(5))
	tests := []struct {
		name         string
		groups       int
		weight, bias []float32
		eps          float32
		want         []float32
	}{
		{"2 groups identity affine", 2, []float32{1, 1, 1, 1}, []float32{0, 0, 0, 0}, 0,
			[]float32{-3 * s5, -1 * s5, 1 * s5, 3 * s5, -1, -1, 1, 1}},
		{"2 groups affine", 2, []float32{2, 1, 1, -1}, []float32{0, 0, 10, 0}, 0,
			[]float32{-6 * s5, -2 * s5, 1 * s5, 3 * s5, 9, 9, -1, -1}},
		// Channel [1 1] has zero variance: (x-mean)/sqrt(0+eps) = 0, then
		// +bias; eps = 2^-20 keeps that finite (1/sqrt(eps) = 1024 exactly)
		// and changes the unit-variance channels by under 1e-6.
		{"4 groups", 4, []float32{1, 1, 1, 1}, []float32{0, 0, 0.5, 0}, 1.0 / (1 << 20), []float32{-1, 1, -1, 1, 0.5, 0.5, 0, 0}},
		{"1 group", 1, []float32{1, 1, 1, 1}, []float32{0, 0, 0, 0}, 0, nil}, // checked by mean/var below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mapWeights(map[string]*tensor.Tensor{
				"norm.weight": tensor.FromData(tt.weight, 4),
				"norm.bias":   tensor.FromData(tt.bias, 4),
			})
			g := NewGroupNorm(w.Sub("norm"), tt.groups, 4, tt.eps)
			if err := w.Strict(nil); err != nil {
				t.Fatal(err)
			}
			y := g.Forward(x)
			if tt.want != nil {
				closeTo(t, y, []int{1, 4, 2}, tt.want)
				return
			}
			var sum, sq float64
			for _, v := range y.Data {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			if mean, vr := sum/8, sq/8-(sum/8)*(sum/8); math.Abs(mean) > 1e-6 || math.Abs(vr-1) > 1e-5 {
				t.Errorf("one group: mean %g variance %g, want 0 and 1", mean, vr)
			}
		})
	}
	t.Run("groups do not divide channels", func(t *testing.T) {
		w := mapWeights(map[string]*tensor.Tensor{"n.weight": tensor.New(4), "n.bias": tensor.New(4)})
		g := NewGroupNorm(w.Sub("n"), 3, 4, 1e-5)
		err := w.Err()
		if err == nil || !strings.Contains(err.Error(), "n:") || !strings.Contains(err.Error(), "3 groups") {
			t.Errorf("Err() = %v, want an error naming n and the 3 groups", err)
		}
		if g.Groups != 1 {
			t.Errorf("Groups = %d after a bad config, want the safe fallback 1", g.Groups)
		}
	})
}

func TestLayerNorm(t *testing.T) {
	t.Parallel()
	// Each row is normalised over the last dimension (biased variance).
	tests := []struct {
		name         string
		x            *tensor.Tensor
		weight, bias []float32
		eps          float32
		want         []float32
	}{
		{"identity affine", tensor.FromData([]float32{1, 3, 10, 14}, 2, 2), []float32{1, 1}, []float32{0, 0}, 0, []float32{-1, 1, -1, 1}},
		{"affine", tensor.FromData([]float32{1, 3, 10, 14}, 2, 2), []float32{2, 3}, []float32{1, -1}, 0, []float32{-1, 2, -1, 2}},
		// [2 4 4 4 5 5 7 9]: mean 5, variance 4 → (x-5)/2.
		{"width 8", tensor.FromData([]float32{2, 4, 4, 4, 5, 5, 7, 9}, 1, 1, 8), []float32{1, 1, 1, 1, 1, 1, 1, 1}, make([]float32, 8), 0,
			[]float32{-1.5, -0.5, -0.5, -0.5, 0, 0, 1, 2}},
		// eps inside the square root: var 1, eps 3 → divide by 2.
		{"eps", tensor.FromData([]float32{1, 3}, 1, 2), []float32{1, 1}, []float32{0, 0}, 3, []float32{-0.5, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := len(tt.weight)
			w := mapWeights(map[string]*tensor.Tensor{
				"ln.weight": tensor.FromData(tt.weight, d),
				"ln.bias":   tensor.FromData(tt.bias, d),
			})
			l := NewLayerNorm(w.Sub("ln"), d, tt.eps)
			if err := w.Strict(nil); err != nil {
				t.Fatal(err)
			}
			closeTo(t, l.Forward(tt.x), tt.x.Shape, tt.want)
		})
	}
}

func TestEmbedding(t *testing.T) {
	t.Parallel()
	// Table rows: id 0 → [0 1], 1 → [10 11], 2 → [20 21].
	table := tensor.FromData([]float32{0, 1, 10, 11, 20, 21}, 3, 2)
	tests := []struct {
		name      string
		ids       []int
		batch     int
		wantShape []int
		want      []float32
	}{
		{"one row", []int{2, 0, 1}, 1, []int{1, 3, 2}, []float32{20, 21, 0, 1, 10, 11}},
		{"batch 2", []int{2, 0, 1, 1}, 2, []int{2, 2, 2}, []float32{20, 21, 0, 1, 10, 11, 10, 11}},
		{"repeated id", []int{1, 1}, 1, []int{1, 2, 2}, []float32{10, 11, 10, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mapWeights(map[string]*tensor.Tensor{"emb.weight": table})
			e := NewEmbedding(w.Sub("emb"), 3, 2)
			if err := w.Strict(nil); err != nil {
				t.Fatal(err)
			}
			closeTo(t, e.Forward(tt.ids, tt.batch), tt.wantShape, tt.want)
		})
	}
	t.Run("output does not alias the table", func(t *testing.T) {
		w := mapWeights(map[string]*tensor.Tensor{"emb.weight": tensor.FromData([]float32{1, 2}, 1, 2)})
		e := NewEmbedding(w.Sub("emb"), 1, 2)
		y := e.Forward([]int{0}, 1)
		y.Data[0] = 99
		if e.Weight.Data[0] != 1 {
			t.Error("writing to the output changed the embedding table")
		}
	})
}
