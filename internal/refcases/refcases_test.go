package refcases

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// TestSets opens each public case set and checks that every tensor listed
// in cases.json exists in cases.safetensors with the listed shape, and
// that every string in a case's inputs or outputs that names a tensor
// resolves.
func TestSets(t *testing.T) {
	for _, name := range []string{"rng", "tiny-sd15", "tiny-sd15-fp16", "tiny-sd2v"} {
		t.Run(name, func(t *testing.T) {
			s := Open(t, name)
			if len(s.Shapes) == 0 || len(s.Cases) == 0 {
				t.Fatalf("%d tensors and %d cases listed", len(s.Shapes), len(s.Cases))
			}
			names := s.Names()
			if len(names) != len(s.Shapes) {
				t.Errorf("cases.safetensors holds %d tensors, cases.json lists %d", len(names), len(s.Shapes))
			}
			for name, shape := range s.Shapes {
				x := s.Tensor(t, name)
				if !slices.Equal(x.Shape, shape) {
					t.Errorf("%s: shape %v, cases.json says %v", name, x.Shape, shape)
				}
			}
			ids := make(map[string]bool)
			for _, c := range s.Cases {
				if c.ID == "" || c.Kind == "" || ids[c.ID] {
					t.Errorf("case %q kind %q: empty or repeated id", c.ID, c.Kind)
				}
				ids[c.ID] = true
				for _, sec := range []map[string]any{c.Inputs, c.Outputs} {
					for _, v := range sec {
						if name, ok := v.(string); ok && strings.Contains(name, "/") {
							if _, listed := s.Shapes[name]; listed {
								s.Tensor(t, name)
							}
						}
					}
				}
			}
			if _, ok := s.Meta["cases"]; ok {
				t.Errorf("Meta holds cases")
			}
			if len(s.Meta) == 0 {
				t.Errorf("Meta is empty")
			}
		})
	}
}

// TestCaseAccessors reads typed values from known cases of the public set.
func TestCaseAccessors(t *testing.T) {
	s := Open(t, "tiny-sd15")
	c := s.Case(t, "txt2img/default_4")
	if got := c.Int(t, "inputs", "num_inference_steps"); got != 4 {
		t.Errorf("num_inference_steps = %d, want 4", got)
	}
	if got := c.Float(t, "inputs", "guidance_scale"); got != 7.5 {
		t.Errorf("guidance_scale = %v, want 7.5", got)
	}
	if got := c.Strings(t, "inputs", "prompt"); !slices.Equal(got, []string{"a photo of a cat"}) {
		t.Errorf("prompt = %q", got)
	}
	if c.Has("inputs", "no such key") || !c.Has("inputs", "prompt") {
		t.Errorf("Has is wrong")
	}
	lat := s.CaseTensor(t, c, "outputs", "final_latents")
	if !slices.Equal(lat.Shape, []int{1, 4, 16, 16}) {
		t.Errorf("final_latents shape %v", lat.Shape)
	}
	if len(s.ByKind("unet")) != 3 {
		t.Errorf("ByKind(unet) = %d cases, want 3", len(s.ByKind("unet")))
	}
	tok := s.ByKind("tokenizer")
	if len(tok) == 0 {
		t.Fatal("no tokenizer cases")
	}
	ids := tok[0].Ints(t, "outputs", "input_ids")
	if len(ids) != 77 || ids[0] != 49406 {
		t.Errorf("input_ids = %v, want 77 ids starting with BOS 49406", ids)
	}
	if _, err := os.Stat(s.Path("images/init_image.png")); err != nil {
		t.Error(err)
	}
	if dir := ModelDir(t, "tiny-sd15"); !strings.HasSuffix(dir, "tiny-sd15") {
		t.Errorf("ModelDir = %s", dir)
	}
}

