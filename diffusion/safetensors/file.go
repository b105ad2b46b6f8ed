// Package safetensors reads and writes the safetensors tensor file format
// (https://github.com/huggingface/safetensors), in which Stable Diffusion
// weights are distributed.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
// header, then the data region:
//
//	{"__metadata__": {"format": "pt"},
//	 "conv_in.weight": {"dtype": "F32", "shape": [320, 4, 3, 3], "data_offsets": [0, 46080]},
//	 ...}
//
// with data_offsets [begin, end) relative to the start of the data region
// and tensors stored row-major, little-endian.
//
// Open validates the whole header up front, so that a File never hands out
// a span outside the file or one that disagrees with its shape. Every
// format problem is reported as an *Error naming the file and the tensor
// key and wrapping a sentinel error such as ErrTruncated. Nothing is allocated
// from numbers in the header before they have been checked against the
// real file size. Tensors are converted to float32 on request (Float32,
// Tensor); F16 and BF16 conversions are exact, including subnormals,
// infinities and NaN.
//
// Write and WriteFile produce deterministic files laid out as the
// reference implementation lays them out.
package safetensors

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// File is an open safetensors file whose header has been validated.
//
// A File from Open maps the file read-only into memory where the operating
// system allows it (Linux, macOS, the BSDs) and reads it with ReadAt
// elsewhere. Its methods may be called from several goroutines at once,
// but not concurrently with Close.
type File struct {
	path string
	h    *header

	// data is the data region when the whole file is in memory (Parse) or
	// mapped (Open); otherwise it is nil and tensors are read from r at
	// dataOff.
	data    []byte
	r       io.ReaderAt
	dataOff int64

	close  func() error // unmaps or closes; nil if there is nothing to do
	closed bool
}

// Parse validates data, the whole content of a safetensors file, and
// returns a File that reads its tensors from data. data is not copied and
// must not be modified while the File is in use.
func Parse(data []byte) (*File, error) {
	n, err := readPrefix(data, int64(len(data)))
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(data[8:8+n], int64(len(data))-8-n)
	if err != nil {
		return nil, err
	}
	return &File{h: h, data: data[8+n:], dataOff: 8 + n}, nil
}

// NewReader validates the header of the safetensors file of the given size
// read from r and returns a File that reads tensors from r on demand.
// Closing the File does not close r.
func NewReader(r io.ReaderAt, size int64) (*File, error) {
	var prefix [8]byte
	if size >= 8 {
		if err := readFull(r, prefix[:], 0); err != nil {
			return nil, err
		}
	}
	n, err := readPrefix(prefix[:], size)
	if err != nil {
		return nil, err
	}
	// n <= size-8 was checked, so this allocation is bounded by the size
	// of the input.
	hdr := make([]byte, n)
	if err := readFull(r, hdr, 8); err != nil {
		return nil, err
	}
	h, err := parseHeader(hdr, size-8-n)
	if err != nil {
		return nil, err
	}
	return &File{h: h, r: r, dataOff: 8 + n}, nil
}

// readFull reads len(buf) bytes at off, turning a short read into
// ErrTruncated.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf("", ErrTruncated, "read %d of %d bytes at offset %d", n, len(buf), off)
	}
	return fmt.Errorf("safetensors: read at offset %d: %w", off, err)
}

// Close releases the file. Slices returned by Bytes for a mapped file must
// not be used after Close.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.data = nil
	if f.close != nil {
		return f.close()
	}
	return nil
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return slices.Clone(f.h.names) }

// Info returns the description of the named tensor and whether it exists.
func (f *File) Info(name string) (Info, bool) {
	in, ok := f.h.infos[name]
	in.Shape = slices.Clone(in.Shape)
	return in, ok
}

// Metadata returns a copy of the "__metadata__" map of the header, or nil
// if the header has none.
func (f *File) Metadata() map[string]string { return maps.Clone(f.h.metadata) }

// lookup returns the info of the named tensor or an error naming the key.
func (f *File) lookup(name string) (Info, error) {
	if f.closed {
		return Info{}, &Error{Path: f.path, Key: name, Err: ErrClosed}
	}
	in, ok := f.h.infos[name]
	if !ok {
		return Info{}, &Error{Path: f.path, Key: name, Err: ErrKeyNotFound}
	}
	return in, nil
}

// Bytes returns the raw little-endian bytes of the named tensor. For a
// mapped or parsed file it is a view into the file content that must not
// be modified (a mapping is read-only: writing to it crashes the program)
// and must not be used after Close; otherwise it is a new slice.
func (f *File) Bytes(name string) ([]byte, error) {
	in, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if f.data != nil {
		return f.data[in.Begin:in.End:in.End], nil
	}
	// The span was checked against the file size in NewReader.
	buf := make([]byte, in.End-in.Begin)
	if err := readFull(f.r, buf, f.dataOff+in.Begin); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Path, e.Key = f.path, name
		}
		return nil, err
	}
	return buf, nil
}

// Float32 returns the elements of the named tensor converted to float32 in
// a new slice, and its shape. Every known dtype converts; F64 and 64-bit
// integers lose precision beyond float32's, BOOL gives 0 or 1.
func (f *File) Float32(name string) ([]float32, []int, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, nil, err
	}
	in := f.h.infos[name]
	data := make([]float32, len(b)/in.DType.Size())
	decode(data, b, in.DType)
	return data, slices.Clone(in.Shape), nil
}

// Tensor returns the named tensor converted to float32, as Float32 does.
func (f *File) Tensor(name string) (*tensor.Tensor, error) {
	data, shape, err := f.Float32(name)
	if err != nil {
		return nil, err
	}
	return &tensor.Tensor{Shape: shape, Data: data}, nil
}
