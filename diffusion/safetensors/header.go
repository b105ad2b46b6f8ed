package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header Open and Parse accept, in bytes.
// Real checkpoints with thousands of tensors have headers well under 1 MB;
// the limit keeps a corrupt length field from causing a huge read.
const MaxHeaderSize = 100 << 20

// metadataKey is the header key that holds the string→string metadata
// instead of a tensor.
const metadataKey = "__metadata__"

// The sentinel errors. Every error Open, Parse and the File methods return
// for a malformed file or a missing key is an *Error wrapping one of them,
// so callers can test with errors.Is.
var (
	// ErrTruncated: the file ends before the 8-byte length prefix, the
	// header or a tensor's data.
	ErrTruncated = errors.New("truncated")
	// ErrHeaderTooLarge: the header length exceeds MaxHeaderSize.
	ErrHeaderTooLarge = errors.New("header too large")
	// ErrInvalidHeader: the header is not a UTF-8 JSON object, or an entry
	// lacks or mistypes "dtype", "shape" or "data_offsets", or a key repeats.
	ErrInvalidHeader = errors.New("invalid header")
	// ErrInvalidMetadata: "__metadata__" is not a string→string object.
	ErrInvalidMetadata = errors.New("invalid __metadata__")
	// ErrUnknownDType: a dtype this package does not know.
	ErrUnknownDType = errors.New("unknown dtype")
	// ErrInvalidShape: a negative or non-integer dimension, or a shape
	// whose byte size overflows.
	ErrInvalidShape = errors.New("invalid shape")
	// ErrInvalidOffsets: data_offsets with begin > end, or a byte span
	// that differs from the shape's element count times the dtype size.
	ErrInvalidOffsets = errors.New("invalid data_offsets")
	// ErrOverlap: two tensors share bytes of the data region.
	ErrOverlap = errors.New("overlapping tensors")
	// ErrKeyNotFound: the file has no tensor of the requested name.
	ErrKeyNotFound = errors.New("tensor not found")
	// ErrClosed: the File was used after Close.
	ErrClosed = errors.New("file closed")
)

// Error is a problem with a safetensors file, or with a request to one.
type Error struct {
	Path   string // file path; "" for Parse and NewReader
	Key    string // tensor key; "" when the problem is not about one tensor
	Err    error  // one of the sentinel errors
	Detail string // what exactly is wrong
}

