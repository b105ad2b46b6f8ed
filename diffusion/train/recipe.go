package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pigment-ai/pigment/diffusion/clip"
	"github.com/pigment-ai/pigment/diffusion/nn"
	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/sampling"
	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/diffusion/unet"
	"github.com/pigment-ai/pigment/diffusion/vae"
)

// Recipe is a complete training run that ends in a model directory: from
// scratch (autoencoder stage, then UNet and text encoder), or from an
// existing model (From: the UNet and text encoder are fine-tuned, the
// autoencoder and tokenizer are kept). Stages resume from their
// checkpoints in Work, and a finished stage is not run again.
type Recipe struct {
	Data Dataset
	// UNetData, if set, replaces Data in stage two (the UNet and text
	// encoder): the shapes data set with geometry drills mixed in, while
	// the autoencoder learns from the plain scenes.
	UNetData Dataset
	Out      string // model directory written at the end
	Work     string // checkpoints and the stage-one autoencoder
	From     string // model directory to fine-tune; "" trains from scratch
	Seed     uint64

	VAE      Options // stage one (from scratch only)
	KLWeight float64
	// Decoder is stage 1b: the autoencoder's decoder fine-tuned with the
	// encoder frozen (Steps 0 skips it). It changes no latent, so it is
	// independent of stage two.
	Decoder Options
	UNet    Options // stage two
	// UncondProb and MinSNRGamma: see Diffusion.
	UncondProb, MinSNRGamma float64
	// Skip names stages not to run now ("vae", "decoder", "unet"); a stage
	// that later stages need must have finished before.
	Skip map[string]bool
	// Export writes Out from the EMA weights of the stage-two checkpoint
	// as it stands, without training: a preview of a run in progress.
	Export bool
	Log    io.Writer
}

func (r *Recipe) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format, args...)
	}
}

// Run trains and writes r.Out.
func (r *Recipe) Run(ctx context.Context) error {
	if err := os.MkdirAll(r.Work, 0o755); err != nil {
		return err
	}
	if r.From != "" {
		return r.fineTune(ctx)
	}
	if r.Export {
		r.Skip = map[string]bool{"vae": true, "decoder": true}
	}
	vaeDir := filepath.Join(r.Work, "vae")
	if _, err := os.Stat(filepath.Join(vaeDir, "config.json")); errors.Is(err, fs.ErrNotExist) {
		if r.Skip["vae"] {
			return fmt.Errorf("train: stage 1 (autoencoder) has not run in %s", r.Work)
		}
		if err := r.trainVAE(ctx, vaeDir); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else {
		r.logf("stage 1 (autoencoder): done earlier, using %s\n", vaeDir)
	}
	if !r.Skip["decoder"] {
		if err := r.tuneDecoder(ctx, vaeDir); err != nil {
			return err
		}
	}
	if r.Skip["unet"] {
		return nil
	}
	vm, err := vae.Load(vaeDir)
	if err != nil {
		return err
	}
	vocab, err := WordVocab(r.Data.Words())
	if err != nil {
		return err
	}
	tok, err := clip.NewTokenizer(vocab.Tokens, vocab.Merges, "")
	if err != nil {
		return err
	}
	tok.MaxLength = TinyMaxLength
	textCfg := TinyTextConfig(len(vocab.Tokens), tok.BOS, tok.EOS)
	textRec := NewRecorder(nn.NewRandomSource(r.Seed + 1))
	tw := nn.NewWeights(textRec)
	text := clip.NewTextModel(tw, textCfg)
	if err := tw.Err(); err != nil {
		return err
	}
	unetCfg := TinyUNetConfig()
	unetCfg.SampleSize = r.Data.Size() / vm.Config.ScaleFactor() // the model's default size is the training size
	unetRec := NewRecorder(nn.NewRandomSource(r.Seed + 2))
	um, err := unet.New(nn.NewWeights(unetRec), unetCfg)
	if err != nil {
		return err
	}
	parts := Parts{Vocab: vocab, MaxLength: TinyMaxLength, TextConfig: textCfg, UNetConfig: unetCfg, VAEConfig: vm.Config}
	return r.trainDiffusion(ctx, tok, text, textRec.Params(), um, unetRec.Params(), vm, parts)
}

// trainVAE runs stage one and saves the EMA autoencoder, with its measured
// scaling_factor, to dir.
func (r *Recipe) trainVAE(ctx context.Context, dir string) error {
	cfg := TinyVAEConfig()
	cfg.SampleSize = r.Data.Size()
	rec := NewRecorder(nn.NewRandomSource(r.Seed))
	m, err := vae.New(nn.NewWeights(rec), cfg)
	if err != nil {
		return err
	}
	params := rec.Params()
	r.logf("stage 1 (autoencoder): %d parameters, %d steps of batch %d\n", params.Count(), r.VAE.Steps, r.VAE.Batch)
	opts := r.VAE
	opts.Checkpoint = filepath.Join(r.Work, "vae.ckpt.safetensors")
	opts.Log = r.Log
	s, err := Run(ctx, opts, params, stageMeta("vae", r.Data), tensor.NewTape(), VAEStage(m, r.Data, opts, r.KLWeight))
	if err != nil {
		return err
	}
	useEMA(s)
	m.Config.ScalingFactor = float64(LatentScale(m, r.Data, 512))
	r.logf("stage 1 (autoencoder): scaling_factor %.5f\n", m.Config.ScalingFactor)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := params.Save(filepath.Join(dir, "diffusion_pytorch_model.safetensors"), safetensors.F32, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "config.json"), m.Config)
}

