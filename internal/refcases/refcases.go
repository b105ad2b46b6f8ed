// Package refcases reads the Stable Diffusion reference data (tiny
// pipelines and golden tensors computed by diffusers/transformers, see its
// README.md) for tests.
//
// The data lives outside the repository, in ../shared/refs next to the
// module root, or wherever $PIGMENT_REFS points. Every helper that needs it
// skips the test with a clear message when it is absent, so that a fresh
// clone still passes its tests.
//
// A case set is cases/<pipeline>/cases.json, which lists the cases and the
// shape of every tensor, plus cases/<pipeline>/cases.safetensors holding
// the tensors. A string value in a case's inputs or outputs that is a
// tensor name refers to that tensor.
package refcases

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// EnvVar is the environment variable that overrides the location of the
// reference data.
const EnvVar = "PIGMENT_REFS"

// Root returns the reference data folder: $PIGMENT_REFS if set, else
// <module root>/../shared/refs, where the module root is the nearest
// directory holding go.mod at or above the working directory. ok is false
// if the folder does not exist; dir is then still the place it was looked
// for (empty if no module root was found).
func Root() (dir string, ok bool) {
	if d := os.Getenv(EnvVar); d != "" {
		return d, isDir(d)
	}
	root, found := moduleRoot()
	if !found {
		return "", false
	}
	dir = filepath.Join(filepath.Dir(root), "shared", "refs")
	return dir, isDir(dir)
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !st.IsDir() {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// skipMessage explains why a test is skipped for want of dir, the
// reference folder or a folder in it.
func skipMessage(what, dir string) string {
	switch {
	case os.Getenv(EnvVar) != "":
		return fmt.Sprintf("reference data not found: %s does not exist ($%s=%s); skipping %s", dir, EnvVar, os.Getenv(EnvVar), what)
	case dir == "":
		return fmt.Sprintf("../shared/refs not found: no go.mod above the working directory and $%s unset; skipping %s", EnvVar, what)
	}
	return fmt.Sprintf("../shared/refs not found: %s does not exist (set $%s to use another folder); skipping %s", dir, EnvVar, what)
}

// RootDir returns Root's folder, skipping the test if it does not exist.
func RootDir(t testing.TB) string {
	t.Helper()
	root, ok := Root()
	if !ok {
		t.Skip(skipMessage("reference tests", root))
	}
	return root
}

// ModelDir returns the folder of the named reference pipeline, e.g.
// ModelDir(t, "tiny-sd15"), which holds a diffusers layout (unet/, vae/,
// text_encoder/, tokenizer/, scheduler/). It skips the test if the
// reference data or that pipeline is absent.
func ModelDir(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(RootDir(t), name)
	if !isDir(dir) {
		t.Skip(skipMessage("model "+name, dir))
	}
	return dir
}

// Set is one pipeline's case set: cases/<Name>/cases.json and the tensors
// of cases/<Name>/cases.safetensors.
type Set struct {
	Name string // pipeline name, e.g. "tiny-sd15" or "rng"
	Dir  string // the folder holding cases.json
	// Meta holds the top-level fields of cases.json other than "cases" and
	// "tensors" (versions, scheduler config, tokenizer ids, ...). JSON
	// numbers are float64.
	Meta map[string]any
	// Cases are the cases in file order.
	Cases []Case
	// Shapes is the "tensors" listing of cases.json: name → shape.
	Shapes map[string][]int

	file *safetensors.File
}

// Case is one reference case. JSON numbers in its maps are float64; use the
// accessor methods to read them.
type Case struct {
	ID, Kind                string
	Inputs, Params, Outputs map[string]any
}

// Open opens the case set of the named pipeline (a folder of cases/ in the
// reference data, e.g. "tiny-sd15" or "rng"). It skips the test if the
// reference data or that set is absent and fails it if the set cannot be
// read. The tensor file is closed by t.Cleanup.
func Open(t testing.TB, pipeline string) *Set {
	t.Helper()
	dir := filepath.Join(RootDir(t), "cases", pipeline)
	if !isDir(dir) {
		t.Skip(skipMessage("cases "+pipeline, dir))
	}
	s, err := readSet(pipeline, dir)
	if err != nil {
		t.Fatalf("refcases: %v", err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "cases.safetensors"))
	if err != nil {
		t.Fatalf("refcases: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	s.file = f
	return s
}

// readSet reads dir/cases.json.
func readSet(name, dir string) (*Set, error) {
	path := filepath.Join(dir, "cases.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(nonFinite(b), &top); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var cases []struct {
		ID      string         `json:"id"`
		Kind    string         `json:"kind"`
		Inputs  map[string]any `json:"inputs"`
		Params  map[string]any `json:"params"`
		Outputs map[string]any `json:"outputs"`
	}
	if err := json.Unmarshal(top["cases"], &cases); err != nil {
		return nil, fmt.Errorf("%s: cases: %w", path, err)
	}
	var tensors map[string]struct {
		Shape []int `json:"shape"`
	}
	if err := json.Unmarshal(top["tensors"], &tensors); err != nil {
		return nil, fmt.Errorf("%s: tensors: %w", path, err)
	}
	s := &Set{Name: name, Dir: dir, Meta: make(map[string]any), Shapes: make(map[string][]int, len(tensors))}
	for _, c := range cases {
		for _, m := range []map[string]any{c.Inputs, c.Params, c.Outputs} {
			restoreNonFinite(m)
		}
		s.Cases = append(s.Cases, Case{ID: c.ID, Kind: c.Kind, Inputs: c.Inputs, Params: c.Params, Outputs: c.Outputs})
	}
	for k, v := range tensors {
		s.Shapes[k] = v.Shape
	}
	for k, v := range top {
		if k == "cases" || k == "tensors" {
			continue
		}
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		s.Meta[k] = restoreNonFinite(x)
	}
	return s, nil
}

// Python's json module writes the non-finite floats NaN, Infinity and
// -Infinity as bare words (cases.json has lambda_min_clipped: -Infinity in
// the DPM-Solver scheduler configs), which encoding/json rejects.
// nonFinite rewrites them outside strings as marker strings, and
// restoreNonFinite turns the decoded markers back into float64 values.
var nonFiniteWords = []struct {
	word  string
	value float64
}{
	{"-Infinity", math.Inf(-1)},
	{"Infinity", math.Inf(1)},
	{"NaN", math.NaN()},
}

// nonFiniteMarker starts the JSON string that stands for a non-finite
// word; decoded, it is "\x00refcases:".
const nonFiniteMarker = `"\u0000refcases:`

// nonFinite returns b with bare NaN, Infinity and -Infinity replaced by
// marker strings.
func nonFinite(b []byte) []byte {
	out := make([]byte, 0, len(b))
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			switch c {
			case '\\':
				if i+1 < len(b) {
					i++
					out = append(out, b[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			out = append(out, c)
			continue
		}
		replaced := false
		for _, w := range nonFiniteWords {
			if bytes.HasPrefix(b[i:], []byte(w.word)) {
				out = append(out, nonFiniteMarker...)
				out = append(out, w.word...)
				out = append(out, '"')
				i += len(w.word) - 1
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, c)
		}
	}
	return out
}

// restoreNonFinite replaces the marker strings of nonFinite in a decoded
// JSON value, in place for maps and slices, and returns the value.
func restoreNonFinite(v any) any {
	switch x := v.(type) {
	case string:
		for _, w := range nonFiniteWords {
			if x == "\x00refcases:"+w.word {
				return w.value
			}
		}
	case map[string]any:
		for k, e := range x {
			x[k] = restoreNonFinite(e)
		}
	case []any:
		for i, e := range x {
			x[i] = restoreNonFinite(e)
		}
	}
	return v
}

// Case returns the case with the given id, failing the test if there is
// none.
func (s *Set) Case(t testing.TB, id string) Case {
	t.Helper()
	for _, c := range s.Cases {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("refcases: %s: no case %q", s.Name, id)
	return Case{}
}

// ByKind returns the cases of the given kind (e.g. "unet", "txt2img") in
// file order.
func (s *Set) ByKind(kind string) []Case {
	var cs []Case
	for _, c := range s.Cases {
		if c.Kind == kind {
			cs = append(cs, c)
		}
	}
	return cs
}

// Tensor returns the named tensor of cases.safetensors as float32, failing
// the test if it is missing or unreadable.
func (s *Set) Tensor(t testing.TB, name string) *tensor.Tensor {
	t.Helper()
	x, err := s.file.Tensor(name)
	if err != nil {
		t.Fatalf("refcases: %s: %v", s.Name, err)
	}
	return x
}

// CaseTensor returns the tensor that c names in section ("inputs",
// "params" or "outputs") under key, failing the test if the key is missing,
// not a string or not a tensor.
func (s *Set) CaseTensor(t testing.TB, c Case, section, key string) *tensor.Tensor {
	t.Helper()
	return s.Tensor(t, c.String(t, section, key))
}

// Path returns the path of rel inside the set's folder, e.g.
// s.Path("images/init_image.png").
func (s *Set) Path(rel string) string { return filepath.Join(s.Dir, filepath.FromSlash(rel)) }

// Has reports whether c has key in section.
func (c Case) Has(section, key string) bool {
	m, _ := c.section(section)
	_, ok := m[key]
	return ok
}

func (c Case) section(section string) (map[string]any, bool) {
	switch section {
	case "inputs":
		return c.Inputs, true
	case "params":
		return c.Params, true
	case "outputs":
		return c.Outputs, true
	}
	return nil, false
}

// Value returns the raw JSON value of key in section ("inputs", "params"
// or "outputs"), failing the test if it is missing.
func (c Case) Value(t testing.TB, section, key string) any {
	t.Helper()
	m, ok := c.section(section)
	if !ok {
		t.Fatalf("refcases: case %s: unknown section %q (want inputs, params or outputs)", c.ID, section)
	}
	v, ok := m[key]
	if !ok {
		t.Fatalf("refcases: case %s: no %s.%s", c.ID, section, key)
	}
	return v
}

// Float returns the number at section.key.
func (c Case) Float(t testing.TB, section, key string) float64 {
	t.Helper()
	v, ok := c.Value(t, section, key).(float64)
	if !ok {
		t.Fatalf("refcases: case %s: %s.%s is %T, want a number", c.ID, section, key, c.Value(t, section, key))
	}
	return v
}

// Int returns the integer at section.key.
func (c Case) Int(t testing.TB, section, key string) int {
	t.Helper()
	n, ok := toInt(c.Value(t, section, key))
	if !ok {
		t.Fatalf("refcases: case %s: %s.%s is %v, want an integer", c.ID, section, key, c.Value(t, section, key))
	}
	return n
}

// String returns the string at section.key.
func (c Case) String(t testing.TB, section, key string) string {
	t.Helper()
	v, ok := c.Value(t, section, key).(string)
	if !ok {
		t.Fatalf("refcases: case %s: %s.%s is %T, want a string", c.ID, section, key, c.Value(t, section, key))
	}
	return v
}

// Strings returns the list of strings at section.key; a single string is
// returned as a list of one (as a prompt may be either).
func (c Case) Strings(t testing.TB, section, key string) []string {
	t.Helper()
	switch v := c.Value(t, section, key).(type) {
	case string:
		return []string{v}
	case []any:
		ss := make([]string, len(v))
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				t.Fatalf("refcases: case %s: %s.%s[%d] is %T, want a string", c.ID, section, key, i, x)
			}
			ss[i] = s
		}
		return ss
	default:
		t.Fatalf("refcases: case %s: %s.%s is %T, want strings", c.ID, section, key, v)
		return nil
	}
}

// Ints returns the list of integers at section.key.
func (c Case) Ints(t testing.TB, section, key string) []int {
	t.Helper()
	v, ok := c.Value(t, section, key).([]any)
	if !ok {
		t.Fatalf("refcases: case %s: %s.%s is %T, want a list of integers", c.ID, section, key, c.Value(t, section, key))
	}
	ns := make([]int, len(v))
	for i, x := range v {
		n, ok := toInt(x)
		if !ok {
			t.Fatalf("refcases: case %s: %s.%s[%d] is %v, want an integer", c.ID, section, key, i, x)
		}
		ns[i] = n
	}
	return ns
}

// toInt converts a JSON number holding an integer to int.
func toInt(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int(f), true
}

// HalfPair opens the weights of the component base ("model",
// "diffusion_pytorch_model") in dir twice: as loading keeps them (fp16/bf16
// matrices in 16 bits) and widened to float32 (nn.Float32Source), for tests
// that a model built from either computes the same. Both are closed when the
// test ends.
func HalfPair(t testing.TB, dir, base string) (half, widened nn.Source) {
	t.Helper()
	open := func() *nn.FileSource {
		src, err := nn.OpenComponent(dir, base)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}
	return open(), nn.Float32Source(open())
}

// SameBits stops the test unless got and want hold the same float32 bits
// everywhere (name says what they are).
func SameBits(t testing.TB, name string, got, want *tensor.Tensor) {
	t.Helper()
	if !tensor.SameShape(got, want) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
	}
	for i := range want.Data {
		if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
			t.Fatalf("%s[%d] = %v with 16-bit weights, %v widened", name, i, got.Data[i], want.Data[i])
		}
	}
}

// Close compares got with want element-wise and fails the test (without
// stopping it) if the shapes differ or if any |got-want| exceeds atol.
// The failure names the shapes, the max abs diff, its flat index and
// multi-index, and both values there. NaN counts as an infinite difference.
// Close returns the max abs diff (+Inf on a shape mismatch) so that tests
// can log it.
func Close(t testing.TB, name string, got, want *tensor.Tensor, atol float64) float64 {
	t.Helper()
	return CloseRel(t, name, got, want, atol, 0)
}

// CloseRel is like Close with the per-element tolerance atol + rtol·|want|.
func CloseRel(t testing.TB, name string, got, want *tensor.Tensor, atol, rtol float64) float64 {
	t.Helper()
	if got == nil || want == nil {
		t.Errorf("%s: got %v, want %v", name, got, want)
		return math.Inf(1)
	}
	if !tensor.SameShape(got, want) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape, want.Shape)
		return math.Inf(1)
	}
	if len(want.Data) == 0 {
		return 0
	}
	worst, at := tensor.MaxAbsDiff(got, want)
	bad := 0
	for i, w := range want.Data {
		d := math.Abs(float64(got.Data[i]) - float64(w))
		if !(d <= atol+rtol*math.Abs(float64(w))) { // NaN fails
			bad++
		}
	}
	if bad > 0 {
		tol := fmt.Sprintf("atol %.3g", atol)
		if rtol != 0 {
			tol += fmt.Sprintf(" + rtol %.3g·|want|", rtol)
		}
		t.Errorf("%s: %d of %d values differ by more than %s; max |got-want| = %.6g at index %d %v of shape %v: got %.9g, want %.9g",
			name, bad, len(want.Data), tol, worst, at, Unravel(at, want.Shape), want.Shape, got.Data[at], want.Data[at])
	}
	return worst
}

// Unravel returns the multi-index of flat index i in a row-major tensor of
// the given shape. It panics if i is out of range.
func Unravel(i int, shape []int) []int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if i < 0 || i >= n {
		panic(fmt.Sprintf("refcases: index %d out of range for shape %v", i, shape))
	}
	idx := make([]int, len(shape))
	for k := len(shape) - 1; k >= 0; k-- {
		idx[k] = i % shape[k]
		i /= shape[k]
	}
	return idx
}

// Names returns the sorted tensor names of the set's cases.safetensors.
func (s *Set) Names() []string { return s.file.Names() }
