package train

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/train/shapes"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
)

// Test-sized architectures: the same classes as pigment-tiny, a few
// thousand parameters.
func testVAEConfig() vae.Config {
	c := TinyVAEConfig()
	c.BlockOutChannels = []int{8, 8}
	c.DownBlockTypes = c.DownBlockTypes[:2]
	c.UpBlockTypes = c.UpBlockTypes[:2]
	c.NormNumGroups = 4
	c.SampleSize = 16
	return c
}

func testUNetConfig() unet.Config {
	c := TinyUNetConfig()
	c.SampleSize = 8
	c.BlockOutChannels = []int{8, 16}
	c.DownBlockTypes = []string{"CrossAttnDownBlock2D", "DownBlock2D"}
	c.UpBlockTypes = []string{"UpBlock2D", "CrossAttnUpBlock2D"}
	c.NormNumGroups = 4
	c.AttentionHeadDim = unet.IntList{2}
	c.CrossAttentionDim = unet.IntList{16}
	return c
}

func testText(t *testing.T, seed uint64) (*clip.Tokenizer, *Vocab, *clip.TextModel, Params) {
	t.Helper()
	vocab, err := WordVocab(Shapes{}.Words())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := clip.NewTokenizer(vocab.Tokens, vocab.Merges, "")
	if err != nil {
		t.Fatal(err)
	}
	tok.MaxLength = 16
	c := TinyTextConfig(len(vocab.Tokens), tok.BOS, tok.EOS)
	c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.MaxPositionEmbeddings = 16, 32, 1, 2, 16
	rec := NewRecorder(nn.NewRandomSource(seed))
	w := nn.NewWeights(rec)
	m := clip.NewTextModel(w, c)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	return tok, vocab, m, rec.Params()
}

func testVAE(t *testing.T, seed uint64) (*vae.AutoencoderKL, Params) {
	t.Helper()
	rec := NewRecorder(nn.NewRandomSource(seed))
	m, err := vae.New(nn.NewWeights(rec), testVAEConfig())
	if err != nil {
		t.Fatal(err)
	}
	return m, rec.Params()
}

func testUNet(t *testing.T, seed uint64) (*unet.UNet2DConditionModel, Params) {
	t.Helper()
	rec := NewRecorder(nn.NewRandomSource(seed))
	m, err := unet.New(nn.NewWeights(rec), testUNetConfig())
	if err != nil {
		t.Fatal(err)
	}
	return m, rec.Params()
}

func TestWordVocabSingleTokens(t *testing.T) {
	words := Shapes{}.Words()
	v, err := WordVocab(words)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := v.Write(dir, TinyMaxLength); err != nil {
		t.Fatal(err)
	}
	tok, err := clip.LoadTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.MaxLength != TinyMaxLength {
		t.Fatalf("model_max_length %d, want %d", tok.MaxLength, TinyMaxLength)
	}
	for _, w := range words {
		if got := tok.Tokenize(w); len(got) != 1 || got[0] != w+"</w>" {
			t.Errorf("%q tokenizes to %q", w, got)
		}
	}
	caption := shapes.CanonicalCaption(shapes.Object{Shape: "star", Colour: "red", Size: "small", Position: "top left"}, "blue")
	if got := tok.Tokenize(caption); len(got) != 11 {
		t.Errorf("%q: %d tokens %q, want one per word and comma (11)", caption, len(got), got)
	}
	if got := tok.Tokenize("zebra"); len(got) < 2 {
		t.Errorf("unknown word should fall back to letters, got %q", got)
	}
	back, err := readVocab(dir)
	if err != nil || !slices.Equal(back.Merges, v.Merges) || len(back.Tokens) != len(v.Tokens) {
		t.Fatalf("vocab round trip: %v", err)
	}
}

