package clip

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/internal/refcases"
)

// TestTextModel_HalfWeights loads the fp16 reference text encoder twice,
// keeping its weights in 16 bits (as LoadTextModel does; the token and
// position tables included) and widened to float32, and checks that both
// encode bit for bit alike.
func TestTextModel_HalfWeights(t *testing.T) {
	const pipeline = "tiny-sd15-fp16"
	set := refcases.Open(t, pipeline)
	dir := filepath.Join(refcases.ModelDir(t, pipeline), "text_encoder")
	c, err := LoadTextConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	build := func(s nn.Source) *TextModel {
		w := nn.NewWeights(s)
		m := NewTextModel(w, c)
		if err := w.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	hs, ws := refcases.HalfPair(t, dir, "model")
	half, full := build(hs), build(ws)
	if !half.Embeddings.TokenEmbedding.Weight.IsHalf() || full.Embeddings.TokenEmbedding.Weight.IsHalf() {
		t.Fatal("token embedding: want half when loaded, float32 when widened")
	}
	cs := set.Case(t, "text_encoder/0")
	idsT := set.CaseTensor(t, cs, "inputs", "input_ids")
	ids := make([]int, idsT.Len())
	for i, v := range idsT.Data {
		ids[i] = int(v)
	}
	for _, skip := range []int{0, 1} {
		got, err := half.Forward(ids, idsT.Shape[0], skip)
		if err != nil {
			t.Fatal(err)
		}
		want, err := full.Forward(ids, idsT.Shape[0], skip)
		if err != nil {
			t.Fatal(err)
		}
		refcases.SameBits(t, fmt.Sprintf("clip skip %d", skip), got, want)
	}
}
