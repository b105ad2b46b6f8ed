// Package imageio moves images in and out of the engine: decoding uploads
// safely, turning them into the VAE's input tensor, turning decoder output
// back into 8-bit pixels, and writing PNGs that carry the generation
// parameters as text chunks.
//
// Data flow (diffusers' VaeImageProcessor semantics, diffusers 0.27):
//
//	upload bytes ──Decode──▶ image.Image (EXIF-oriented, size-checked)
//	             ──PrepareInit / ToTensor──▶ image [1, 3, H, W] in [-1, 1] (pixels/255*2-1)
//	decoder output [N, 3, H, W] ──FromTensor──▶ N × *image.NRGBA (round-half-even of clamp(x/2+0.5)*255)
//	*image.NRGBA + parameters ──EncodePNG──▶ PNG with tEXt/iTXt chunks ──ReadPNGText──▶ parameters
//
// Errors from the outside world (bytes that are not an image, too large,
// truncated) are returned and match ErrUnsupportedFormat, ErrTooLarge,
// ErrCorrupt or ErrTooSmall with errors.Is; nothing here panics on input
// data. Programmer errors (a tensor of the wrong shape, a non-positive
// size) panic with an "imageio: " prefixed message.
package imageio
