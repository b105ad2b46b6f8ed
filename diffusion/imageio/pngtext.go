package imageio

// PNG text chunks (PNG specification, third edition, §11.3.3: tEXt, zTXt,
// iTXt), the way generation parameters travel with an image (AUTOMATIC1111
// writes a "parameters" tEXt/iTXt chunk; PIL's PngInfo.add_text chooses
// tEXt for Latin-1 text and iTXt otherwise, as EncodePNG does).

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

const (
	pngSignature = "\x89PNG\r\n\x1a\n"
	// maxTextChunk: ReadPNGText skips text chunks longer than this, and
	// compressed ones that inflate to more.
	maxTextChunk = 16 << 20
	// maxTotalText bounds the text ReadPNGText returns in all.
	maxTotalText = 64 << 20
)

// EncodePNG writes img as a PNG (image/png, default compression) with one
// text chunk per entry of text, inserted right after IHDR in sorted key
// order: tEXt when key and value are Latin-1 representable (written
// Latin-1 encoded), else an uncompressed iTXt (UTF-8, empty language tag
// and translated keyword). Keys must be 1–79 Latin-1 characters other than
// NUL, and values valid UTF-8; otherwise EncodePNG writes nothing and
// returns an error.
func EncodePNG(w io.Writer, img image.Image, text map[string]string) error {
	var chunks bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(text)) {
		c, err := textChunk(k, text[k])
		if err != nil {
			return err
		}
		chunks.Write(c)
	}

	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("imageio: encoding png: %w", err)
	}
	b := buf.Bytes()
	// image/png writes the signature, then IHDR (13 data bytes): 8 + 4 +
	// 4 + 13 + 4.
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	if len(b) < ihdrEnd || string(b[12:16]) != "IHDR" {
		return errors.New("imageio: image/png output does not start with IHDR")
	}
	for _, part := range [][]byte{b[:ihdrEnd], chunks.Bytes(), b[ihdrEnd:]} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}

// textChunk returns the complete tEXt or iTXt chunk for key and value.
func textChunk(key, value string) ([]byte, error) {
	k, ok := latin1(key)
	switch {
	case !ok:
		return nil, fmt.Errorf("imageio: png text key %q is not Latin-1", key)
	case len(k) < 1 || len(k) > 79:
		return nil, fmt.Errorf("imageio: png text key %q is %d bytes in Latin-1, want 1 to 79", key, len(k))
	case bytes.IndexByte(k, 0) >= 0:
		return nil, fmt.Errorf("imageio: png text key %q contains NUL", key)
	case !utf8.ValidString(value):
		return nil, fmt.Errorf("imageio: png text value for key %q is not valid UTF-8", key)
	}
	data := append(k, 0)
	typ := "tEXt"
	if v, ok := latin1(value); ok {
		data = append(data, v...)
	} else {
		typ = "iTXt"
		// compression flag 0, method 0, empty language tag, empty
		// translated keyword, then the UTF-8 text.
		data = append(data, 0, 0, 0, 0)
		data = append(data, value...)
	}
	if uint64(len(data)) > 1<<31-1 {
		return nil, fmt.Errorf("imageio: png text value for key %q is too long (%d bytes)", key, len(value))
	}
	return chunk(typ, data), nil
}