func TestAdamWStep(t *testing.T) {
	// One parameter, gradient 2 at each step: after bias correction the
	// first update is exactly lr·sign(g) (ε aside), minus the decay.
	p := Params{Names: []string{"w"}, Tensors: []*tensor.Tensor{tensor.FromData([]float32{1, -1, 0.5, 3}, 2, 2)}}
	o := NewAdamW(p, 0.1)
	tp := tensor.NewTape()
	p.Watch(tp)
	tp.Backward(tensor.Sum(tensor.Scale(p.Tensors[0].Clone(), 2)), nil)
	o.Update(p, 0.01)
	want := []float64{1*(1-0.001) - 0.01, -1*(1-0.001) - 0.01, 0.5*(1-0.001) - 0.01, 3*(1-0.001) - 0.01}
	for i, w := range want {
		if math.Abs(float64(p.Tensors[0].Data[i])-w) > 1e-6 {
			t.Fatalf("θ[%d] = %v, want %v", i, p.Tensors[0].Data[i], w)
		}
	}
}

func TestEMAWarmup(t *testing.T) {
	p := Params{Names: []string{"w"}, Tensors: []*tensor.Tensor{tensor.FromData([]float32{0}, 1)}}
	e := NewEMA(p, 0.999)
	p.Tensors[0].Data[0] = 10
	e.Update(p) // d = min(0.999, 1/10) = 0.1
	if got := e.Shadow[0][0]; math.Abs(float64(got)-9) > 1e-6 {
		t.Fatalf("shadow %v after the first update, want 9", got)
	}
}

func TestClipGradNorm(t *testing.T) {
	p := Params{Names: []string{"a"}, Tensors: []*tensor.Tensor{tensor.FromData([]float32{0, 0}, 2)}}
	tp := tensor.NewTape()
	p.Watch(tp)
	tp.Backward(p.Tensors[0].Clone(), []float32{3, 4})
	if n := ClipGradNorm(p, 1); math.Abs(n-5) > 1e-6 {
		t.Fatalf("norm %v, want 5", n)
	}
	if g := p.Tensors[0].Grad().Data; math.Abs(float64(g[0])-0.6) > 1e-5 || math.Abs(float64(g[1])-0.8) > 1e-5 {
		t.Fatalf("clipped gradient %v", g)
	}
}

// TestTrackedForwardMatchesInference runs each model with and without a
// tape: recording must not change a single output bit.
func TestTrackedForwardMatchesInference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tok, _, text, textP := testText(t, 1)
	um, unetP := testUNet(t, 2)
	vm, vaeP := testVAE(t, 3)
	ids, _ := tok.EncodePadded("a small red star on a blue background , top left")
	x := normal(r, 2, 3, 16, 16)
	z := normal(r, 2, 4, 8, 8)
	run := func() []*tensor.Tensor {
		ehs, err := text.Forward(append(slices.Clone(ids), ids...), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		return []*tensor.Tensor{ehs, um.Forward(z, []float32{10, 900}, ehs), vm.Decode(vm.Encode(x).Mean)}
	}
	plain := run()
	tp := tensor.NewTape()
	all := join([]string{"t/", "u/", "v/"}, textP, unetP, vaeP)
	all.Watch(tp)
	rec := run()
	all.Unwatch()
	tp.Reset()
	for i := range plain {
		if !rec[i].Tracked() {
			t.Errorf("output %d not tracked", i)
		}
		if d, at := tensor.MaxAbsDiff(plain[i], rec[i]); d != 0 {
			t.Errorf("output %d differs by %g at %d when recorded", i, d, at)
		}
	}
}

