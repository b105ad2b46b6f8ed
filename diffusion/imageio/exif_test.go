package imageio

import (
	"bytes"
	"encoding/binary"
	"image"
	"testing"
)

var byteOrders = []byteOrder{binary.LittleEndian, binary.BigEndian}

// grid returns a gray image of 8×8 blocks, block (i, j) having level
// 50·g[j][i]; blocks of 8 (one JPEG block) survive quality-100 JPEG
// nearly unchanged.
func grid(g [][]uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, 8*len(g[0]), 8*len(g)))
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			img.Pix[img.PixOffset(x, y)] = 50 * g[y/8][x/8]
		}
	}
	return img
}

// checkGrid checks that img is the block grid g (block centres within 4
// levels).
func checkGrid(t testing.TB, img image.Image, g [][]uint8) {
	t.Helper()
	if want := image.Pt(8*len(g[0]), 8*len(g)); img.Bounds().Size() != want {
		t.Fatalf("size %v, want %v", img.Bounds().Size(), want)
	}
	rgb := toRGB(img)
	for j, row := range g {
		for i, v := range row {
			got := rgb.NRGBAAt(8*i+4, 8*j+4).R
			if d := int(got) - 50*int(v); d < -4 || d > 4 {
				t.Fatalf("block (%d,%d) has level %d, want %d", i, j, got, 50*int(v))
			}
		}
	}
}

// segment returns a JPEG marker segment with payload.
func segment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker}
	s = binary.BigEndian.AppendUint16(s, uint16(len(payload)+2))
	return append(s, payload...)
}

// tiffBytes returns a raw TIFF structure: header with the given IFD0
// offset, then rest.
func tiffBytes(bo byteOrder, ifdOffset uint32, rest []byte) []byte {
	b := []byte("II*\x00")
	if bo == binary.BigEndian {
		b = []byte("MM\x00*")
	}
	b = bo.AppendUint32(b, ifdOffset)
	return append(b, rest...)
}

func TestExifOrientation(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	soi := []byte{0xFF, 0xD8}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ifd := func(bo byteOrder, count uint16, entries ...[]byte) []byte {
		b := bo.AppendUint16(nil, count)
		return append(b, bytes.Join(entries, nil)...)
	}
	exif := func(tiff []byte) []byte { return segment(0xE1, append([]byte("Exif\x00\x00"), tiff...)) }
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"le/6", cat(soi, exifAPP1(le, orientationEntry(le, 6))), 6},
		{"be/8", cat(soi, exifAPP1(be, orientationEntry(be, 8))), 8},
		{"long_type", cat(soi, exifAPP1(le, ifdEntry(le, 0x0112, 4, 1, 3))), 3},
		{"after_other_tags", cat(soi, exifAPP1(be, ifdEntry(be, 0x010F, 3, 1, 7), orientationEntry(be, 5))), 5},
		{"after_app0_xmp_and_fill", cat(soi, segment(0xE0, []byte("JFIF\x00\x01\x02")),
			segment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x/>")), []byte{0xFF, 0xFF}, exifAPP1(le, orientationEntry(le, 7))), 7},
		{"after_standalone_markers", cat(soi, []byte{0xFF, 0x01, 0xFF, 0xD0}, exifAPP1(le, orientationEntry(le, 2))), 2},
		{"first_exif_wins", cat(soi, exifAPP1(le, orientationEntry(le, 3)), exifAPP1(le, orientationEntry(le, 6))), 3},

		{"empty", nil, 1},
		{"not_jpeg", cat([]byte("\x89PNG"), exifAPP1(le, orientationEntry(le, 6))), 1},
		{"soi_only", soi, 1},
		{"no_exif", encodeJPEG(t, image.NewGray(image.Rect(0, 0, 8, 8))), 1},
		{"after_sos", cat(soi, segment(0xDA, []byte{1, 2, 3}), exifAPP1(le, orientationEntry(le, 6))), 1},
		{"after_eoi", cat(soi, []byte{0xFF, 0xD9}, exifAPP1(le, orientationEntry(le, 6))), 1},
		{"garbage_instead_of_marker", cat(soi, []byte{0x00, 0xE1}, exifAPP1(le, orientationEntry(le, 6))), 1},
		{"truncated_segment", cat(soi, exifAPP1(le, orientationEntry(le, 6)))[:20], 1},
		{"truncated_length", cat(soi, []byte{0xFF, 0xE1, 0x00}), 1},
		{"length_below_2", cat(soi, []byte{0xFF, 0xE1, 0x00, 0x01}, []byte("Exif\x00\x00")), 1},
		{"exif_without_tiff", cat(soi, exif(nil)), 1},
		{"bad_tiff_magic", cat(soi, exif([]byte("XX*\x00\x08\x00\x00\x00\x00\x00"))), 1},
		{"ifd_offset_past_end", cat(soi, exif(tiffBytes(le, 1000, ifd(le, 1, orientationEntry(le, 6))))), 1},
		{"ifd_offset_huge", cat(soi, exif(tiffBytes(be, 0xFFFFFFFF, ifd(be, 1, orientationEntry(be, 6))))), 1},
		{"ifd_offset_in_header", cat(soi, exif(tiffBytes(le, 4, ifd(le, 1, orientationEntry(le, 6))))), 1},
		{"count_past_data", cat(soi, exif(tiffBytes(le, 8, ifd(le, 0xFFFF)))), 1},
		{"entry_truncated", cat(soi, exif(tiffBytes(le, 8, ifd(le, 1, orientationEntry(le, 6)[:11])))), 1},
		{"zero_entries", cat(soi, exif(tiffBytes(le, 8, ifd(le, 0, orientationEntry(le, 6))))), 1},
		{"ascii_type", cat(soi, exifAPP1(le, ifdEntry(le, 0x0112, 2, 1, 6))), 1},
		{"count_2", cat(soi, exifAPP1(le, ifdEntry(le, 0x0112, 3, 2, 6))), 1},
		{"value_0", cat(soi, exifAPP1(le, orientationEntry(le, 0))), 1},
		{"value_9", cat(soi, exifAPP1(be, orientationEntry(be, 9))), 1},
		{"long_value_huge", cat(soi, exifAPP1(le, ifdEntry(le, 0x0112, 4, 1, 0x10006))), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exifOrientation(tt.data); got != tt.want {
				t.Errorf("exifOrientation = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestDecodePILExif reads testdata/images/exif_orientation6.jpg, written
// by Pillow with Image.Exif() (see the README there): the grid stored
// rotated with orientation 6 displays upright.
func TestDecodePILExif(t *testing.T) {
	img, format, err := Decode(bytes.NewReader(readFixture(t, "exif_orientation6.jpg")), 0)
	if err != nil || format != "jpeg" {
		t.Fatalf("Decode: %q, %v", format, err)
	}
	checkGrid(t, img, [][]uint8{{0, 1, 2}, {3, 4, 5}})
}
