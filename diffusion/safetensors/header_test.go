package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the seed files in testdata/safetensors")

// seedDir holds small valid and corrupt files; they seed FuzzParse.
const seedDir = "../../testdata/safetensors"

// rawFile assembles a file from a header (used as is, not padded) and the
// data region.
func rawFile(hdr string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, data...)
}

// prefixOnly returns a file whose length prefix is n, followed by rest.
func prefixOnly(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func zeros(n int) []byte { return make([]byte, n) }

// validFile is written by Write: several dtypes, a scalar, an empty tensor
// and metadata.
func validFile() []byte {
	var b bytes.Buffer
	err := Write(&b, []Tensor{
		{Name: "weight", Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 0, 1e-3, 65504}},
		{Name: "half", Shape: []int{4}, Data: []float32{1, -0.5, 1e-7, 70000}, DType: F16},
		{Name: "brain", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 1e30}, DType: BF16},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 5}, Data: nil},
	}, map[string]string{"format": "pt", "note": "seed for FuzzParse"})
	if err != nil {
		panic(err)
	}
	return b.Bytes()
}

// oddFile is valid but unusual: every integer dtype, F64 and float8,
// entries out of order, an extra entry field, a hole between tensors, a
// zero-size tensor inside another's span, and bytes after the last tensor.
func oddFile() []byte {
	hdr := ` {"u8":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},` +
		`"bool":{"dtype":"BOOL","shape":[2],"data_offsets":[3,5]},` +
		`"i8":{"dtype":"I8","shape":[1],"data_offsets":[5,6],"extra":"ignored"},` +
		`"i16":{"dtype":"I16","shape":[1],"data_offsets":[8,10]},` +
		`"u16":{"dtype":"U16","shape":[1],"data_offsets":[10,12]},` +
		`"i32":{"dtype":"I32","shape":[1],"data_offsets":[12,16]},` +
		`"f64":{"dtype":"F64","shape":[1,1],"data_offsets":[16,24]},` +
		`"i64":{"dtype":"I64","shape":[1],"data_offsets":[24,32]},` +
		`"e4m3":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[32,34]},` +
		`"e5m2":{"dtype":"F8_E5M2","shape":[2],"data_offsets":[34,36]},` +
		`"zero":{"dtype":"F32","shape":[7,0],"data_offsets":[17,17]}}`
	le := binary.LittleEndian
	data := []byte{1, 2, 255, 0, 7, 0xfe, 0xee, 0xee}
	data = le.AppendUint16(data, 0xffff)
	data = le.AppendUint16(data, 0xffff)
	data = le.AppendUint32(data, 0x80000000)
	data = le.AppendUint64(data, math.Float64bits(-0.25))
	data = le.AppendUint64(data, 1<<62)
	data = append(data, 0x38, 0x7f, 0x3c, 0x7c) // 1, NaN; 1, +Inf
	data = append(data, "trailing"...)
	return rawFile(hdr, data)
}

const okEntry = `"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`