func TestRoot(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvVar, dir)
	if got, ok := Root(); got != dir || !ok {
		t.Errorf("Root() = %q, %v with $%s=%s", got, ok, EnvVar, dir)
	}
	missing := filepath.Join(dir, "missing")
	t.Setenv(EnvVar, missing)
	if got, ok := Root(); got != missing || ok {
		t.Errorf("Root() = %q, %v with $%s=%s, want not ok", got, ok, EnvVar, missing)
	}
	t.Setenv(EnvVar, "")
	got, _ := Root()
	if filepath.Base(got) != "refs" || filepath.Base(filepath.Dir(got)) != "shared" {
		t.Errorf("Root() = %q, want .../shared/refs", got)
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestClose(t *testing.T) {
	want := tensor.FromData([]float32{0, 1, 2, 3, 4, 5}, 2, 3)
	nan := float32(math.NaN())
	tests := []struct {
		name       string
		got        *tensor.Tensor
		atol, rtol float64
		wantDiff   float64
		wantMsg    []string // substrings of the failure; nil for a pass
	}{
		{"equal", want.Clone(), 0, 0, 0, nil},
		{"within atol", tensor.FromData([]float32{0, 1, 2, 3, 4, 5.5}, 2, 3), 0.5, 0, 0.5, nil},
		{"beyond atol", tensor.FromData([]float32{0, 1, 2, 3.25, 4, 5}, 2, 3), 0.1, 0, 0.25,
			[]string{"1 of 6", "0.25", "index 3 [1 0]", "got 3.25, want 3", "shape [2 3]"}},
		{"within rtol", tensor.FromData([]float32{0, 1, 2, 3, 4, 5.4}, 2, 3), 0.01, 0.1, 0.4, nil},
		{"beyond rtol", tensor.FromData([]float32{0.1, 1, 2, 3, 4, 5}, 2, 3), 0.01, 0.1, 0.1,
			[]string{"rtol", "index 0 [0 0]"}},
		{"nan", tensor.FromData([]float32{0, 1, nan, 3, 4, 5}, 2, 3), 1, 0, math.Inf(1),
			[]string{"index 2 [0 2]", "got NaN"}},
		{"shape", tensor.FromData([]float32{0, 1, 2, 3, 4, 5}, 3, 2), 1, 0, math.Inf(1),
			[]string{"shape [3 2], want [2 3]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			d := CloseRel(r, "x", tt.got, want, tt.atol, tt.rtol)
			if math.Abs(d-tt.wantDiff) > 1e-6 && !(math.IsInf(d, 1) && math.IsInf(tt.wantDiff, 1)) {
				t.Errorf("returned %v, want %v", d, tt.wantDiff)
			}
			if tt.wantMsg == nil {
				if len(r.errors) != 0 {
					t.Errorf("unexpected failure: %v", r.errors)
				}
				return
			}
			if len(r.errors) != 1 {
				t.Fatalf("got %d failures, want 1: %v", len(r.errors), r.errors)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(r.errors[0], s) {
					t.Errorf("failure %q does not mention %q", r.errors[0], s)
				}
			}
		})
	}
}

func TestUnravel(t *testing.T) {
	tests := []struct {
		i     int
		shape []int
		want  []int
	}{
		{0, []int{2, 3}, []int{0, 0}},
		{5, []int{2, 3}, []int{1, 2}},
		{23, []int{2, 3, 4}, []int{1, 2, 3}},
		{13, []int{2, 3, 4}, []int{1, 0, 1}},
		{0, nil, []int{}},
	}
	for _, tt := range tests {
		if got := Unravel(tt.i, tt.shape); !slices.Equal(got, tt.want) {
			t.Errorf("Unravel(%d, %v) = %v, want %v", tt.i, tt.shape, got, tt.want)
		}
	}
}

// TestNonFinite checks the reading of Python's bare NaN/Infinity words,
// which cases.json uses (lambda_min_clipped: -Infinity).
func TestNonFinite(t *testing.T) {
	in := `{"a": -Infinity, "b": [NaN, Infinity, 1.5], "s": "NaN \"Infinity\" \\", "t": "-Infinity"}`
	var v map[string]any
	if err := json.Unmarshal(nonFinite([]byte(in)), &v); err != nil {
		t.Fatal(err)
	}
	restoreNonFinite(v)
	b := v["b"].([]any)
	if !math.IsInf(v["a"].(float64), -1) || !math.IsNaN(b[0].(float64)) || !math.IsInf(b[1].(float64), 1) || b[2] != 1.5 {
		t.Errorf("numbers decoded as %v", v)
	}
	if v["s"] != `NaN "Infinity" \` || v["t"] != "-Infinity" {
		t.Errorf("strings decoded as %q, %q", v["s"], v["t"])
	}
}

// TestNonFiniteCase reads the -Infinity of a real case.
func TestNonFiniteCase(t *testing.T) {
	s := Open(t, "tiny-sd15")
	c := s.Case(t, "scheduler/dpmpp_2m/set_timesteps/N4")
	cfg := c.Value(t, "params", "effective_config").(map[string]any)
	if l := cfg["lambda_min_clipped"]; l != math.Inf(-1) {
		t.Errorf("lambda_min_clipped = %v, want -Inf", l)
	}
}
