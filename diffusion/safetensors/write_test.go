package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteRoundTrip(t *testing.T) {
	big := make([]float32, 40000) // more than one conversion chunk
	for i := range big {
		big[i] = float32(math.Sin(float64(i))) * 100
	}
	tensors := []Tensor{
		{Name: "z.big", Shape: []int{200, 200}, Data: big},
		{Name: "a.f16", Shape: []int{2, 2}, Data: []float32{0.1, -70000, 1e-6, 3}, DType: F16},
		{Name: "m.bf16", Shape: []int{3}, Data: []float32{0.1, -1e38, float32(math.Inf(-1))}, DType: BF16},
		{Name: "unicode ключ \"q\" <&>\n", Shape: []int{1}, Data: []float32{float32(math.NaN())}},
		{Name: "scalar", Shape: nil, Data: []float32{7}},
		{Name: "empty", Shape: []int{3, 0, 2}},
		{Name: "", Shape: []int{1}, Data: []float32{-1}}, // legal, if odd
	}
	md := map[string]string{"format": "pt", "quote\"and\\back": "tab\tnl\n\x01 <html> & ünï"}
	var buf bytes.Buffer
	if err := Write(&buf, tensors, md); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	n := binary.LittleEndian.Uint64(data)
	if n%8 != 0 || !bytes.HasSuffix(bytes.TrimRight(data[8:8+n], " "), []byte("}")) {
		t.Errorf("header of %d bytes is not padded with spaces to a multiple of 8: %q", n, data[8:8+n])
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, f, data)
	if got := f.Metadata(); len(got) != len(md) || got["quote\"and\\back"] != md["quote\"and\\back"] {
		t.Errorf("Metadata() = %q, want %q", got, md)
	}
	// Data starts right after the header, tensors in name order, no holes.
	end := int64(0)
	for _, name := range f.Names() {
		in, _ := f.Info(name)
		if in.Begin != end {
			t.Errorf("%q begins at %d, want %d", name, in.Begin, end)
		}
		end = in.End
	}
	if end != int64(len(data))-8-int64(n) {
		t.Errorf("tensors end at %d, data region is %d bytes", end, int64(len(data))-8-int64(n))
	}
	for _, tt := range tensors {
		in, ok := f.Info(tt.Name)
		wantDType := tt.DType
		if wantDType == "" {
			wantDType = F32
		}
		if !ok || in.DType != wantDType || !slices.Equal(in.Shape, tt.Shape) {
			t.Errorf("Info(%q) = %+v, %v", tt.Name, in, ok)
		}
		got, _, err := f.Float32(tt.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range tt.Data {
			want := v
			switch wantDType {
			case F16:
				want = F16ToFloat32(Float32ToF16(v))
			case BF16:
				want = BF16ToFloat32(Float32ToBF16(v))
			}
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Errorf("%q[%d] = %v, want %v", tt.Name, i, got[i], want)
			}
		}
	}

	// Deterministic whatever the input order.
	slices.Reverse(tensors)
	var again bytes.Buffer
	if err := Write(&again, tensors, md); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		t.Errorf("Write output depends on the order of tensors")
	}
}

func TestWriteEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := rawFile("{}      ", nil)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Write(nil, nil) = %q, want %q", buf.Bytes(), want)
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name    string
		tensors []Tensor
		md      map[string]string
		want    string
	}{
		{"reserved", []Tensor{{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}}, nil, "reserved"},
		{"twice", []Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{2}}}, nil, `"a": name appears twice`},
		{"negative", []Tensor{{Name: "a", Shape: []int{-1}, Data: nil}}, nil, "negative dimension"},
		{"mismatch", []Tensor{{Name: "a", Shape: []int{2, 2}, Data: []float32{1}}}, nil, "1 values do not fill shape [2 2]"},
		{"dtype", []Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}, DType: I32}}, nil, `cannot write dtype "I32"`},
		{"utf8 name", []Tensor{{Name: "a\xff", Shape: []int{1}, Data: []float32{1}}}, nil, "UTF-8"},
		{"utf8 metadata", nil, map[string]string{"k": "\xff"}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tt.tensors, tt.md)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "safetensors: ") {
				t.Errorf("Write error %v, want %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Write wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

type failWriter struct{}

var errDiskFull = errors.New("disk full")

func (failWriter) Write(p []byte) (int, error) { return 0, errDiskFull }

func TestWriteWriterError(t *testing.T) {
	err := Write(failWriter{}, []Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}}, nil)
	if !errors.Is(err, errDiskFull) {
		t.Errorf("Write to a failing writer: %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	one := []Tensor{{Name: "w", Shape: []int{2}, Data: []float32{1, 2}}}
	if err := WriteFile(path, one, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := f.Float32("w"); err != nil || !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("Float32(w) = %v, %v", got, err)
	}
	f.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("Stat: %v, %v; want mode 0644", st.Mode(), err)
	}
	before, _ := os.ReadFile(path)

	// A failing write leaves the old file and no temporary file.
	bad := []Tensor{{Name: "w", Shape: []int{3}, Data: []float32{1, 2}}}
	if err := WriteFile(path, bad, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile of a bad tensor: %v, want an error naming %s", err, path)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("failed WriteFile changed the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after WriteFile, want 1", len(entries))
	}

	// Overwrite.
	if err := WriteFile(path, []Tensor{{Name: "v", Shape: []int{1}, Data: []float32{3}}}, nil); err != nil {
		t.Fatal(err)
	}
	if f, err := Open(path); err != nil || !slices.Equal(f.Names(), []string{"v"}) {
		t.Errorf("after overwrite: %v", err)
	} else {
		f.Close()
	}

	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.safetensors"), one, nil); err == nil {
		t.Errorf("WriteFile into a missing directory succeeded")
	}
}