// parseCases are the inputs of TestParseErrors. Those with seed set are
// also stored in testdata/safetensors/<name>.safetensors.
var parseCases = []struct {
	name   string
	seed   bool
	data   []byte
	err    error  // nil: valid
	key    string // the tensor key the error names
	detail string // a substring of the message
}{
	{name: "valid", seed: true, data: validFile()},
	{name: "odd", seed: true, data: oddFile()},
	{name: "no_tensors", seed: true, data: rawFile("{}      ", nil)},
	{name: "metadata_only", data: rawFile(`{"__metadata__":{}}`, nil)},
	{name: "empty_name", data: rawFile(`{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, zeros(1))},

	{name: "empty", data: nil, err: ErrTruncated, detail: "shorter than the 8-byte header length"},
	{name: "short", seed: true, data: []byte{4, 0, 0}, err: ErrTruncated, detail: "shorter than the 8-byte"},
	{name: "header_too_long", seed: true, data: prefixOnly(1000, `{"a":1}`), err: ErrTruncated, detail: "header length 1000 exceeds"},
	{name: "header_absurd", data: prefixOnly(1<<62, `{}`), err: ErrHeaderTooLarge},
	{name: "header_over_limit", data: prefixOnly(MaxHeaderSize+1, `{}`), err: ErrHeaderTooLarge},
	{name: "header_empty", data: prefixOnly(0, ""), err: ErrInvalidHeader, detail: "not a JSON object"},
	{name: "not_json", seed: true, data: rawFile("hello, world", nil), err: ErrInvalidHeader},
	{name: "json_array", data: rawFile(`[1,2]`, nil), err: ErrInvalidHeader, detail: "not a JSON object"},
	{name: "json_unterminated", data: rawFile(`{"a":{"dtype":"F32"`, nil), err: ErrInvalidHeader, key: "a"},
	{name: "not_utf8", data: rawFile("{\"a\xff\":{}}", nil), err: ErrInvalidHeader, detail: "UTF-8"},
	{name: "trailing_garbage", data: rawFile(`{} x`, nil), err: ErrInvalidHeader, detail: "after the JSON object"},
	{name: "nul_padding", data: rawFile("{}\x00\x00", nil), err: ErrInvalidHeader},
	{name: "duplicate_key", data: rawFile(`{`+okEntry+`,`+okEntry+`}`, zeros(8)), err: ErrInvalidHeader, key: "a", detail: "twice"},
	{name: "duplicate_metadata", data: rawFile(`{"__metadata__":{},"__metadata__":{}}`, nil), err: ErrInvalidHeader, detail: `"__metadata__" appears twice`},
	{name: "entry_not_object", data: rawFile(`{"a":3}`, nil), err: ErrInvalidHeader, key: "a"},
	{name: "entry_null", data: rawFile(`{"a":null}`, nil), err: ErrInvalidHeader, key: "a", detail: "got null"},
	{name: "missing_dtype", data: rawFile(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, zeros(8)), err: ErrInvalidHeader, key: "a", detail: "missing dtype"},
	{name: "missing_shape", data: rawFile(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, zeros(8)), err: ErrInvalidHeader, key: "a", detail: "missing shape"},
	{name: "missing_offsets", data: rawFile(`{"a":{"dtype":"F32","shape":[2]}}`, zeros(8)), err: ErrInvalidHeader, key: "a", detail: "missing data_offsets"},
	{name: "dtype_not_string", data: rawFile(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, zeros(4)), err: ErrInvalidHeader, key: "a", detail: "dtype is 4, want a string"},
	{name: "dtype_null", data: rawFile(`{"a":{"dtype":null,"shape":[1],"data_offsets":[0,4]}}`, zeros(4)), err: ErrInvalidHeader, key: "a", detail: "dtype is null"},
	{name: "shape_null", data: rawFile(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, zeros(4)), err: ErrInvalidShape, key: "a", detail: "shape is null"},
	{name: "shape_number", data: rawFile(`{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}`, zeros(4)), err: ErrInvalidShape, key: "a"},
	{name: "offsets_string", data: rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}}`, zeros(4)), err: ErrInvalidOffsets, key: "a", detail: `"0,4"`},
	{name: "unknown_dtype", seed: true, data: rawFile(`{"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}`, zeros(8)), err: ErrUnknownDType, key: "a", detail: `"F17"`},
	{name: "lowercase_dtype", data: rawFile(`{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}`, zeros(8)), err: ErrUnknownDType, key: "a", detail: `"f32"`},
	{name: "negative_dim", seed: true, data: rawFile(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, zeros(8)), err: ErrInvalidShape, key: "a", detail: "-2"},
	{name: "fractional_dim", data: rawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, zeros(8)), err: ErrInvalidShape, key: "a", detail: "1.5"},
	{name: "huge_dim", data: rawFile(`{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}`, zeros(8)), err: ErrInvalidShape, key: "a"},
	{name: "quoted_dim", data: rawFile(`{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}`, zeros(8)), err: ErrInvalidShape, key: "a", detail: `["2"]`},
	{name: "shape_overflow", data: rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}`, zeros(8)), err: ErrInvalidShape, key: "a", detail: "overflows"},
	{name: "shape_overflow_by_size", data: rawFile(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}`, zeros(8)), err: ErrInvalidShape, key: "a", detail: "overflows"},
	{name: "bad_offsets", seed: true, data: rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}`, zeros(8)), err: ErrInvalidOffsets, key: "a", detail: "begin 8 > end 0"},
	{name: "offsets_three", data: rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}`, zeros(8)), err: ErrInvalidOffsets, key: "a"},
	{name: "offset_negative", data: rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, zeros(8)), err: ErrInvalidOffsets, key: "a"},
	{name: "offset_huge", data: rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}`, zeros(8)), err: ErrTruncated, key: "a"},
	{name: "truncated", seed: true, data: rawFile(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`, zeros(12)), err: ErrTruncated, key: "a", detail: "beyond the 12-byte data region"},
	{name: "shape_mismatch", seed: true, data: rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, zeros(12)), err: ErrInvalidOffsets, key: "a", detail: "needs 12"},
	{name: "overlapping", seed: true, data: rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[4],"data_offsets":[4,12]}}`, zeros(12)), err: ErrOverlap, key: "b", detail: `tensor "a"`},
	{name: "same_span", data: rawFile(`{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, zeros(8)), err: ErrOverlap, key: "b"},
	{name: "bad_metadata", seed: true, data: rawFile(`{"__metadata__":{"format":"pt","epoch":3}}`, nil), err: ErrInvalidMetadata},
	{name: "metadata_null", data: rawFile(`{"__metadata__":null}`, nil), err: ErrInvalidMetadata},
	{name: "metadata_list", data: rawFile(`{"__metadata__":["a"]}`, nil), err: ErrInvalidMetadata},
}

