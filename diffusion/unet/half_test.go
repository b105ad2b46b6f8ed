package unet

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// TestUNetHalfWeights loads the fp16 reference UNet twice, keeping its
// weights in 16 bits (as Load does) and widened to float32, and checks that
// both give bit for bit the same noise prediction.
func TestUNetHalfWeights(t *testing.T) {
	const pipeline = "tiny-sd15-fp16"
	set := refcases.Open(t, pipeline)
	dir := filepath.Join(refcases.ModelDir(t, pipeline), "unet")
	c, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	build := func(widen bool) *UNet2DConditionModel {
		src, err := nn.OpenComponent(dir, "diffusion_pytorch_model")
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		var s nn.Source = src
		if widen {
			s = nn.Float32Source(src)
		}
		u, err := New(nn.NewWeights(s), c)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	half, full := build(false), build(true)
	if !half.ConvIn.Weight.IsHalf() || half.ConvIn.Bias.IsHalf() || full.ConvIn.Weight.IsHalf() {
		t.Fatalf("conv_in weight half %v bias half %v; widened weight half %v",
			half.ConvIn.Weight.IsHalf(), half.ConvIn.Bias.IsHalf(), full.ConvIn.Weight.IsHalf())
	}
	for _, cs := range set.ByKind("unet") {
		sample := set.CaseTensor(t, cs, "inputs", "sample")
		ehs := set.CaseTensor(t, cs, "inputs", "encoder_hidden_states")
		ts := set.CaseTensor(t, cs, "inputs", "timestep")
		got, want := half.Forward(sample, ts.Data, ehs), full.Forward(sample, ts.Data, ehs)
		for i := range want.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
				t.Fatalf("%s: noise_pred[%d] = %v with fp16 weights, %v widened", cs.ID, i, got.Data[i], want.Data[i])
			}
		}
		ref := set.CaseTensor(t, cs, "outputs", "noise_pred")
		d, _ := tensor.MaxAbsDiff(got, ref)
		t.Logf("%s: identical; max abs diff to the reference %.3g", cs.ID, d)
	}
}