// TestModelGradients checks whole-model backward passes (text encoder →
// UNet, and the VAE objective) against central finite differences on a
// sample of parameters of every kind.
func TestModelGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tok, _, text, textP := testText(t, 1)
	um, unetP := testUNet(t, 2)
	vm, vaeP := testVAE(t, 3)
	ids, _ := tok.EncodePadded("a red circle and a green square")
	z := normal(r, 1, 4, 8, 8)
	target := normal(r, 1, 4, 8, 8)
	x := normal(r, 1, 3, 16, 16)
	cases := []struct {
		name   string
		params Params
		loss   func() *tensor.Tensor
	}{
		{"text+unet", join([]string{"text_encoder/", "unet/"}, textP, unetP), func() *tensor.Tensor {
			ehs, err := text.Forward(ids, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			return tensor.MSE(um.Forward(z, []float32{321}, ehs), target)
		}},
		{"vae", vaeP, func() *tensor.Tensor {
			l, _, _ := VAELoss(vm, x, rand.New(rand.NewPCG(9, 9)), 0.1)
			return l
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := tensor.NewTape()
			c.params.Watch(tp)
			tp.Backward(c.loss(), nil)
			grads := make([][]float32, len(c.params.Tensors))
			for i, p := range c.params.Tensors {
				if g := p.Grad(); g != nil {
					grads[i] = slices.Clone(g.Data)
				}
			}
			c.params.Unwatch()
			eval := func() float64 { return float64(c.loss().Data[0]) }
			checked, worst := 0, 0.0
			for i, p := range c.params.Tensors {
				// Two elements of every tensor, chosen at random.
				for range 2 {
					j := r.IntN(p.Len())
					v := p.Data[j]
					const h = 1e-2
					p.Data[j] = v + h
					up := eval()
					p.Data[j] = v - h
					down := eval()
					p.Data[j] = v
					num := (up - down) / (2 * h)
					var got float64
					if grads[i] != nil {
						got = float64(grads[i][j])
					}
					d := math.Abs(got - num)
					if d > 1e-3+0.05*math.Abs(num) {
						t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", c.params.Names[i], j, got, num)
					}
					worst = max(worst, d)
					checked++
				}
			}
			t.Logf("%d parameters checked, max |analytic − numeric| %.2g", checked, worst)
		})
	}
}

// evalLoss is the diffusion loss on a fixed batch with fixed noise.
func evalLoss(t *testing.T, d *Diffusion, data Dataset) float64 {
	x, exs := batchImages(data, 1_000_000, 16)
	l, err := d.Loss(x, exs, rand.New(rand.NewPCG(42, 42)))
	if err != nil {
		t.Fatal(err)
	}
	return float64(l.Data[0])
}