// TestParseErrors parses every case of parseCases: valid ones must parse,
// corrupt ones must fail with the listed sentinel, key and detail.
func TestParseErrors(t *testing.T) {
	for _, tt := range parseCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkParse(t, tt.data, tt.err, tt.key, tt.detail)
		})
	}
}

func checkParse(t *testing.T, data []byte, wantErr error, key, detail string) {
	t.Helper()
	f, err := Parse(data)
	if wantErr == nil {
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		checkFile(t, f, data)
		return
	}
	if err == nil {
		t.Fatalf("Parse succeeded with tensors %v, want %v", f.Names(), wantErr)
	}
	if !errors.Is(err, wantErr) {
		t.Fatalf("Parse error %q is not %q", err, wantErr)
	}
	var e *Error
	if !errors.As(err, &e) || e.Key != key {
		t.Errorf("Parse error %q: key %q, want %q", err, e.Key, key)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "safetensors: ") || !strings.Contains(msg, detail) || !strings.Contains(msg, wantErr.Error()) {
		t.Errorf("Parse error %q does not say %q and %q", msg, wantErr, detail)
	}
	if key != "" && !strings.Contains(msg, `"`+key+`"`) {
		t.Errorf("Parse error %q does not name the key %q", msg, key)
	}
}

// checkFile checks the invariants of a successfully parsed file: every
// tensor lies within the data region and its span matches shape and
// dtype, no two non-empty tensors overlap, and every tensor converts.
func checkFile(t testing.TB, f *File, data []byte) {
	t.Helper()
	hdrLen := int64(binary.LittleEndian.Uint64(data))
	dataLen := int64(len(data)) - 8 - hdrLen
	names := f.Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names not sorted: %q", names)
	}
	var spans [][2]int64
	for _, name := range names {
		in, ok := f.Info(name)
		if !ok || in.Name != name {
			t.Fatalf("Info(%q) = %+v, %v", name, in, ok)
		}
		if in.Begin < 0 || in.Begin > in.End || in.End > dataLen {
			t.Fatalf("%q: span [%d, %d] outside the %d-byte data region", name, in.Begin, in.End, dataLen)
		}
		if in.End-in.Begin != int64(in.Len())*int64(in.DType.Size()) {
			t.Fatalf("%q: span [%d, %d] does not hold %v of %s", name, in.Begin, in.End, in.Shape, in.DType)
		}
		if in.End > in.Begin {
			spans = append(spans, [2]int64{in.Begin, in.End})
		}
		raw, err := f.Bytes(name)
		if err != nil || !bytes.Equal(raw, data[8+hdrLen+in.Begin:8+hdrLen+in.End]) {
			t.Fatalf("Bytes(%q) = %d bytes, %v", name, len(raw), err)
		}
		vals, shape, err := f.Float32(name)
		if err != nil || len(vals) != in.Len() || !slices.Equal(shape, in.Shape) {
			t.Fatalf("Float32(%q) = %d values, %v, %v; want %d values of %v", name, len(vals), shape, err, in.Len(), in.Shape)
		}
	}
	slices.SortFunc(spans, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	for i := 1; i < len(spans); i++ {
		if spans[i][0] < spans[i-1][1] {
			t.Fatalf("spans %v and %v overlap", spans[i-1], spans[i])
		}
	}
}

