package safetensors

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks, for any input, that Parse does not panic; that a
// failure is an *Error; that on success every tensor lies inside the data
// region with a span matching shape × dtype size, no two overlap, and
// every tensor converts to float32; and that tensors of writable dtypes
// survive Write and Parse again. Seeds: testdata/safetensors and
// parseCases.
func FuzzParse(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(seedDir, "*.safetensors"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed files in %s: %v", seedDir, err)
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tt := range parseCases {
		f.Add(tt.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Err == nil {
				t.Fatalf("Parse error %v (%T) is not an *Error with a sentinel", err, err)
			}
			return
		}
		checkFile(t, file, data)

		// Whatever F32/F16/BF16 tensors the input holds come back with
		// the same bits (NaNs may be quieted).
		var tensors []Tensor
		for _, name := range file.Names() {
			in, _ := file.Info(name)
			if in.DType != F32 && in.DType != F16 && in.DType != BF16 {
				continue
			}
			vals, shape, _ := file.Float32(name)
			tensors = append(tensors, Tensor{Name: name, Shape: shape, Data: vals, DType: in.DType})
		}
		var buf bytes.Buffer
		if err := Write(&buf, tensors, file.Metadata()); err != nil {
			t.Fatalf("Write of parsed tensors: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("Parse of written file: %v", err)
		}
		for _, tt := range tensors {
			got, _, err := again.Float32(tt.Name)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range tt.Data {
				if math.Float32bits(got[i]) != math.Float32bits(v) && !(v != v && got[i] != got[i]) {
					t.Fatalf("%q[%d]: %v became %v", tt.Name, i, v, got[i])
				}
			}
		}
	})
}
