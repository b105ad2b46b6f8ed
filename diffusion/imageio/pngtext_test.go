package imageio

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var textCases = []struct {
	name string
	text map[string]string
}{
	{"ascii", map[string]string{"parameters": "a photo of a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1"}},
	{"latin1", map[string]string{"Comment": "café à la crème, ±½ ÿ", "clé": "valeur"}},
	{"japanese", map[string]string{"prompt": "日本語のプロンプト"}},
	{"emoji", map[string]string{"prompt": "a cat 🐱 on a mat"}},
	{"mixed_sorted", map[string]string{"seed": "42", "prompt": "猫", "Author": "pigment", "negative_prompt": "blurry", "Title": "Crème"}},
	{"empty_value", map[string]string{"k": ""}},
	{"nul_in_value", map[string]string{"k": "before\x00after", "u": "日\x00本"}},
	{"longest_key", map[string]string{strings.Repeat("é", 79): "79 Latin-1 bytes, 158 UTF-8 bytes"}},
	{"no_text", nil},
}

// TestEncodePNG encodes each map, checks the chunk layout by hand (PIL is
// not assumed; TestEncodePNGPIL checks with it where it is installed),
// that image/png decodes the result to the same pixels, and that
// ReadPNGText returns the map.
func TestEncodePNG(t *testing.T) {
	img := gradient(5, 3, 200)
	for _, tt := range textCases {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := EncodePNG(&buf, img, tt.text); err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()

			decoded, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("image/png: %v", err)
			}
			if got := decoded.(*image.NRGBA); !bytes.Equal(got.Pix, img.Pix) {
				t.Errorf("image/png decodes different pixels")
			}

			chunks := walkChunks(t, b)
			if chunks[0].typ != "IHDR" || chunks[len(chunks)-1].typ != "IEND" {
				t.Fatalf("chunks %v: want IHDR first and IEND last", chunkTypes(chunks))
			}
			keys := slices.Sorted(maps.Keys(tt.text))
			for i, k := range keys {
				c := chunks[1+i]
				want := wantTextChunk(k, tt.text[k])
				if c.typ != want.typ || !bytes.Equal(c.data, want.data) {
					t.Errorf("chunk %d = %s %q, want %s %q", 1+i, c.typ, c.data, want.typ, want.data)
				}
			}
			// IHDR, the text chunks, then image/png's own (IDAT…, IEND).
			for i, c := range chunks {
				isText := c.typ == "tEXt" || c.typ == "iTXt"
				if isText != (i >= 1 && i <= len(keys)) {
					t.Errorf("chunk order %v, want IHDR, %d text chunks, then the rest", chunkTypes(chunks), len(keys))
					break
				}
			}

			got, err := ReadPNGText(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.text) {
				t.Errorf("ReadPNGText = %q, want %q", got, tt.text)
			}
		})
	}
}

// wantTextChunk spells out the chunk EncodePNG should write, following
// the PNG specification rather than the encoder's code paths.
func wantTextChunk(key, value string) rawChunk {
	k := latin1Bytes(key)
	if v, ok := latin1BytesOK(value); ok {
		return rawChunk{"tEXt", append(append(k, 0), v...)}
	}
	// keyword, NUL, compression flag 0, method 0, empty language tag + NUL,
	// empty translated keyword + NUL, UTF-8 text.
	return rawChunk{"iTXt", append(append(k, 0, 0, 0, 0, 0), value...)}
}

func latin1Bytes(s string) []byte {
	b, _ := latin1BytesOK(s)
	return b
}