// TestTrainingLowersLoss trains both stages briefly on 16x16 shapes: the
// autoencoder's reconstruction error and the UNet's held-out denoising loss
// must both fall well below their starting values.
func TestTrainingLowersLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for several seconds")
	}
	data := Shapes{Seed: 1, ImageSize: 16}
	vm, vaeP := testVAE(t, 3)
	opts := Options{Steps: 150, Batch: 8, LR: 3e-3, Warmup: 10, EMADecay: 0.99, MaxGradNorm: 1, Seed: 7}
	xEval, _ := batchImages(data, 1_000_000, 16)
	recLoss := func() float64 {
		_, rec, _ := VAELoss(vm, xEval, rand.New(rand.NewPCG(1, 1)), 0)
		return float64(rec.Data[0])
	}
	before := recLoss()
	if _, err := Run(context.Background(), opts, vaeP, nil, tensor.NewTape(), VAEStage(vm, data, opts, 1e-4)); err != nil {
		t.Fatal(err)
	}
	after := recLoss()
	t.Logf("autoencoder reconstruction MSE %.4f → %.4f", before, after)
	if !(after < 0.5*before) {
		t.Errorf("autoencoder reconstruction MSE %.4f → %.4f: did not halve", before, after)
	}

	tok, _, text, textP := testText(t, 1)
	um, unetP := testUNet(t, 2)
	sched, err := sampling.ParseConfig(mustJSON(SchedulerConfig()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sampling.New(sampling.DDIM, sched)
	if err != nil {
		t.Fatal(err)
	}
	d := &Diffusion{Tokenizer: tok, Text: text, UNet: um, VAE: vm, ScalingFactor: LatentScale(vm, data, 64),
		AlphasCumprod: s.AlphasCumprod(), UncondProb: 0.1, VPrediction: true}
	uo := Options{Steps: 200, Batch: 16, LR: 2e-3, Warmup: 20, EMADecay: 0.99, MaxGradNorm: 1, Seed: 8}
	before = evalLoss(t, d, data)
	params := join([]string{"text_encoder/", "unet/"}, textP, unetP)
	if _, err := Run(context.Background(), uo, params, nil, tensor.NewTape(), d.Stage(data, uo)); err != nil {
		t.Fatal(err)
	}
	after = evalLoss(t, d, data)
	t.Logf("denoising loss on a held-out batch %.4f → %.4f", before, after)
	if !(after < 0.7*before) {
		t.Errorf("denoising loss %.4f → %.4f: did not fall by 30%%", before, after)
	}
}

// TestResumeIsExact checks that 6 steps in one run and 3 + 3 across a
// checkpoint give bit-identical weights, EMA and optimiser state.
func TestResumeIsExact(t *testing.T) {
	data := Shapes{Seed: 1, ImageSize: 16}
	ckpt := filepath.Join(t.TempDir(), "vae.ckpt.safetensors")
	train := func(steps int, path string) *State {
		vm, p := testVAE(t, 3)
		o := Options{Steps: steps, Batch: 2, LR: 1e-3, Warmup: 2, EMADecay: 0.9, MaxGradNorm: 1, Seed: 7, Checkpoint: path}
		s, err := Run(context.Background(), o, p, nil, tensor.NewTape(), VAEStage(vm, data, o, 1e-4))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	straight := train(6, "")
	train(3, ckpt)
	resumed := train(6, ckpt)
	if resumed.Step != 6 || resumed.Opt.Step != 6 || resumed.EMA.Updates != 6 {
		t.Fatalf("resumed state at step %d (adam %d, ema %d), want 6", resumed.Step, resumed.Opt.Step, resumed.EMA.Updates)
	}
	for i, p := range straight.Params.Tensors {
		if !slices.Equal(p.Data, resumed.Params.Tensors[i].Data) || !slices.Equal(straight.EMA.Shadow[i], resumed.EMA.Shadow[i]) ||
			!slices.Equal(straight.Opt.V[i], resumed.Opt.V[i]) {
			t.Fatalf("%s differs after resuming", straight.Params.Names[i])
		}
	}
}

// TestResumeRefuses checks that a checkpoint is not resumed with another
// batch size (the data of each step would differ) nor by a run asking for
// fewer steps than it holds (which would export the later state as if it
// were the run asked for), each with an error naming the flag, and that the
// checkpoint is left as it was.
func TestResumeRefuses(t *testing.T) {
	data := Shapes{Seed: 1, ImageSize: 16}
	ckpt := filepath.Join(t.TempDir(), "vae.ckpt.safetensors")
	run := func(steps, batch int) error {
		vm, p := testVAE(t, 3)
		o := Options{Steps: steps, Batch: batch, LR: 1e-3, Warmup: 2, EMADecay: 0.9, MaxGradNorm: 1, Seed: 7, Checkpoint: ckpt}
		_, err := Run(context.Background(), o, p, nil, tensor.NewTape(), VAEStage(vm, data, o, 1e-4))
		return err
	}
	if err := run(4, 2); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		steps, batch int
		flag         string
	}{
		{"other batch", 6, 3, "--batch"},
		{"fewer steps", 3, 2, "--steps"},
	} {
		err := run(c.steps, c.batch)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%s: error %v, want one naming %s", c.name, err, c.flag)
		}
		if now, _ := os.ReadFile(ckpt); !slices.Equal(now, saved) {
			t.Errorf("%s: the checkpoint changed", c.name)
		}
	}
	if err := run(6, 2); err != nil { // same batch, more steps: resumes
		t.Errorf("resuming with more steps: %v", err)
	}
}

