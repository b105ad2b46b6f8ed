package imageio

// EXIF orientation of JPEG files, read from the APP1 "Exif" segment
// (Exif 2.32 §4.5.4 and §4.6.4 TIFF Rev. 6.0 tag 0x0112) and applied the
// way PIL's ImageOps.exif_transpose does, which diffusers' load_image
// calls.

import (
	"bytes"
	"encoding/binary"
	"image"
)

// exifOrientation returns the orientation (1–8) of the JPEG whose leading
// bytes are b, or 1 if b holds no Exif segment before the first scan or
// the segment is malformed or holds no valid orientation. It looks only
// inside b and reads at most 65535 IFD entries.
func exifOrientation(b []byte) int {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	i := 2
	for i+2 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte before a marker
			i++
			continue
		}
		i += 2
		switch {
		case marker == 0xD8, marker == 0x01, marker >= 0xD0 && marker <= 0xD7:
			continue // SOI, TEM, RSTn: no length field
		case marker == 0xDA, marker == 0xD9:
			return 1 // start of scan or end of image: no metadata after this
		}
		if i+2 > len(b) {
			return 1
		}
		n := int(b[i])<<8 | int(b[i+1]) // segment length, counting itself
		if n < 2 || i+n > len(b) {
			return 1
		}
		seg := b[i+2 : i+n]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		i += n
	}
	return 1
}

// tiffOrientation returns the Orientation tag of IFD0 of the TIFF
// structure t, or 1.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := uint64(bo.Uint32(t[4:8]))
	if off < 8 || off+2 > uint64(len(t)) {
		return 1
	}
	count := int(bo.Uint16(t[off:]))
	p := int(off) + 2
	for k := 0; k < count && p+12 <= len(t); k, p = k+1, p+12 {
		e := t[p : p+12]
		if bo.Uint16(e[0:]) != 0x0112 {
			continue
		}
		if bo.Uint32(e[4:]) != 1 { // value count
			return 1
		}
		var v uint32
		switch bo.Uint16(e[2:]) { // value type
		case 3: // SHORT, the type the standard gives
			v = uint32(bo.Uint16(e[8:]))
		case 4: // LONG, written by some tools
			v = bo.Uint32(e[8:])
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}

// orient returns src (whose bounds start at 0,0) transformed for display
// per EXIF orientation o: 2 mirror left-right, 3 rotate 180°, 4 mirror
// top-bottom, 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate
// 90° counter-clockwise (PIL's FLIP_LEFT_RIGHT, ROTATE_180,
// FLIP_TOP_BOTTOM, TRANSPOSE, ROTATE_270, TRANSVERSE, ROTATE_90). Any
// other o returns src.
func orient(src *image.NRGBA, o int) *image.NRGBA {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	// at maps a destination pixel to its source pixel.
	var at func(x, y int) (int, int)
	dw, dh := w, h
	switch o {
	case 2:
		at = func(x, y int) (int, int) { return w - 1 - x, y }
	case 3:
		at = func(x, y int) (int, int) { return w - 1 - x, h - 1 - y }
	case 4:
		at = func(x, y int) (int, int) { return x, h - 1 - y }
	case 5:
		at = func(x, y int) (int, int) { return y, x }
	case 6:
		at = func(x, y int) (int, int) { return y, h - 1 - x }
	case 7:
		at = func(x, y int) (int, int) { return w - 1 - y, h - 1 - x }
	case 8:
		at = func(x, y int) (int, int) { return w - 1 - y, x }
	default:
		return src
	}
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			sx, sy := at(x, y)
			copy(dst.Pix[dst.PixOffset(x, y):][:4], src.Pix[src.PixOffset(sx, sy):][:4])
		}
	}
	return dst
}