func latin1BytesOK(s string) ([]byte, bool) {
	var b []byte
	for _, r := range s {
		if r > 0xFF {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

type rawChunk struct {
	typ  string
	data []byte
}

// walkChunks splits a PNG into chunks, failing on a bad signature, length
// or CRC.
func walkChunks(t testing.TB, b []byte) []rawChunk {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(pngSignature)) {
		t.Fatal("no PNG signature")
	}
	var out []rawChunk
	for p := 8; p < len(b); {
		if p+12 > len(b) {
			t.Fatalf("truncated chunk at %d", p)
		}
		n := int(binary.BigEndian.Uint32(b[p:]))
		if p+12+n > len(b) {
			t.Fatalf("chunk at %d claims %d bytes", p, n)
		}
		typ, data := string(b[p+4:p+8]), b[p+8:p+8+n]
		if got, want := binary.BigEndian.Uint32(b[p+8+n:]), crc32.ChecksumIEEE(b[p+4:p+8+n]); got != want {
			t.Fatalf("chunk %s: CRC %08x, want %08x", typ, got, want)
		}
		out = append(out, rawChunk{typ, data})
		p += 12 + n
	}
	return out
}

func chunkTypes(cs []rawChunk) []string {
	var ts []string
	for _, c := range cs {
		ts = append(ts, c.typ)
	}
	return ts
}

func TestEncodePNGErrors(t *testing.T) {
	tests := []struct {
		name string
		text map[string]string
		msg  string
	}{
		{"empty_key", map[string]string{"": "v"}, "0 bytes"},
		{"key_80_bytes", map[string]string{strings.Repeat("k", 80): "v"}, "80 bytes"},
		{"key_80_latin1_chars", map[string]string{strings.Repeat("é", 80): "v"}, "80 bytes"},
		{"key_with_nul", map[string]string{"a\x00b": "v"}, "NUL"},
		{"key_not_latin1", map[string]string{"日本": "v"}, "not Latin-1"},
		{"key_invalid_utf8", map[string]string{"k\xff": "v"}, "not Latin-1"},
		{"value_invalid_utf8", map[string]string{"k": "v\xff\xfe"}, "not valid UTF-8"},
		{"one_bad_among_good", map[string]string{"a": "ok", "": "bad"}, "0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := EncodePNG(&buf, gradient(2, 2, 255), tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("EncodePNG error = %v, want one mentioning %q", err, tt.msg)
			}
			if buf.Len() != 0 {
				t.Errorf("EncodePNG wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

// TestReadPNGTextPIL reads testdata/images/pil_text.png, written by Pillow
// 9.4 (PngInfo.add_text, add_text(zip=True), add_itxt(zip=True) with
// language tag and translated keyword, add_itxt): tEXt, zTXt, compressed
// and uncompressed iTXt. want is what PIL's Image.open(f).text returns.
func TestReadPNGTextPIL(t *testing.T) {
	b := readFixture(t, "pil_text.png")
	types := chunkTypes(walkChunks(t, b))
	for _, typ := range []string{"tEXt", "zTXt", "iTXt"} {
		if !slices.Contains(types, typ) {
			t.Fatalf("fixture chunks %v lack %s", types, typ)
		}
	}
	want := map[string]string{
		"parameters": "a photo of a cat\nSteps: 20, Sampler: Euler a, Seed: 1",
		"Comment":    strings.Repeat("café ", 50),
		"prompt":     strings.Repeat("日本語 🐱", 20),
		"Title":      "plain iTXt",
	}
	got, err := ReadPNGText(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("ReadPNGText = %q, want %q", got, want)
	}
}

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// pngWith returns a PNG stream: signature, IHDR of a 1×1 image, chunks,
// IEND (no IDAT: ReadPNGText does not need one).
func pngWith(chunks ...[]byte) []byte {
	b := pngHeaderOnly(1, 1)
	for _, c := range chunks {
		b = append(b, c...)
	}
	return append(b, pngChunk("IEND", nil)...)
}

func TestReadPNGText(t *testing.T) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	s := func(x string) []byte { return []byte(x) }
	tEXt := func(k, v string) []byte { return pngChunk("tEXt", cat(s(k), s("\x00"), s(v))) }
	valid := tEXt("ok", "kept")
	badCRC := tEXt("k", "v")
	badCRC[len(badCRC)-1] ^= 1
	bomb := zlibBytes(make([]byte, maxTextChunk+1))
	big := zlibBytes(bytes.Repeat([]byte("x"), 15<<20))
	full := pngWith(valid)
	errNet := errors.New("connection reset")

	tests := []struct {
		name string
		data []byte
		want map[string]string
		err  error
	}{
		{"tEXt_latin1", pngWith(pngChunk("tEXt", s("cl\xe9\x00caf\xe9"))), map[string]string{"clé": "café"}, nil},
		{"zTXt", pngWith(pngChunk("zTXt", cat(s("Comment\x00\x00"), zlibBytes(s("caf\xe9"))))), map[string]string{"Comment": "café"}, nil},
		{"iTXt_compressed", pngWith(pngChunk("iTXt", cat(s("k\x00\x01\x00ja\x00キー\x00"), zlibBytes(s("日本語"))))), map[string]string{"k": "日本語"}, nil},
		{"iTXt_plain", pngWith(pngChunk("iTXt", s("k\x00\x00\x00\x00\x00🐱"))), map[string]string{"k": "🐱"}, nil},
		{"duplicate_last_wins", pngWith(tEXt("k", "first"), tEXt("k", "second")), map[string]string{"k": "second"}, nil},
		{"after_iend_ignored", append(pngWith(valid), tEXt("late", "x")...), map[string]string{"ok": "kept"}, nil},
		{"idat_crc_not_checked", pngWith(cat(pngChunk("IDAT", s("xx"))[:10], s("\x00\x00\x00\x00")), valid), map[string]string{"ok": "kept"}, nil},
		{"no_text", pngWith(), map[string]string{}, nil},

		// Malformed text chunks are skipped; valid ones are kept.
		{"skip/tEXt_no_separator", pngWith(pngChunk("tEXt", s("keyonly")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/tEXt_empty_key", pngWith(pngChunk("tEXt", s("\x00value")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/zTXt_method_1", pngWith(pngChunk("zTXt", cat(s("k\x00\x01"), zlibBytes(s("v")))), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/zTXt_bad_zlib", pngWith(pngChunk("zTXt", s("k\x00\x00not zlib")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/zTXt_truncated_zlib", pngWith(pngChunk("zTXt", cat(s("k\x00\x00"), zlibBytes(s("hello"))[:5])), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/zTXt_no_method", pngWith(pngChunk("zTXt", s("k\x00")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/iTXt_flag_2", pngWith(pngChunk("iTXt", s("k\x00\x02\x00\x00\x00v")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/iTXt_method_1", pngWith(pngChunk("iTXt", cat(s("k\x00\x01\x01\x00\x00"), zlibBytes(s("v")))), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/iTXt_no_language_end", pngWith(pngChunk("iTXt", s("k\x00\x00\x00en")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/iTXt_no_translated_end", pngWith(pngChunk("iTXt", s("k\x00\x00\x00en\x00Key")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/iTXt_short", pngWith(pngChunk("iTXt", s("k\x00\x00")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/iTXt_invalid_utf8", pngWith(pngChunk("iTXt", s("k\x00\x00\x00\x00\x00\xff")), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/zlib_bomb", pngWith(pngChunk("zTXt", cat(s("bomb\x00\x00"), bomb)), valid), map[string]string{"ok": "kept"}, nil},
		{"skip/chunk_over_16MiB", pngWith(tEXt("huge", strings.Repeat("x", maxTextChunk)), valid), map[string]string{"ok": "kept"}, nil},

		{"err/total_over_64MiB", pngWith(
			pngChunk("zTXt", cat(s("a\x00\x00"), big)), pngChunk("zTXt", cat(s("b\x00\x00"), big)),
			pngChunk("zTXt", cat(s("c\x00\x00"), big)), pngChunk("zTXt", cat(s("d\x00\x00"), big)),
			pngChunk("zTXt", cat(s("e\x00\x00"), big))), nil, ErrTooLarge},
		{"err/bad_crc", pngWith(badCRC), nil, ErrCorrupt},
		{"err/no_iend", full[:len(full)-12], nil, ErrCorrupt},
		{"err/truncated_in_chunk", full[:len(full)-16], nil, ErrCorrupt},
		{"err/truncated_in_header", full[:len(full)-8], nil, ErrCorrupt},
		{"err/length_over_2^31", cat(pngHeaderOnly(1, 1), s("\x80\x00\x00\x00tEXt")), nil, ErrCorrupt},
		{"err/not_png", []byte("GIF89a\x01\x00\x01\x00"), nil, ErrUnsupportedFormat},
		{"err/empty", nil, nil, ErrUnsupportedFormat},
		{"err/signature_only_partly", []byte(pngSignature[:5]), nil, ErrUnsupportedFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadPNGText(bytes.NewReader(tt.data))
			if tt.err != nil {
				if !errors.Is(err, tt.err) || got != nil {
					t.Fatalf("ReadPNGText = %d keys, %v; want error %v", len(got), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("ReadPNGText = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("reader_error", func(t *testing.T) {
		for _, n := range []int{0, 5, 20, len(full) - 13} {
			_, err := ReadPNGText(&failingReader{data: full[:n], err: errNet})
			if !errors.Is(err, errNet) || errors.Is(err, ErrCorrupt) {
				t.Errorf("after %d bytes: error %v, want the reader's", n, err)
			}
		}
	})
}

// TestEncodePNGPIL checks interoperability with Pillow where a python3
// with PIL is installed (it is not required): PIL must read EncodePNG's
// text chunks as written.
func TestEncodePNGPIL(t *testing.T) {
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import PIL").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Skip("no python3 with PIL installed; the chunk layout is checked by hand in TestEncodePNG")
	}
	text := map[string]string{}
	for _, tt := range textCases {
		if tt.name != "nul_in_value" { // PIL decodes those too, but they are odd enough to leave out
			maps.Copy(text, tt.text)
		}
	}
	path := filepath.Join(t.TempDir(), "params.png")
	var buf bytes.Buffer
	if err := EncodePNG(&buf, gradient(5, 3, 255), text); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-c",
		"import json, sys; from PIL import Image; im = Image.open(sys.argv[1]); im.load(); print(json.dumps({'size': im.size, 'text': im.text}))",
		path).Output()
	if err != nil {
		t.Fatalf("%s: %v", python, err)
	}
	var got struct {
		Size []int             `json:"size"`
		Text map[string]string `json:"text"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Equal(got.Size, []int{5, 3}) || !maps.Equal(got.Text, text) {
		t.Errorf("PIL reads size %v, text %q; want [5 3], %q", got.Size, got.Text, text)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestEncodePNGImageAndWriterErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodePNG(&buf, image.NewNRGBA(image.Rect(0, 0, 0, 0)), nil); err == nil || buf.Len() != 0 {
		t.Errorf("EncodePNG of an empty image: %v, %d bytes written; want an error and nothing", err, buf.Len())
	}
	errDisk := errors.New("disk full")
	if err := EncodePNG(failingWriter{errDisk}, gradient(2, 2, 255), map[string]string{"k": "v"}); !errors.Is(err, errDisk) {
		t.Errorf("EncodePNG to a failing writer: %v, want %v", err, errDisk)
	}
}
