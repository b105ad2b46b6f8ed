package vae

import (
	"math"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

func smallVAE(t *testing.T) *AutoencoderKL {
	t.Helper()
	c := DefaultConfig()
	c.BlockOutChannels = []int{32, 32}
	c.DownBlockTypes = []string{"DownEncoderBlock2D", "DownEncoderBlock2D"}
	c.UpBlockTypes = []string{"UpDecoderBlock2D", "UpDecoderBlock2D"}
	m, err := New(nn.NewWeights(nn.NewRandomSource(3)), c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDecodeTiledAssembly checks the tiling, blending and cropping with a
// local decoder (nearest ×2 upsampling): overlapping tiles then hold equal
// values, so any wrong offset, crop or blend weight changes the result.
func TestDecodeTiledAssembly(t *testing.T) {
	z := tensor.New(2, 3, 21, 30)
	for i := range z.Data {
		z.Data[i] = float32(math.Sin(float64(i) * 0.37))
	}
	want := tensor.UpsampleNearest2x(z)
	for _, tile := range []int{4, 8, 12, 16, 64} {
		got := decodeTiled(z, tile, 2, 3, tensor.UpsampleNearest2x)
		if d, at := tensor.MaxAbsDiff(got, want); d > 1e-6 {
			t.Fatalf("tile %d: max diff %g at %d", tile, d, at)
		}
	}
}

func TestDecodeTiledModel(t *testing.T) {
	m := smallVAE(t)
	z := tensor.Full(0.3, 1, 4, 20, 28)
	full := m.Decode(z)
	if got := m.DecodeTiled(z, 32); !tensor.SameShape(got, full) {
		t.Fatalf("shape %v", got.Shape)
	} else if d, _ := tensor.MaxAbsDiff(got, full); d != 0 {
		t.Fatalf("one tile: max diff %g, want 0", d)
	}
	got := m.DecodeTiled(z, 8)
	if !tensor.SameShape(got, full) {
		t.Fatalf("tiled shape %v, want %v", got.Shape, full.Shape)
	}
	for _, v := range got.Data {
		if math.IsNaN(float64(v)) {
			t.Fatal("NaN in tiled decode")
		}
	}
}

func TestBlend(t *testing.T) {
	a := tensor.Full(1, 1, 1, 4, 4)
	b := tensor.Full(0, 1, 1, 4, 4)
	blendV(a, b, 2)
	// rows 0 and 1 of b fade from a: weights 1 and 0.5.
	if b.Data[0] != 1 || b.Data[4] != 0.5 || b.Data[8] != 0 {
		t.Fatalf("blendV rows %v", b.Data)
	}
	c := tensor.Full(0, 1, 1, 2, 4)
	blendH(tensor.Full(2, 1, 1, 2, 4), c, 4)
	if c.Data[0] != 2 || c.Data[1] != 1.5 || c.Data[3] != 0.5 {
		t.Fatalf("blendH %v", c.Data[:4])
	}
}
