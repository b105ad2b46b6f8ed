package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Options are the optimisation settings shared by every stage.
type Options struct {
	Steps       int     // optimiser steps of the whole run (a resumed run stops at the same step)
	Batch       int     // examples per step
	LR          float64 // peak learning rate
	Warmup      int     // steps of linear warm-up from 0 to LR; cosine decay to LR/10 after
	WeightDecay float64 // AdamW's decoupled weight decay
	EMADecay    float64 // EMA decay (0.999 is typical)
	MaxGradNorm float64 // gradient clipping by global norm; 0: no clipping
	Seed        uint64  // data and noise of step k come from (Seed, k)
	// Checkpoint is the file the run state is saved to every
	// CheckpointEvery steps, at the end and when ctx is cancelled, and
	// resumed from when it exists. "" disables checkpoints.
	Checkpoint      string
	CheckpointEvery int
	LogEvery        int       // steps between progress lines; 0: 50
	Log             io.Writer // progress lines; nil: none
}

// lrAt returns the learning rate of step (0-based).
func (o Options) lrAt(step int) float64 {
	if step < o.Warmup {
		return o.LR * float64(step+1) / float64(o.Warmup)
	}
	span := max(1, o.Steps-o.Warmup)
	p := min(1, float64(step-o.Warmup)/float64(span))
	return o.LR * (0.1 + 0.9*0.5*(1+math.Cos(math.Pi*p)))
}

// Validate reports the first invalid option, naming it as the CLI flag.
func (o Options) Validate() error {
	switch {
	case o.Steps < 1:
		return fmt.Errorf("--steps must be at least 1, got %d", o.Steps)
	case o.Batch < 1:
		return fmt.Errorf("--batch must be at least 1, got %d", o.Batch)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("--lr must be a positive number, got %v", o.LR)
	case o.Warmup < 0:
		return fmt.Errorf("--warmup must not be negative, got %d", o.Warmup)
	case !(o.EMADecay >= 0 && o.EMADecay < 1):
		return fmt.Errorf("--ema must be in [0, 1), got %v", o.EMADecay)
	case o.WeightDecay < 0 || math.IsNaN(o.WeightDecay):
		return fmt.Errorf("--weight-decay must not be negative, got %v", o.WeightDecay)
	}
	return nil
}

// resumeNoted are the checkpoint metadata keys a resumed run reports when
// they differ from the checkpoint's (Run's options and the caller's "data"
// description), and resumeFlags the CLI flag each comes from.
var (
	resumeNoted = []string{"lr", "warmup", "weight_decay", "ema_decay", "data"}
	resumeFlags = map[string]string{
		"lr": "--lr", "warmup": "--warmup", "weight_decay": "--weight-decay", "ema_decay": "--ema", "data": "data",
	}
)

// LossFunc computes the loss of step on the tape (whose leaves are the
// parameters being trained) and returns it as a [1] tensor.
type LossFunc func(step int) (*tensor.Tensor, error)

// Run optimises params with AdamW, keeping an EMA, from the checkpoint if
// one exists, until opts.Steps. A checkpoint made with another batch size,
// or past opts.Steps, is an error (it would not resume the run asked for);
// other learning settings (and meta's "data") that differ from the
// checkpoint's are logged as a note. meta is saved in checkpoints. It returns
// the final state; on cancellation it saves a checkpoint and returns the
// state with ctx's error. A non-finite loss or gradient stops the run with
// an error and does not overwrite the last good checkpoint.
func Run(ctx context.Context, opts Options, params Params, meta map[string]string, tp *tensor.Tape, loss LossFunc) (*State, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	meta = maps.Clone(meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta["batch"] = strconv.Itoa(opts.Batch)
	for key, v := range map[string]float64{"lr": opts.LR, "weight_decay": opts.WeightDecay, "ema_decay": opts.EMADecay} {
		meta[key] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	meta["warmup"] = strconv.Itoa(opts.Warmup)
	s := &State{Params: params, Opt: NewAdamW(params, opts.WeightDecay), EMA: NewEMA(params, opts.EMADecay), Meta: meta}
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format, args...)
		}
	}
	if opts.Checkpoint != "" {
		if _, err := os.Stat(opts.Checkpoint); err == nil {
			saved, err := LoadCheckpoint(opts.Checkpoint, s)
			if err != nil {
				return nil, err
			}
			// A checkpoint resumes exactly only with the batch it was made
			// with, and one past --steps would be exported as if it were
			// the run asked for.
			if b, ok := saved["batch"]; ok && b != meta["batch"] {
				return nil, fmt.Errorf("checkpoint %s was trained with --batch %s, not %d: resume with the same batch, or use another --work", opts.Checkpoint, b, opts.Batch)
			}
			if s.Step > opts.Steps {
				return nil, fmt.Errorf("checkpoint %s is at step %d, past --steps %d: ask for at least %d steps, or use another --work", opts.Checkpoint, s.Step, opts.Steps, s.Step)
			}
			logf("resumed %s at step %d\n", opts.Checkpoint, s.Step)
			// Other settings may change on resume (a lower learning rate
			// for the rest of a run is legitimate), but never silently.
			for _, key := range resumeNoted {
				if was, ok := saved[key]; ok && was != meta[key] {
					logf("note: the checkpoint was trained with %s %s; the run goes on with %s\n", resumeFlags[key], was, meta[key])
				}
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	save := func() error {
		if opts.Checkpoint == "" {
			return nil
		}
		return SaveCheckpoint(opts.Checkpoint, *s)
	}
	every := opts.LogEvery
	if every <= 0 {
		every = 50
	}
	var sumLoss float64
	var count int
	start, lastStep := time.Now(), s.Step
	for s.Step < opts.Steps {
		if err := ctx.Err(); err != nil {
			if serr := save(); serr != nil {
				return s, errors.Join(err, serr)
			}
			return s, err
		}
		params.Watch(tp)
		l, err := loss(s.Step)
		if err != nil {
			tp.Reset()
			return s, err
		}
		v := float64(l.Data[0])
		tp.Backward(l, nil)
		var norm float64
		if opts.MaxGradNorm > 0 {
			norm = ClipGradNorm(params, opts.MaxGradNorm) // the norm before clipping
		} else {
			norm = math.Sqrt(gradSquares(params))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || math.IsNaN(norm) || math.IsInf(norm, 0) {
			return s, fmt.Errorf("train: step %d: loss %v, gradient norm %v (not finite); the last checkpoint is kept", s.Step, v, norm)
		}
		s.Opt.Update(params, opts.lrAt(s.Step))
		s.EMA.Update(params)
		s.Step++
		sumLoss += v
		count++
		if s.Step%every == 0 || s.Step == opts.Steps {
			el := time.Since(start).Seconds()
			logf("step %d/%d  loss %.5f  grad-norm %.3f  lr %.2e  %.1f samples/s\n",
				s.Step, opts.Steps, sumLoss/float64(count), norm, opts.lrAt(s.Step-1), float64((s.Step-lastStep)*opts.Batch)/el)
			sumLoss, count, start, lastStep = 0, 0, time.Now(), s.Step
		}
		if opts.CheckpointEvery > 0 && s.Step%opts.CheckpointEvery == 0 {
			if err := save(); err != nil {
				return s, err
			}
		}
	}
	params.Unwatch()
	return s, save()
}

func gradSquares(p Params) float64 {
	var sq float64
	for _, t := range p.Tensors {
		if g := t.Grad(); g != nil {
			for _, v := range g.Data {
				sq += float64(v) * float64(v)
			}
		}
	}
	return sq
}