// TestResumeNotes checks that resuming with another learning rate or
// warm-up, or another data description, goes on (as asked) with a note
// naming each change, and that an unchanged resume says nothing of the kind.
func TestResumeNotes(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "vae.ckpt.safetensors")
	run := func(steps int, lr float64, warmup int, data Shapes) string {
		t.Helper()
		vm, p := testVAE(t, 3)
		var log strings.Builder
		o := Options{Steps: steps, Batch: 2, LR: lr, Warmup: warmup, EMADecay: 0.9, MaxGradNorm: 1, Seed: 7, Checkpoint: ckpt, Log: &log}
		if _, err := Run(context.Background(), o, p, stageMeta("vae", data), tensor.NewTape(), VAEStage(vm, data, o, 1e-4)); err != nil {
			t.Fatal(err)
		}
		return log.String()
	}
	data := Shapes{Seed: 1, ImageSize: 16}
	run(2, 1e-3, 1, data)
	if log := run(3, 1e-3, 1, data); strings.Contains(log, "note:") {
		t.Errorf("unchanged resume logged %q", log)
	}
	other := data
	other.Drills = 0.5
	log := run(5, 5e-4, 2, other)
	for _, want := range []string{"--lr 0.001; the run goes on with 0.0005", "--warmup 1; the run goes on with 2", "drills 0,", "drills 0.5,"} {
		if !strings.Contains(log, want) {
			t.Errorf("resume log %q lacks %q", log, want)
		}
	}
}

// TestDecoderFineTune trains only the decoder: the encoder (and so every
// latent) must stay bit for bit, and the reconstruction error must fall.
func TestDecoderFineTune(t *testing.T) {
	data := Shapes{Seed: 1, ImageSize: 16}
	vm, all := testVAE(t, 3)
	dec := all.Select("decoder.", "post_quant_conv.")
	enc := all.Select("encoder.", "quant_conv.")
	if len(dec.Names)+len(enc.Names) != len(all.Names) || len(dec.Names) == 0 || len(enc.Names) == 0 {
		t.Fatalf("Select split %d parameters into %d decoder and %d encoder ones", len(all.Names), len(dec.Names), len(enc.Names))
	}
	before := make([][]float32, len(enc.Tensors))
	for i, p := range enc.Tensors {
		before[i] = slices.Clone(p.Data)
	}
	x, _ := batchImages(data, 1_000_000, 8)
	lossAt := func() float64 { return float64(DecoderLoss(vm, x, rand.New(rand.NewPCG(2, 2))).Data[0]) }
	l0 := lossAt()
	opts := Options{Steps: 60, Batch: 8, LR: 3e-3, Warmup: 5, EMADecay: 0.9, MaxGradNorm: 1, Seed: 3}
	if _, err := Run(context.Background(), opts, dec, nil, tensor.NewTape(), DecoderStage(vm, data, opts)); err != nil {
		t.Fatal(err)
	}
	l1 := lossAt()
	t.Logf("decoder loss (L1 + MSE) %.4f → %.4f", l0, l1)
	if !(l1 < 0.7*l0) {
		t.Errorf("decoder loss %.4f → %.4f: did not fall by 30%%", l0, l1)
	}
	for i, p := range enc.Tensors {
		if !slices.Equal(p.Data, before[i]) {
			t.Fatalf("encoder parameter %s changed", enc.Names[i])
		}
	}
}

// TestSchedulerZeroTerminalSNR checks pigment-tiny's schedule: every
// sampler reads the same ᾱ (so PNDM and LMS match training too), it falls
// to 2⁻²⁴ at the last step, √ᾱ_0 is SD's, and sampling starts at t = 999.
func TestSchedulerZeroTerminalSNR(t *testing.T) {
	cfg, err := sampling.ParseConfig(mustJSON(SchedulerConfig()))
	if err != nil {
		t.Fatal(err)
	}
	var first []float32
	for _, k := range []sampling.Kind{sampling.DDIM, sampling.Euler, sampling.EulerA, sampling.DPMPP2M, sampling.DPMPP2MKarras, sampling.LMS, sampling.PNDM} {
		s, err := sampling.New(k, cfg)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		a := s.AlphasCumprod()
		if first == nil {
			first = a
		} else if !slices.Equal(a, first) {
			t.Errorf("%s reads another schedule", k)
		}
		p, err := s.Plan(20)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if p.Timesteps[0] != 999 {
			t.Errorf("%s starts at t=%v, want 999", k, p.Timesteps[0])
		}
	}
	if got := first[len(first)-1]; math.Abs(float64(got)-0x1p-24) > 1e-12 {
		t.Errorf("last ᾱ %g, want 2⁻²⁴", got)
	}
	if got := first[0]; math.Abs(float64(got)-0.99915) > 1e-5 {
		t.Errorf("ᾱ_0 %g, want SD's 0.99915", got)
	}
}

