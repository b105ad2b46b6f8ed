package imageio

// Reference tests against ../shared/refs (diffusers 0.27.2, see its
// README): the init image as VaeImageProcessor.preprocess normalises it,
// and decoder output as postprocess turns it into 8-bit pixels. Skipped
// when the reference data is absent.
//
// Provenance (the reference generator, paraphrased):
//
//	image = PIL.Image.open("images/init_image.png")
//	vae/encode0/image = image_processor.preprocess(image)          # [1,3,H,W]
//	vae_decoder_output = vae.decode(final_latents / scaling_factor).sample
//	image_uint8 = round(255 * image_processor.postprocess(vae_decoder_output, "np"))  # NHWC
//	pngs = image_processor.postprocess(..., "pil")[i].save(...)

import (
	"fmt"
	"image"
	"os"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// refPipelines are the reference case sets. tiny-sd15-fp16 denormalises
// its float16 decoder output in float16, yet FromTensor of the float32
// copy it stores gives the same bytes (checked below).
var refPipelines = []string{"tiny-sd15", "tiny-sd2v", "tiny-sd15-fp16"}

// TestToTensorReference: Decode + ToTensor of the init image equals
// diffusers' preprocess output bit for bit, directly and through
// PrepareInit, for vae/encode0 and every img2img case.
func TestToTensorReference(t *testing.T) {
	for _, pipeline := range refPipelines {
		t.Run(pipeline, func(t *testing.T) {
			s := refcases.Open(t, pipeline)
			cases := append([]refcases.Case{s.Case(t, "vae/encode0")}, s.ByKind("img2img")...)
			for _, c := range cases {
				key := "image"
				if c.Kind == "img2img" {
					key = "image_preprocessed"
				}
				want := s.CaseTensor(t, c, "inputs", key)
				img := decodeFile(t, s.Path(c.String(t, "inputs", "image_png")))
				got := ToTensor(img, want.Shape[3], want.Shape[2])
				if d := refcases.Close(t, c.ID+" ToTensor", got, want, 0); d == 0 {
					t.Logf("%s: ToTensor of %dx%d image: max abs diff 0", c.ID, want.Shape[3], want.Shape[2])
				}
				init, w, h, err := PrepareInit(img, 8)
				if err != nil {
					t.Fatal(err)
				}
				if w != want.Shape[3] || h != want.Shape[2] {
					t.Errorf("%s: PrepareInit size %dx%d, want %dx%d", c.ID, w, h, want.Shape[3], want.Shape[2])
				}
				refcases.Close(t, c.ID+" PrepareInit", init, want, 0)
			}
		})
	}
}

// TestFromTensorReference: FromTensor of vae_decoder_output (stored for
// the first txt2img and the first img2img case) equals image_uint8
// exactly, and so does Decode of every stored PNG.
func TestFromTensorReference(t *testing.T) {
	for _, pipeline := range refPipelines {
		t.Run(pipeline, func(t *testing.T) {
			s := refcases.Open(t, pipeline)
			checked, kinds := 0, 0
			for _, kind := range []string{"txt2img", "img2img"} {
				if len(s.ByKind(kind)) > 0 {
					kinds++
				}
			}
			for _, c := range append(s.ByKind("txt2img"), s.ByKind("img2img")...) {
				want := s.CaseTensor(t, c, "outputs", "image_uint8") // NHWC, as float32
				if c.Has("outputs", "vae_decoder_output") {
					x := s.CaseTensor(t, c, "outputs", "vae_decoder_output")
					compareUint8(t, c.ID+" ToUint8NHWC", ToUint8NHWC(x), want)
					var pix []uint8
					for _, img := range FromTensor(x) {
						rgb := toRGB(img)
						for i := 0; i < len(rgb.Pix); i += 4 {
							pix = append(pix, rgb.Pix[i:i+3]...)
						}
					}
					compareUint8(t, c.ID+" FromTensor", pix, want)
					checked++
				}
				for b, name := range c.Strings(t, "outputs", "pngs") {
					rgb := toRGB(decodeFile(t, s.Path(name)))
					per := len(want.Data) / want.Shape[0]
					var pix []uint8
					for i := 0; i < len(rgb.Pix); i += 4 {
						pix = append(pix, rgb.Pix[i:i+3]...)
					}
					compareUint8(t, fmt.Sprintf("%s png %d", c.ID, b), pix, tensor.FromData(want.Data[b*per:(b+1)*per], want.Shape[1:]...))
				}
			}
			if checked != kinds {
				t.Errorf("checked vae_decoder_output of %d cases, want %d (the first of each kind)", checked, kinds)
			}
		})
	}
}

// decodeFile decodes the PNG at path.
func decodeFile(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, format, err := Decode(f, 0)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if format != "png" {
		t.Fatalf("%s: format %q", path, format)
	}
	return img
}

// compareUint8 fails unless got equals want (integers held as float32).
func compareUint8(t testing.TB, name string, got []uint8, want *tensor.Tensor) {
	t.Helper()
	if len(got) != len(want.Data) {
		t.Errorf("%s: %d values, want %d (shape %v)", name, len(got), len(want.Data), want.Shape)
		return
	}
	bad, first := 0, -1
	for i, w := range want.Data {
		if float32(got[i]) != w {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ; first at %v of %v: got %d, want %v",
			name, bad, len(got), refcases.Unravel(first, want.Shape), want.Shape, got[first], want.Data[first])
	}
}
