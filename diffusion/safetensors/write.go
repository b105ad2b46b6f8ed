package safetensors

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Tensor is a tensor to be written by Write.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32 // row-major, len(Data) == product of Shape
	// DType is the element type on disk: F32 (or "", meaning F32), F16 or
	// BF16. F16 and BF16 are rounded to nearest, ties to even.
	DType DType
}

// Write writes tensors and metadata (which may be nil) to w in the
// safetensors format. The output is deterministic: tensors are stored in
// name order, the header lists "__metadata__" first (when not empty) and
// then the tensors, as compact JSON padded with spaces to a multiple of 8
// bytes, so that the data region starts 8-byte aligned.
//
// Write returns an error, before writing anything, if a name is repeated,
// "__metadata__" or not UTF-8, if a shape has a negative dimension or does
// not match len(Data), or if a DType cannot be written.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	if err := write(w, tensors, metadata); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// write is Write with errors not prefixed by the package name.
func write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	sorted := slices.Clone(tensors)
	slices.SortFunc(sorted, func(a, b Tensor) int { return cmp.Compare(a.Name, b.Name) })
	for i := range sorted {
		t := &sorted[i]
		if t.DType == "" {
			t.DType = F32
		}
		if err := checkWritable(t); err != nil {
			return err
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return fmt.Errorf("tensor %q: name appears twice", t.Name)
		}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("metadata %q: not valid UTF-8", k)
		}
	}

	hdr := encodeHeader(sorted, metadata)
	bw := bufio.NewWriterSize(w, 1<<16)
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(hdr)))
	bw.Write(prefix[:])
	bw.Write(hdr)
	// Convert in chunks so that the memory used does not grow with the
	// tensor size.
	const chunk = 1 << 14
	buf := make([]byte, 0, 4*chunk)
	for _, t := range sorted {
		for data := t.Data; len(data) > 0; {
			n := min(len(data), chunk)
			buf = encode(buf[:0], data[:n], t.DType)
			if _, err := bw.Write(buf); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			data = data[n:]
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// checkWritable validates one tensor for Write.
func checkWritable(t *Tensor) error {
	switch {
	case t.Name == metadataKey:
		return fmt.Errorf("tensor name %q is reserved", t.Name)
	case !utf8.ValidString(t.Name):
		return fmt.Errorf("tensor %q: name is not valid UTF-8", t.Name)
	}
	if t.DType != F32 && t.DType != F16 && t.DType != BF16 {
		return fmt.Errorf("tensor %q: cannot write dtype %q (want F32, F16 or BF16)", t.Name, t.DType)
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
		}
		n *= d
	}
	if n != len(t.Data) {
		return fmt.Errorf("tensor %q: %d values do not fill shape %v", t.Name, len(t.Data), t.Shape)
	}
	return nil
}

// encodeHeader returns the JSON header for tensors, which are sorted by
// name, padded with spaces to a multiple of 8 bytes.
func encodeHeader(tensors []Tensor, metadata map[string]string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		quote(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				b.WriteByte(',')
			}
			quote(&b, k)
			b.WriteByte(':')
			quote(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	off := int64(0)
	for i, t := range tensors {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		end := off + int64(len(t.Data)*t.DType.Size())
		quote(&b, t.Name)
		b.WriteString(`:{"dtype":`)
		quote(&b, string(t.DType))
		b.WriteString(`,"shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

// quote writes s as a JSON string. Unlike encoding/json it leaves <, > and
// & alone; non-ASCII text is written as UTF-8, as the reference safetensors
// implementation (serde_json) does.
func quote(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// WriteFile writes tensors and metadata to the file at path as Write does.
// It writes a temporary file in the same directory and renames it over
// path, so that path never holds a partial file.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("safetensors: write %s: %w", path, err)
		}
	}()
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp, tensors, metadata); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