// chunk returns length, type, data and CRC (over type and data).
func chunk(typ string, data []byte) []byte {
	c := make([]byte, 0, 12+len(data))
	c = binary.BigEndian.AppendUint32(c, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// latin1 encodes s (UTF-8) as Latin-1; ok is false if s has a rune above
// U+00FF or invalid UTF-8.
func latin1(s string) (b []byte, ok bool) {
	b = make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF { // also utf8.RuneError, for invalid UTF-8
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

// fromLatin1 decodes Latin-1 bytes to a UTF-8 string.
func fromLatin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// ReadPNGText returns the text chunks (tEXt, zTXt, iTXt, compressed or
// not) of the PNG read from r, keyed by keyword; a later chunk with the
// same keyword wins. Latin-1 keys and tEXt/zTXt values are returned as
// UTF-8. It reads up to IEND, checks the CRC of every text chunk, skips
// text chunks over 16 MiB (or inflating to more) and malformed ones
// (missing separator, unknown compression method, invalid zlib or UTF-8
// data) without failing, and never panics.
//
// Errors: not a PNG is ErrUnsupportedFormat; a bad CRC, an impossible
// chunk length or data ending before IEND is ErrCorrupt; more than 64 MiB
// of text in all is ErrTooLarge; a failure of r is returned wrapped.
func ReadPNGText(r io.Reader) (map[string]string, error) {
	er := &errReader{r: r}
	br := bufio.NewReader(er)
	fail := func(err error) (map[string]string, error) {
		if er.err != nil {
			return nil, fmt.Errorf("imageio: reading png: %w", er.err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: png data ends before IEND (truncated file)", ErrCorrupt)
		}
		return nil, err
	}

	sig := make([]byte, len(pngSignature))
	if _, err := io.ReadFull(br, sig); err != nil || string(sig) != pngSignature {
		if er.err != nil {
			return fail(err)
		}
		return nil, fmt.Errorf("%w: not a PNG file (no PNG signature)", ErrUnsupportedFormat)
	}
	text := make(map[string]string)
	total := 0
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return fail(err)
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		typ := string(hdr[4:8])
		if n > 1<<31-1 {
			return fail(fmt.Errorf("%w: png chunk %q claims %d bytes, more than PNG allows", ErrCorrupt, typ, n))
		}
		if typ == "IEND" {
			return text, nil
		}
		isText := typ == "tEXt" || typ == "zTXt" || typ == "iTXt"
		if !isText || n > maxTextChunk {
			// Skip data and CRC unread.
			if _, err := io.CopyN(io.Discard, br, int64(n)+4); err != nil {
				return fail(err)
			}
			continue
		}
		// Read through LimitReader so that memory grows with the data
		// actually present, not with what a truncated file claims.
		data, err := io.ReadAll(io.LimitReader(br, int64(n)+4))
		if err != nil {
			return fail(err)
		}
		if len(data) < int(n)+4 {
			return fail(io.ErrUnexpectedEOF)
		}
		crc := crc32.Update(crc32.ChecksumIEEE(hdr[4:8]), crc32.IEEETable, data[:n])
		if got := binary.BigEndian.Uint32(data[n:]); got != crc {
			return fail(fmt.Errorf("%w: png %s chunk has CRC %08x, want %08x", ErrCorrupt, typ, got, crc))
		}
		k, v, ok := parseText(typ, data[:n])
		if !ok {
			continue
		}
		total += len(k) + len(v)
		if total > maxTotalText {
			return nil, fmt.Errorf("%w: png text chunks hold more than %d bytes", ErrTooLarge, maxTotalText)
		}
		text[k] = v
	}
}

// parseText decodes the data of a tEXt, zTXt or iTXt chunk; ok is false
// if it is malformed.
func parseText(typ string, data []byte) (key, value string, ok bool) {
	k, rest, found := bytes.Cut(data, []byte{0})
	if !found || len(k) == 0 {
		return "", "", false
	}
	key = fromLatin1(k)
	switch typ {
	case "tEXt":
		return key, fromLatin1(rest), true
	case "zTXt":
		if len(rest) < 1 || rest[0] != 0 { // compression method 0: zlib
			return "", "", false
		}
		v, ok := inflate(rest[1:])
		return key, fromLatin1(v), ok
	case "iTXt":
		if len(rest) < 2 {
			return "", "", false
		}
		compressed, method := rest[0], rest[1]
		_, rest, found = bytes.Cut(rest[2:], []byte{0}) // language tag
		if !found {
			return "", "", false
		}
		_, rest, found = bytes.Cut(rest, []byte{0}) // translated keyword
		if !found {
			return "", "", false
		}
		switch {
		case compressed == 0:
		case compressed == 1 && method == 0:
			if rest, ok = inflate(rest); !ok {
				return "", "", false
			}
		default:
			return "", "", false
		}
		if !utf8.Valid(rest) {
			return "", "", false
		}
		return key, string(rest), true
	}
	return "", "", false
}

// inflate decompresses zlib data of at most maxTextChunk bytes.
func inflate(b []byte) ([]byte, bool) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxTextChunk+1))
	if err != nil || len(out) > maxTextChunk {
		return nil, false
	}
	return out, true
}