// Error implements error: "safetensors: <path>: tensor \"<key>\": <sentinel>: <detail>".
func (e *Error) Error() string {
	var b bytes.Buffer
	b.WriteString("safetensors: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "tensor %q: ", e.Key)
	}
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func errorf(key string, sentinel error, format string, args ...any) *Error {
	return &Error{Key: key, Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}

// withPath sets the path of err if it is an *Error without one.
func withPath(err error, path string) error {
	var e *Error
	if errors.As(err, &e) && e.Path == "" {
		e.Path = path
	}
	return err
}

// Info describes one tensor of a file.
type Info struct {
	Name  string
	DType DType
	Shape []int
	// Begin and End are the byte offsets of the tensor's data relative to
	// the start of the data region, End exclusive.
	Begin, End int64
}

// Len returns the number of elements, the product of Shape.
func (in Info) Len() int {
	n := 1
	for _, d := range in.Shape {
		n *= d
	}
	return n
}

// header is a parsed and validated header.
type header struct {
	infos    map[string]Info
	names    []string // sorted
	metadata map[string]string
}

// readPrefix decodes the 8-byte header length prefix of a file of size
// bytes and checks it against the file size and MaxHeaderSize.
func readPrefix(prefix []byte, size int64) (int64, error) {
	if size < 8 || len(prefix) < 8 {
		return 0, errorf("", ErrTruncated, "file is %d bytes, shorter than the 8-byte header length", size)
	}
	n := binary.LittleEndian.Uint64(prefix)
	if n > MaxHeaderSize {
		return 0, errorf("", ErrHeaderTooLarge, "header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return 0, errorf("", ErrTruncated, "header length %d exceeds the %d bytes after the length prefix", n, size-8)
	}
	return int64(n), nil
}

// number is the text of a JSON number. Unlike json.Number it does not
// accept a quoted string.
type number string

// UnmarshalJSON implements json.Unmarshaler.
func (n *number) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("not a number")
	}
	*n = number(b)
	return nil
}

// parseHeader parses and validates the JSON header hdr of a file whose data
// region is dataLen bytes long. Nothing it allocates depends on the numbers
// in the header, only on len(hdr).
func parseHeader(hdr []byte, dataLen int64) (*header, error) {
	if !utf8.Valid(hdr) {
		return nil, errorf("", ErrInvalidHeader, "not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errorf("", ErrInvalidHeader, "not a JSON object")
	}
	h := &header{infos: make(map[string]Info)}
	seenMetadata := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errorf("", ErrInvalidHeader, "malformed JSON: %v", err)
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errorf(key, ErrInvalidHeader, "malformed JSON: %v", err)
		}
		if key == metadataKey {
			if seenMetadata {
				return nil, errorf("", ErrInvalidHeader, "%q appears twice", key)
			}
			seenMetadata = true
			if err := json.Unmarshal(raw, &h.metadata); err != nil || h.metadata == nil {
				return nil, errorf("", ErrInvalidMetadata, "want a JSON object of strings, got %s", excerpt(raw))
			}
			continue
		}
		if _, dup := h.infos[key]; dup {
			return nil, errorf(key, ErrInvalidHeader, "key appears twice")
		}
		info, err := parseEntry(key, raw, dataLen)
		if err != nil {
			return nil, err
		}
		h.infos[key] = info
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, errorf("", ErrInvalidHeader, "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf("", ErrInvalidHeader, "data after the JSON object")
	}

	h.names = make([]string, 0, len(h.infos))
	for name := range h.infos {
		h.names = append(h.names, name)
	}
	slices.Sort(h.names)
	if err := checkOverlap(h); err != nil {
		return nil, err
	}
	return h, nil
}

// parseEntry validates one tensor entry.
func parseEntry(key string, raw json.RawMessage, dataLen int64) (Info, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Info{}, errorf(key, ErrInvalidHeader, "want an object with dtype, shape and data_offsets, got %s", excerpt(raw))
	}
	for _, name := range []string{"dtype", "shape", "data_offsets"} {
		if _, ok := fields[name]; !ok {
			return Info{}, errorf(key, ErrInvalidHeader, "missing %s", name)
		}
	}
	var dtype *string
	if err := json.Unmarshal(fields["dtype"], &dtype); err != nil || dtype == nil {
		return Info{}, errorf(key, ErrInvalidHeader, "dtype is %s, want a string", excerpt(fields["dtype"]))
	}
	var shape, offsets []number
	if err := json.Unmarshal(fields["shape"], &shape); err != nil || shape == nil {
		return Info{}, errorf(key, ErrInvalidShape, "shape is %s, want a list of integers", excerpt(fields["shape"]))
	}
	if err := json.Unmarshal(fields["data_offsets"], &offsets); err != nil || offsets == nil {
		return Info{}, errorf(key, ErrInvalidOffsets, "data_offsets is %s, want [begin, end]", excerpt(fields["data_offsets"]))
	}

	info := Info{Name: key, DType: DType(*dtype)}
	size := info.DType.Size()
	if size == 0 {
		return Info{}, errorf(key, ErrUnknownDType, "%q", *dtype)
	}

	info.Shape = make([]int, len(shape))
	zero := false
	for i, s := range shape {
		d, err := strconv.ParseInt(string(s), 10, 0)
		if err != nil || d < 0 {
			return Info{}, errorf(key, ErrInvalidShape, "dimension %d is %s, want a non-negative integer", i, s)
		}
		info.Shape[i] = int(d)
		zero = zero || d == 0
	}
	// Byte size of the shape, with overflow checks; a zero dimension makes
	// the product zero whatever the other dimensions are.
	nbytes := int64(0)
	if !zero {
		nbytes = int64(size)
		for _, d := range info.Shape {
			if nbytes > math.MaxInt64/int64(d) {
				return Info{}, errorf(key, ErrInvalidShape, "shape %v of %s overflows", info.Shape, info.DType)
			}
			nbytes *= int64(d)
		}
	}

	if len(offsets) != 2 {
		return Info{}, errorf(key, ErrInvalidOffsets, "want [begin, end], got %d numbers", len(offsets))
	}
	var off [2]uint64
	for i, s := range offsets {
		v, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return Info{}, errorf(key, ErrInvalidOffsets, "%s is not a non-negative integer", s)
		}
		off[i] = v
	}
	if off[0] > off[1] {
		return Info{}, errorf(key, ErrInvalidOffsets, "begin %d > end %d", off[0], off[1])
	}
	if off[1] > uint64(dataLen) {
		return Info{}, errorf(key, ErrTruncated, "data_offsets [%d, %d] end beyond the %d-byte data region", off[0], off[1], dataLen)
	}
	info.Begin, info.End = int64(off[0]), int64(off[1])
	if info.End-info.Begin != nbytes {
		return Info{}, errorf(key, ErrInvalidOffsets, "span [%d, %d] is %d bytes, shape %v of %s needs %d",
			info.Begin, info.End, info.End-info.Begin, info.Shape, info.DType, nbytes)
	}
	return info, nil
}

// checkOverlap reports an error if two non-empty tensors share a byte.
// Holes between tensors and bytes after the last one are allowed.
func checkOverlap(h *header) error {
	spans := make([]Info, 0, len(h.infos))
	for _, name := range h.names { // sorted names make the error deterministic
		if in := h.infos[name]; in.End > in.Begin {
			spans = append(spans, in)
		}
	}
	slices.SortStableFunc(spans, func(a, b Info) int {
		if a.Begin != b.Begin {
			return compare(a.Begin, b.Begin)
		}
		return compare(a.End, b.End)
	})
	for i := 1; i < len(spans); i++ {
		if prev, cur := spans[i-1], spans[i]; cur.Begin < prev.End {
			return errorf(cur.Name, ErrOverlap, "bytes [%d, %d] overlap tensor %q at [%d, %d]",
				cur.Begin, cur.End, prev.Name, prev.Begin, prev.End)
		}
	}
	return nil
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// excerpt returns raw JSON shortened for an error message.
func excerpt(raw []byte) string {
	const max = 40
	if len(raw) <= max {
		return string(raw)
	}
	// Cut at a rune boundary; raw is valid UTF-8.
	n := max
	for n > 0 && !utf8.RuneStart(raw[n]) {
		n--
	}
	return string(raw[:n]) + "..."
}