// decoderDone marks, in the stage-one folder, a finished stage 1b.
const decoderDone = "decoder-finetuned"

// tuneDecoder runs stage 1b on the autoencoder in dir and saves the EMA
// decoder there, unless it ran before.
func (r *Recipe) tuneDecoder(ctx context.Context, dir string) error {
	if r.Decoder.Steps == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, decoderDone)); err == nil {
		r.logf("stage 1b (decoder): done earlier\n")
		return nil
	}
	cfg, err := vae.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return err
	}
	src, err := nn.OpenComponent(dir, "diffusion_pytorch_model")
	if err != nil {
		return err
	}
	rec := NewRecorder(src)
	m, err := vae.New(nn.NewWeights(rec), cfg)
	src.Close()
	if err != nil {
		return err
	}
	all := rec.Params()
	params := all.Select("decoder.", "post_quant_conv.")
	r.logf("stage 1b (decoder, encoder frozen): %d parameters, %d steps of batch %d\n", params.Count(), r.Decoder.Steps, r.Decoder.Batch)
	opts := r.Decoder
	opts.Checkpoint = filepath.Join(r.Work, "decoder.ckpt.safetensors")
	opts.Log = r.Log
	s, err := Run(ctx, opts, params, stageMeta("decoder", r.Data), tensor.NewTape(), DecoderStage(m, r.Data, opts))
	if err != nil {
		return err
	}
	useEMA(s)
	if err := all.Save(filepath.Join(dir, "diffusion_pytorch_model.safetensors"), safetensors.F32, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, decoderDone), []byte("stage 1b finished\n"), 0o644)
}

// useEMA copies the averaged weights into the parameters.
func useEMA(s *State) {
	for i, t := range s.Params.Tensors {
		copy(t.Data, s.EMA.Shadow[i])
	}
}

// join concatenates parameter sets, prefixing each set's names.
func join(prefixes []string, sets ...Params) Params {
	var out Params
	for i, p := range sets {
		for j, n := range p.Names {
			out.Names = append(out.Names, prefixes[i]+n)
			out.Tensors = append(out.Tensors, p.Tensors[j])
		}
	}
	return out
}

