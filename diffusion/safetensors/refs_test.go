package safetensors_test

// These tests read the reference files of ../shared/refs, written by the
// reference generator's own safetensors implementation (see its
// README.md), and skip when the folder is absent.

import (
	"bytes"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// TestRefFiles reads every .safetensors file of the reference data with
// each way of opening it and checks what the reference README promises:
// contiguous data with no holes, tensors in name order, all values finite,
// "format": "pt" metadata.
func TestRefFiles(t *testing.T) {
	root := refcases.RootDir(t)
	var paths []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".safetensors") {
			paths = append(paths, path)
		}
		return err
	})
	if len(paths) == 0 {
		t.Fatalf("no .safetensors files under %s", root)
	}
	for _, path := range paths {
		rel, _ := filepath.Rel(root, path)
		t.Run(rel, func(t *testing.T) {
			f, err := safetensors.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Metadata()["format"] != "pt" {
				t.Errorf("metadata %v, want format pt", f.Metadata())
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := safetensors.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			fd, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer fd.Close()
			viaReader, err := safetensors.NewReader(fd, int64(len(raw)))
			if err != nil {
				t.Fatal(err)
			}
			names := f.Names()
			if len(names) == 0 || !slices.Equal(names, parsed.Names()) || !slices.Equal(names, viaReader.Names()) {
				t.Fatalf("Names differ between Open, Parse and NewReader")
			}
			end := int64(0)
			for _, name := range names {
				in, _ := f.Info(name)
				if in.Begin != end {
					t.Errorf("%q begins at %d, previous tensor ends at %d", name, in.Begin, end)
				}
				end = in.End
				a, err1 := f.Bytes(name)
				b, err2 := parsed.Bytes(name)
				c, err3 := viaReader.Bytes(name)
				if err1 != nil || err2 != nil || err3 != nil || !bytes.Equal(a, b) || !bytes.Equal(a, c) {
					t.Fatalf("%q: Bytes differ between Open, Parse and NewReader (%v, %v, %v)", name, err1, err2, err3)
				}
				vals, _, err := f.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%q[%d] = %v", name, i, v)
					}
				}
			}
		})
	}
}

// TestRefFP16 checks that the tiny-sd15-fp16 weights are exactly the
// tiny-sd15 weights rounded to float16 (as the reference README says),
// which tests Float32ToF16 against torch's .half() on real data, and that
// widening them to float32 gives those rounded values.
func TestRefFP16(t *testing.T) {
	fp32Dir := refcases.ModelDir(t, "tiny-sd15")
	fp16Dir := refcases.ModelDir(t, "tiny-sd15-fp16")
	for _, rel := range []string{
		"unet/diffusion_pytorch_model.safetensors",
		"vae/diffusion_pytorch_model.safetensors",
		"text_encoder/model.safetensors",
	} {
		t.Run(rel, func(t *testing.T) {
			f32, err := safetensors.Open(filepath.Join(fp32Dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			defer f32.Close()
			f16, err := safetensors.Open(filepath.Join(fp16Dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			defer f16.Close()
			if !slices.Equal(f32.Names(), f16.Names()) {
				t.Fatalf("tensor names differ")
			}
			for _, name := range f32.Names() {
				in32, _ := f32.Info(name)
				in16, _ := f16.Info(name)
				if in32.DType != safetensors.F32 || in16.DType != safetensors.F16 || !slices.Equal(in32.Shape, in16.Shape) {
					t.Fatalf("%q: %s %v vs %s %v", name, in32.DType, in32.Shape, in16.DType, in16.Shape)
				}
				want, _, err := f32.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := f16.Bytes(name)
				got, _, err := f16.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range want {
					h := uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
					if r := safetensors.Float32ToF16(v); r != h {
						t.Fatalf("%q[%d]: %v rounds to %#04x, file has %#04x", name, i, v, r, h)
					}
					if got[i] != safetensors.F16ToFloat32(h) {
						t.Fatalf("%q[%d]: Float32 gives %v, want %v", name, i, got[i], safetensors.F16ToFloat32(h))
					}
				}
			}
		})
	}
}

// TestRefRewrite checks that Write reproduces reference files byte for
// byte: the header layout (key order, compact JSON, space padding) and
// F32/F16 data encoding match the reference writer's.
func TestRefRewrite(t *testing.T) {
	root := refcases.RootDir(t)
	for _, rel := range []string{
		"cases/rng/cases.safetensors",
		"tiny-sd15-fp16/unet/diffusion_pytorch_model.safetensors",
		"tiny-sd2v/text_encoder/model.safetensors",
	} {
		t.Run(rel, func(t *testing.T) {
			path := filepath.Join(root, rel)
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			var tensors []safetensors.Tensor
			for _, name := range f.Names() {
				in, _ := f.Info(name)
				data, shape, err := f.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				tensors = append(tensors, safetensors.Tensor{Name: name, Shape: shape, Data: data, DType: in.DType})
			}
			var got bytes.Buffer
			if err := safetensors.Write(&got, tensors, f.Metadata()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				i := 0
				for i < min(got.Len(), len(want)) && got.Bytes()[i] == want[i] {
					i++
				}
				t.Errorf("rewritten file differs from %s at byte %d (lengths %d and %d)", rel, i, got.Len(), len(want))
			}
		})
	}
}
