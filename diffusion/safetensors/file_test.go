package safetensors

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// openers are the ways to get a File; all must behave the same.
var openers = []struct {
	name string
	open func(t *testing.T, path string) (*File, error)
}{
	{"Open", func(t *testing.T, path string) (*File, error) { return Open(path) }},
	{"ReadAt", func(t *testing.T, path string) (*File, error) { return openReaderAt(path) }},
	{"Parse", func(t *testing.T, path string) (*File, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return Parse(b)
	}},
	{"NewReader", func(t *testing.T, path string) (*File, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return NewReader(bytes.NewReader(b), int64(len(b)))
	}},
}

func TestOpeners(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valid.safetensors")
	data := validFile()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			f, err := o.open(t, path)
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, f, data)
			if got := f.Names(); !slices.Equal(got, []string{"brain", "empty", "half", "scalar", "weight"}) {
				t.Errorf("Names() = %q", got)
			}
			md := f.Metadata()
			if md["format"] != "pt" || len(md) != 2 {
				t.Errorf("Metadata() = %v", md)
			}
			md["format"] = "changed"
			if f.Metadata()["format"] != "pt" {
				t.Errorf("Metadata returns the File's own map")
			}
			in, ok := f.Info("weight")
			if !ok || in.DType != F32 || !slices.Equal(in.Shape, []int{2, 3}) || in.Len() != 6 {
				t.Errorf("Info(weight) = %+v, %v", in, ok)
			}
			in.Shape[0] = 99
			if in2, _ := f.Info("weight"); in2.Shape[0] != 2 {
				t.Errorf("Info returns the File's own shape")
			}
			if _, ok := f.Info("nope"); ok {
				t.Errorf("Info(nope) found")
			}

			x, err := f.Tensor("half")
			if err != nil {
				t.Fatal(err)
			}
			want := []float32{1, -0.5, F16ToFloat32(Float32ToF16(1e-7)), F16ToFloat32(0x7c00)}
			if !slices.Equal(x.Data, want) || !slices.Equal(x.Shape, []int{4}) {
				t.Errorf("Tensor(half) = %v %v, want %v", x.Shape, x.Data, want)
			}
			if x, err := f.Tensor("scalar"); err != nil || len(x.Shape) != 0 || !slices.Equal(x.Data, []float32{42}) {
				t.Errorf("Tensor(scalar) = %v, %v", x, err)
			}

			_, _, err = f.Float32("missing.weight")
			if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), `"missing.weight"`) {
				t.Errorf("Float32(missing.weight) error %v", err)
			}
			if o.name == "Open" || o.name == "ReadAt" {
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file", err)
				}
			}

			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := f.Bytes("weight"); !errors.Is(err, ErrClosed) {
				t.Errorf("Bytes after Close: %v", err)
			}
			if len(f.Names()) != 5 {
				t.Errorf("Names after Close = %q", f.Names())
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	trunc := filepath.Join(dir, "trunc.safetensors")
	data := validFile()
	if err := os.WriteFile(trunc, data[:len(data)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.safetensors")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, open := range []func(string) (*File, error){Open, openReaderAt} {
		if _, err := open(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing file: %v", err)
		}
		if _, err := open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("directory: %v", err)
		}
		_, err := open(trunc)
		if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), trunc) || !strings.Contains(err.Error(), `tensor "weight"`) {
			t.Errorf("truncated file: %v", err)
		}
		if _, err := open(empty); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), empty) {
			t.Errorf("empty file: %v", err)
		}
	}
}

// shortReader is a ReaderAt whose content shrank after the header was
// read, as when a file is truncated while open.
type shortReader struct {
	*bytes.Reader
	limit int64
}

func (r shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.limit {
		n, _ := r.Reader.ReadAt(p[:max(0, r.limit-off)], off)
		return n, nil // a short read without error must still be caught
	}
	return r.Reader.ReadAt(p, off)
}

func TestNewReaderShortRead(t *testing.T) {
	data := validFile()
	f, err := NewReader(shortReader{bytes.NewReader(data), int64(len(data)) - 4}, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes("weight"); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), `"weight"`) {
		t.Errorf("Bytes on a shrunk reader: %v", err)
	}
}