// TestSeedFiles checks that testdata/safetensors holds exactly the seed
// cases of parseCases (rewrite them with -update) and that each parses as
// its case says.
func TestSeedFiles(t *testing.T) {
	want := make(map[string]bool)
	for _, tt := range parseCases {
		if !tt.seed {
			continue
		}
		path := filepath.Join(seedDir, tt.name+".safetensors")
		want[filepath.Base(path)] = true
		if *update {
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestSeedFiles -update)", err)
		}
		if !bytes.Equal(got, tt.data) {
			t.Errorf("%s is stale (run go test -run TestSeedFiles -update)", path)
		}
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(path)
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				checkFile(t, f, got)
				return
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open: %v, want %v naming %s", err, tt.err, path)
			}
		})
	}
	entries, err := os.ReadDir(seedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("%s/%s is not a seed case of parseCases", seedDir, e.Name())
		}
	}
}

// TestOddValues checks the values of oddFile, which has every dtype.
func TestOddValues(t *testing.T) {
	f, err := Parse(oddFile())
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	want := map[string][]float32{
		"u8": {1, 2, 255}, "bool": {0, 1}, "i8": {-2}, "i16": {-1}, "u16": {65535},
		"i32": {-2147483648}, "f64": {-0.25}, "i64": {1 << 62},
		"e4m3": {1, nan}, "e5m2": {1, inf}, "zero": {},
	}
	if names := f.Names(); len(names) != len(want) {
		t.Errorf("Names() = %q", names)
	}
	for name, w := range want {
		got, _, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, w, func(a, b float32) bool { return a == b || a != a && b != b }) {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	if in, _ := f.Info("zero"); !slices.Equal(in.Shape, []int{7, 0}) || in.Len() != 0 {
		t.Errorf("zero: %+v", in)
	}
}

// TestNoAllocFromHeader checks that numbers in a header do not drive
// allocations: small inputs claiming a huge header or huge tensors must
// fail without allocating more than a little.
func TestNoAllocFromHeader(t *testing.T) {
	inputs := [][]byte{
		prefixOnly(MaxHeaderSize, "{}"),
		rawFile(`{"a":{"dtype":"F64","shape":[1099511627776],"data_offsets":[0,8796093022208]}}`, zeros(8)),
		rawFile(`{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}`, zeros(1)),
	}
	for _, data := range inputs {
		for _, parse := range []func([]byte) (*File, error){
			Parse,
			func(b []byte) (*File, error) { return NewReader(bytes.NewReader(b), int64(len(b))) },
		} {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			parse(data)
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("parsing %d bytes allocated %d bytes", len(data), n)
			}
		}
	}
}