func (r *Recipe) trainDiffusion(ctx context.Context, tok *clip.Tokenizer, text *clip.TextModel, textP Params,
	um *unet.UNet2DConditionModel, unetP Params, vm *vae.AutoencoderKL, parts Parts) error {
	sched, err := sampling.ParseConfig(mustJSON(SchedulerConfig()))
	if err != nil {
		return err
	}
	ddpm, err := sampling.New(sampling.DDIM, sched)
	if err != nil {
		return err
	}
	d := &Diffusion{
		Tokenizer: tok, Text: text, UNet: um, VAE: vm, ScalingFactor: float32(vm.Config.ScalingFactor),
		AlphasCumprod: ddpm.AlphasCumprod(), UncondProb: r.UncondProb, MinSNRGamma: r.MinSNRGamma,
		VPrediction: sched.PredictionType == "v_prediction",
	}
	params := join([]string{"text_encoder/", "unet/"}, textP, unetP)
	r.logf("stage 2 (UNet %d + text encoder %d parameters): %d steps of batch %d\n", unetP.Count(), textP.Count(), r.UNet.Steps, r.UNet.Batch)
	opts := r.UNet
	opts.Checkpoint = filepath.Join(r.Work, "unet.ckpt.safetensors")
	opts.Log = r.Log
	var s *State
	if r.Export {
		s = &State{Params: params, Opt: NewAdamW(params, opts.WeightDecay), EMA: NewEMA(params, opts.EMADecay)}
		if _, err := LoadCheckpoint(opts.Checkpoint, s); err != nil {
			return fmt.Errorf("train: export: %w", err)
		}
		r.logf("exporting step %d of %s\n", s.Step, opts.Checkpoint)
	} else if s, err = Run(ctx, opts, params, stageMeta("unet", r.unetData()), tensor.NewTape(), d.Stage(r.unetData(), opts)); err != nil {
		return err
	}
	useEMA(s)
	parts.Text, parts.UNet = textP, unetP
	// The autoencoder is saved as trained in stage one (or as loaded).
	vsrc, err := nn.OpenComponent(vaeDirOf(r), "diffusion_pytorch_model")
	if err != nil {
		return err
	}
	defer vsrc.Close()
	rec := NewRecorder(vsrc)
	if _, err := vae.New(nn.NewWeights(rec), vm.Config); err != nil {
		return err
	}
	parts.VAE = rec.Params()
	if err := SaveModel(r.Out, parts, safetensors.F16); err != nil {
		return err
	}
	r.logf("saved %s\n", r.Out)
	return nil
}

// stageMeta is the checkpoint metadata of a stage trained on data: its
// name, and data's description when it has one (fmt.Stringer), which a
// resumed run compares.
func stageMeta(stage string, data Dataset) map[string]string {
	meta := map[string]string{"stage": stage}
	if d, ok := data.(fmt.Stringer); ok {
		meta["data"] = d.String()
	}
	return meta
}

func (r *Recipe) unetData() Dataset {
	if r.UNetData != nil {
		return r.UNetData
	}
	return r.Data
}

// vaeDirOf is where the recipe's autoencoder comes from.
func vaeDirOf(r *Recipe) string {
	if r.From != "" {
		return filepath.Join(r.From, "vae")
	}
	return filepath.Join(r.Work, "vae")
}

// fineTune loads r.From and trains its UNet and text encoder on r.Data.
func (r *Recipe) fineTune(ctx context.Context) error {
	tok, err := clip.LoadTokenizer(filepath.Join(r.From, "tokenizer"))
	if err != nil {
		return err
	}
	vocab, err := readVocab(filepath.Join(r.From, "tokenizer"))
	if err != nil {
		return err
	}
	textCfg, err := clip.LoadTextConfig(filepath.Join(r.From, "text_encoder", "config.json"))
	if err != nil {
		return err
	}
	tsrc, err := nn.OpenComponent(filepath.Join(r.From, "text_encoder"), "model")
	if err != nil {
		return err
	}
	defer tsrc.Close()
	textRec := NewRecorder(tsrc)
	tw := nn.NewWeights(textRec)
	text := clip.NewTextModel(tw, textCfg)
	if err := tw.Err(); err != nil {
		return err
	}
	unetCfg, err := unet.LoadConfig(filepath.Join(r.From, "unet", "config.json"))
	if err != nil {
		return err
	}
	usrc, err := nn.OpenComponent(filepath.Join(r.From, "unet"), "diffusion_pytorch_model")
	if err != nil {
		return err
	}
	defer usrc.Close()
	unetRec := NewRecorder(usrc)
	um, err := unet.New(nn.NewWeights(unetRec), unetCfg)
	if err != nil {
		return err
	}
	vm, err := vae.Load(filepath.Join(r.From, "vae"))
	if err != nil {
		return err
	}
	if vm.Config.ScaleFactor()*unetCfg.SampleSize != r.Data.Size() {
		r.logf("note: training at %dx%d, the model's default size is %dx%d\n", r.Data.Size(), r.Data.Size(), vm.Config.ScaleFactor()*unetCfg.SampleSize, vm.Config.ScaleFactor()*unetCfg.SampleSize)
	}
	parts := Parts{Vocab: vocab, MaxLength: tok.MaxLength, TextConfig: textCfg, UNetConfig: unetCfg, VAEConfig: vm.Config}
	return r.trainDiffusion(ctx, tok, text, textRec.Params(), um, unetRec.Params(), vm, parts)
}