func TestL1Gradient(t *testing.T) {
	a := tensor.FromData([]float32{1, -2, 3, 0.5}, 4)
	b := tensor.FromData([]float32{0, 0, 4, 0.5}, 4)
	tp := tensor.NewTape()
	tp.Watch(a)
	loss := l1(a, b)
	if got := loss.Data[0]; math.Abs(float64(got)-1) > 1e-6 {
		t.Fatalf("l1 %v, want 1", got)
	}
	tp.Backward(loss, nil)
	if g := a.Grad().Data; !slices.Equal(g, []float32{0.25, -0.25, -0.25, 0}) {
		t.Fatalf("gradient %v", g)
	}
}

// TestShapesDrills checks that Shapes mixes in the fraction of geometry
// drills asked for, white on black or coloured, deterministically, and none
// when Drills is 0. Coloured drills are single-object scenes, so they show
// as a rise in single-object scenes over the sampler's 80%.
func TestShapesDrills(t *testing.T) {
	isWhiteDrill := func(e Example) bool {
		return strings.HasPrefix(e.Key, "{black [{") && strings.Count(e.Key, "{") == 2 && strings.Contains(e.Key, " white ")
	}
	for _, c := range []struct {
		drills, colour float64
		white, single  float64 // expected fractions
	}{
		{0, 0, 0, 0.8},
		{0.4, 0, 0.4, 0.88},
		{1, 0, 1, 1},
		{0.5, 1, 0, 0.9},
		{0.4, 0.5, 0.2, 0.88},
	} {
		d := Shapes{Seed: 1, ImageSize: 16, Drills: c.drills, ColourDrills: c.colour}
		white, single := 0, 0
		for i := range 2000 {
			e := d.Example(i)
			if isWhiteDrill(e) {
				white++
			}
			if strings.Count(e.Key, "{") == 2 {
				single++
			}
			if i < 20 && e.Key != d.Example(i).Key {
				t.Fatalf("example %d is not deterministic", i)
			}
		}
		// White on black among the other single-object scenes: 1 in 90
		// colour pairs, so up to about 1.1% more.
		if f := float64(white) / 2000; f < c.white-0.03 || f > c.white+0.03 {
			t.Errorf("Drills %v, ColourDrills %v: %.3f of the examples are white drills, want %v", c.drills, c.colour, f, c.white)
		}
		if f := float64(single) / 2000; f < c.single-0.03 || f > c.single+0.03 {
			t.Errorf("Drills %v, ColourDrills %v: %.3f of the examples have one object, want %v", c.drills, c.colour, f, c.single)
		}
	}
}

// TestRecipeSampleSize runs a from-scratch Recipe for two steps per stage
// at 16x16 and checks that the written model's default size is the training
// size: the autoencoder's sample_size and the UNet's (latent) sample_size
// follow the data, not pigment-tiny's 64.
func TestRecipeSampleSize(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	dir := t.TempDir()
	o := Options{Steps: 2, Batch: 2, LR: 1e-3, Warmup: 1, EMADecay: 0.9, MaxGradNorm: 1, Seed: 3}
	r := &Recipe{Data: Shapes{Seed: 1, ImageSize: 16}, Out: filepath.Join(dir, "model"), Work: filepath.Join(dir, "work"),
		Seed: 1, VAE: o, UNet: o, KLWeight: 1e-4, UncondProb: 0.1}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	vc, err := vae.LoadConfig(filepath.Join(r.Out, "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	uc, err := unet.LoadConfig(filepath.Join(r.Out, "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if vc.SampleSize != 16 || uc.SampleSize*vc.ScaleFactor() != 16 {
		t.Errorf("vae sample_size %d, unet sample_size %d × scale factor %d: want a 16x16 model", vc.SampleSize, uc.SampleSize, vc.ScaleFactor())
	}
}
