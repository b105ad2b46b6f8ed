package vae

import (
	"fmt"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// TileOverlap is the fraction of a tile shared with its neighbour in
// DecodeTiled (diffusers' tile_overlap_factor).
const TileOverlap = 0.25

// DecodeTiled decodes z [N, latent_channels, h, w] like Decode, but in
// overlapping tiles of tile×tile latents whose outputs are blended linearly
// across the overlap, so memory stays bounded by one tile whatever the
// image size. It follows diffusers' AutoencoderKL.tiled_decode
// (autoencoder_kl.py, v0.27.2): tiles start every tile·(1−TileOverlap)
// latents, each output tile is blended with the one above and the one to
// its left over tile·f·TileOverlap pixels, then cropped to
// tile·f·(1−TileOverlap). Results differ slightly from Decode near tile
// seams (the decoder's receptive field crosses them); where one tile covers
// z, DecodeTiled is Decode. Returns [N, out_channels, h·f, w·f].
func (m *AutoencoderKL) DecodeTiled(z *tensor.Tensor, tile int) *tensor.Tensor {
	if z.Dims() != 4 || z.Shape[1] != m.Config.LatentChannels || tile < 4 {
		panic(fmt.Sprintf("vae: DecodeTiled of %v with tile %d", z.Shape, tile))
	}
	return decodeTiled(z, tile, m.Config.ScaleFactor(), m.Config.OutChannels, m.Decode)
}

// decodeTiled is DecodeTiled over any decode function mapping latents
// [N, C, h, w] to images [N, outChannels, h·f, w·f].
func decodeTiled(z *tensor.Tensor, tile, f, outChannels int, decode func(*tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
	n, h, w := z.Shape[0], z.Shape[2], z.Shape[3]
	if h <= tile && w <= tile {
		return decode(z)
	}
	stride := int(float64(tile) * (1 - TileOverlap))
	blend := int(float64(tile*f) * TileOverlap)
	limit := tile*f - blend
	var rows [][]*tensor.Tensor
	for i := 0; i < h; i += stride {
		var row []*tensor.Tensor
		for j := 0; j < w; j += stride {
			row = append(row, decode(crop(z, i, j, min(tile, h-i), min(tile, w-j))))
		}
		rows = append(rows, row)
	}
	out := tensor.New(n, outChannels, h*f, w*f)
	for i, row := range rows {
		for j, t := range row {
			if i > 0 {
				blendV(rows[i-1][j], t, blend)
			}
			if j > 0 {
				blendH(row[j-1], t, blend)
			}
			paste(out, t, i*stride*f, j*stride*f, min(limit, t.Shape[2]), min(limit, t.Shape[3]))
		}
	}
	return out
}

// crop returns z[:, :, y:y+h, x:x+w] as a new tensor.
func crop(z *tensor.Tensor, y, x, h, w int) *tensor.Tensor {
	n, c, zh, zw := z.Shape[0], z.Shape[1], z.Shape[2], z.Shape[3]
	out := tensor.New(n, c, h, w)
	for p := 0; p < n*c; p++ {
		for r := 0; r < h; r++ {
			src := z.Data[(p*zh+y+r)*zw+x:]
			copy(out.Data[(p*h+r)*w:(p*h+r+1)*w], src[:w])
		}
	}
	return out
}

// paste copies the top-left h×w of t into out at (y, x), clipped to out.
func paste(out, t *tensor.Tensor, y, x, h, w int) {
	np, oh, ow := out.Shape[0]*out.Shape[1], out.Shape[2], out.Shape[3]
	th, tw := t.Shape[2], t.Shape[3]
	h, w = min(h, oh-y), min(w, ow-x)
	for p := 0; p < np; p++ {
		for r := 0; r < h; r++ {
			copy(out.Data[(p*oh+y+r)*ow+x:(p*oh+y+r)*ow+x+w], t.Data[(p*th+r)*tw:(p*th+r)*tw+w])
		}
	}
}

// blendV fades the bottom rows of a into the top rows of b, in place:
// b[y] = a[H_a−e+y]·(1−y/e) + b[y]·y/e for y < e (diffusers' blend_v).
func blendV(a, b *tensor.Tensor, e int) {
	ah, aw := a.Shape[2], a.Shape[3]
	bh, bw := b.Shape[2], b.Shape[3]
	e = min(e, ah, bh)
	w := min(aw, bw)
	for p := 0; p < b.Shape[0]*b.Shape[1]; p++ {
		for y := 0; y < e; y++ {
			t := float32(y) / float32(e)
			ar := a.Data[(p*ah+ah-e+y)*aw:]
			br := b.Data[(p*bh+y)*bw:]
			for x := 0; x < w; x++ {
				br[x] = ar[x]*(1-t) + br[x]*t
			}
		}
	}
}

// blendH fades the right columns of a into the left columns of b, in place
// (diffusers' blend_h).
func blendH(a, b *tensor.Tensor, e int) {
	ah, aw := a.Shape[2], a.Shape[3]
	bh, bw := b.Shape[2], b.Shape[3]
	e = min(e, aw, bw)
	h := min(ah, bh)
	for p := 0; p < b.Shape[0]*b.Shape[1]; p++ {
		for y := 0; y < h; y++ {
			ar := a.Data[(p*ah+y)*aw:]
			br := b.Data[(p*bh+y)*bw:]
			for x := 0; x < e; x++ {
				t := float32(x) / float32(e)
				br[x] = ar[aw-e+x]*(1-t) + br[x]*t
			}
		}
	}
}
