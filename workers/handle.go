package workers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/broker"
	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/diffusion/sampling"
)

// Request defaults for fields a record may leave unresolved (the gateway
// normally fills them in); the same as `pigment generate`'s.
const (
	defaultSteps         = 20
	defaultGuidanceScale = 7.5
	defaultStrength      = 0.8 // diffusers' StableDiffusionImg2ImgPipeline
)

// Causes of a job context's cancellation.
var (
	errCanceled   = errors.New("canceled on request")
	errShutdown   = errors.New("worker shutting down")
	errSuperseded = errors.New("job settled elsewhere")
)

// permanentError is a failure that retrying cannot fix (a bad request or
// init image, a panic in the engine): the job fails at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// isPermanent reports whether err fails the job without a retry: a
// *diffusion.FieldError (a request the gateway should have refused), an
// unknown model, or a permanentError.
func isPermanent(err error) bool {
	var fe *diffusion.FieldError
	var pe *permanentError
	return errors.As(err, &fe) || errors.As(err, &pe) || errors.Is(err, ErrModelNotFound)
}

// start is what begin decided to do with a delivered job.
type start int

const (
	startSkip     start = iota // already settled: ack (a redelivery or duplicate)
	startCanceled              // cancel requested before it ran: marked canceled
	startGiveUp                // out of attempts: marked failed
	startRun                   // marked running: run it
)

// handle settles one message of the JOBS stream, whose data is a job id.
// Every path ends in exactly one of Ack, Nak, NakWithDelay or Term, taken
// after the job record says what happened (ack.go).
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	id := string(msg.Data())
	delivered := 0
	if md, err := msg.Metadata(); err == nil {
		delivered = int(md.NumDelivered)
	}
	st, job, err := w.begin(id, delivered)
	if err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, broker.ErrNotFound):
			w.log.Warn("job record not found; dropping message", "job", id)
			w.term(msg, "job record not found")
		case errors.As(err, &syntax) || errors.As(err, &typ):
			w.log.Error("corrupt job record; dropping message", "job", id, "err", err)
			w.term(msg, "corrupt job record")
		default: // the KV store is unreachable: try again later
			w.log.Warn("reading job record", "job", id, "err", err)
			w.nakDelay(msg, w.retryDelay(1))
		}
		return
	}
	switch st {
	case startSkip:
		w.log.Debug("job already settled; acking", "job", id, "status", job.Status)
		w.ack(msg)
	case startCanceled:
		w.log.Info("job canceled before it ran", "job", id)
		w.m.jobs.WithLabelValues(string(pigment.StatusCanceled)).Inc()
		w.ack(msg)
	case startGiveUp:
		w.log.Warn("job failed", "job", id, "err", job.Error)
		w.m.jobs.WithLabelValues(string(pigment.StatusFailed)).Inc()
		w.notify(job)
		w.term(msg, job.Error)
	case startRun:
		w.run(ctx, msg, job)
	}
}

// begin reads the record of job id and, in one compare-and-set write,
// decides what to do with this delivery: skip a settled job, cancel one
// whose cancel was requested, fail one out of attempts, or mark it running
// for a new attempt. delivered is the message's delivery count, a backstop
// for jobs that never get as far as an attempt.
func (w *Worker) begin(id string, delivered int) (start, *pigment.Job, error) {
	var st start
	now := time.Now().UTC()
	job, err := w.update(id, func(j *pigment.Job) error {
		switch {
		case j.Status.Terminal():
			st = startSkip
			return broker.ErrNoChange
		case j.CancelRequested:
			st = startCanceled
			j.Status, j.FinishedAt = pigment.StatusCanceled, &now
			return nil
		}
		if j.Status == pigment.StatusRunning {
			// Delivered again while the record says running: the worker
			// that ran it stopped heartbeating (it died, or was cut off).
			j.Error = fmt.Sprintf("worker %s stopped responding during attempt %d", j.Worker, j.Attempts)
		}
		attempt := j.Attempts + 1
		if attempt > w.cfg.MaxAttempts || delivered > w.maxDeliveries() {
			st = startGiveUp
			last := j.Error
			if last == "" {
				last = fmt.Sprintf("delivered %d times without finishing", delivered)
			}
			j.Status, j.FinishedAt = pigment.StatusFailed, &now
			j.Error = giveUp(j.Attempts, last)
			return nil
		}
		st = startRun
		j.Status, j.Attempts, j.Worker = pigment.StatusRunning, attempt, w.cfg.Name
		j.StartedAt, j.FinishedAt = &now, nil
		j.Progress = pigment.Progress{Step: 0, Steps: plannedSteps(j.Request)}
		return nil
	})
	return st, job, err
}

// maxDeliveries bounds how often one message is delivered, however its
// attempts were counted: releases on shutdown and unreadable records do
// not count as attempts.
func (w *Worker) maxDeliveries() int { return 10 * w.cfg.MaxAttempts }

func giveUp(attempts int, last string) string {
	return fmt.Sprintf("gave up after %d attempts: %s", attempts, last)
}

// plannedSteps is the number of denoising steps a request runs, as far as
// the record tells: img2img runs only the last strength·steps.
func plannedSteps(r pigment.JobRequest) int {
	steps := r.Steps
	if steps == 0 {
		steps = defaultSteps
	}
	if r.InitImage != "" && r.Strength != nil && *r.Strength > 0 && *r.Strength < 1 {
		steps = max(1, min(steps, int(float64(steps)**r.Strength)))
	}
	return steps
}

// run runs one attempt of job (marked running by begin) and settles the
// message. ctx is the worker's: when it is done the job gets
// Config.ShutdownGrace to finish before it is released.
func (w *Worker) run(ctx context.Context, msg jetstream.Msg, job *pigment.Job) {
	started := time.Now()
	w.m.busy.Inc()
	defer w.m.busy.Dec()
	log := w.log.With("job", job.ID, "attempt", job.Attempts)
	log.Info("job started", "model", job.Request.Model)

	// alive lasts until the message is settled; jobCtx is what generation
	// runs under, cancelled with a cause (errCanceled, errShutdown,
	// errSuperseded) to stop it between steps.
	alive, stop := context.WithCancel(context.Background())
	jobCtx, cancel := context.WithCancelCause(alive)
	var bg sync.WaitGroup
	defer bg.Wait()
	defer stop()
	bg.Go(func() { w.heartbeat(alive, msg) })
	bg.Go(func() { w.watchJob(jobCtx, job.ID, cancel) })
	bg.Go(func() { w.releaseAfterGrace(ctx, jobCtx, cancel) })

	images, err := w.execute(jobCtx, job, cancel)
	if err != nil && jobCtx.Err() != nil {
		err = context.Cause(jobCtx)
	}
	switch {
	case err == nil:
		w.succeed(msg, job, images, started)
	case errors.Is(err, errCanceled):
		w.cancelJob(msg, job, started)
	case errors.Is(err, errSuperseded):
		log.Info("job settled elsewhere; acking")
		w.ack(msg)
	case errors.Is(err, errShutdown):
		w.release(msg, job)
	case isPermanent(err):
		w.fail(msg, job, err.Error(), started)
	case job.Attempts < w.cfg.MaxAttempts:
		w.retry(msg, job, err)
	default:
		w.fail(msg, job, giveUp(job.Attempts, err.Error()), started)
	}
}

// execute generates the images of job under ctx and stores them, returning
// their descriptions for the record.
func (w *Worker) execute(ctx context.Context, job *pigment.Job, cancel context.CancelCauseFunc) ([]pigment.Image, error) {
	model, release, err := w.models.Get(ctx, job.Request.Model)
	if err != nil {
		return nil, err
	}
	defer release()
	req, err := w.request(ctx, job, model)
	if err != nil {
		return nil, err
	}
	req.Progress = w.progress(job, cancel)
	res, err := w.generate(ctx, model, req)
	if err != nil {
		return nil, err
	}

	// The images are stored even if a cancel arrives now: they exist.
	sctx, done := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer done()
	images := make([]pigment.Image, len(res.Images))
	for i, img := range res.Images {
		var buf bytes.Buffer
		if err := imageio.EncodePNG(&buf, img, map[string]string{"parameters": res.Parameters[i]}); err != nil {
			return nil, permanent(fmt.Errorf("encode image %d: %w", i, err))
		}
		imageID := broker.ImageID(job.ID, i)
		// Keyed by job id and index: a redelivered job overwrites the
		// same objects rather than adding copies.
		if err := w.store.Put(sctx, imageID, buf.Bytes(), map[string]string{"job": job.ID}); err != nil {
			return nil, fmt.Errorf("store image %s: %w", imageID, err)
		}
		b := img.Bounds()
		images[i] = pigment.Image{ID: imageID, Seed: job.Seed, Width: b.Dx(), Height: b.Dy()}
	}
	return images, nil
}

// generate runs model.Generate, turning a panic in the engine into a
// permanent error (STYLE.md §4: shape panics are bugs, not retryable). The
// stack goes to the log, not into the record.
func (w *Worker) generate(ctx context.Context, model *diffusion.Model, req diffusion.Request) (res *diffusion.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("panic in the diffusion engine", "panic", r, "stack", string(debug.Stack()))
			err = permanent(fmt.Errorf("internal error in the diffusion engine: %v", r))
		}
	}()
	return model.Generate(ctx, req)
}

// request builds the engine's request from the job record: the resolved
// JobRequest, the record's seed, and the init image fetched from the
// store.
func (w *Worker) request(ctx context.Context, job *pigment.Job, model *diffusion.Model) (diffusion.Request, error) {
	r := job.Request
	req := diffusion.Request{
		Prompts:            []string{r.Prompt},
		NumImagesPerPrompt: r.N,
		Width:              r.Width,
		Height:             r.Height,
		Steps:              r.Steps,
		GuidanceScale:      defaultGuidanceScale,
		GuidanceRescale:    r.GuidanceRescale,
		Seed:               job.Seed,
		RNG:                r.RNG,
		ClipSkip:           r.ClipSkip,
		Eta:                r.Eta,
	}
	if r.NegativePrompt != "" {
		req.NegativePrompts = []string{r.NegativePrompt}
	}
	if req.Steps == 0 {
		req.Steps = defaultSteps
	}
	if r.GuidanceScale != nil {
		req.GuidanceScale = *r.GuidanceScale
	}
	if r.Sampler != "" {
		k, err := sampling.ParseKind(r.Sampler)
		if err != nil {
			return req, &diffusion.FieldError{Field: "sampler", Message: err.Error()}
		}
		req.Sampler = k
	}
	if r.InitImage == "" {
		return req, nil
	}
	data, err := w.initImage(ctx, r.InitImage)
	if err != nil {
		return req, err
	}
	img, _, err := imageio.Decode(bytes.NewReader(data), 0)
	if err != nil {
		return req, &diffusion.FieldError{Field: "init_image", Message: err.Error()}
	}
	width, height := req.Width, req.Height
	if width == 0 {
		width = model.DefaultSize()
	}
	if height == 0 {
		height = model.DefaultSize()
	}
	if width <= 0 || height <= 0 || width > diffusion.MaxSide || height > diffusion.MaxSide {
		return req, &diffusion.FieldError{Field: "width", Message: fmt.Sprintf("invalid size %dx%d", width, height)}
	}
	req.InitImage = imageio.ToTensor(img, width, height)
	req.Strength = defaultStrength
	if r.Strength != nil {
		req.Strength = *r.Strength
	}
	return req, nil
}

// storedPrefix marks a record's init_image stored in the object store
// under the name that follows (the gateway stores it under
// broker.InitImageName).
const storedPrefix = "stored:"

// initImage returns the bytes of a record's init_image: "stored:<name>"
// is read from the store; a data URI or plain base64 is decoded.
func (w *Worker) initImage(ctx context.Context, ref string) ([]byte, error) {
	if name, ok := strings.CutPrefix(ref, storedPrefix); ok {
		data, _, err := w.store.Get(ctx, name)
		if errors.Is(err, assets.ErrNotFound) {
			return nil, &diffusion.FieldError{Field: "init_image", Message: fmt.Sprintf("stored init image %q not found", name)}
		}
		if err != nil {
			return nil, fmt.Errorf("read init image: %w", err)
		}
		return data, nil
	}
	if strings.HasPrefix(ref, "data:") {
		_, payload, ok := strings.Cut(ref, ",")
		if !ok {
			return nil, &diffusion.FieldError{Field: "init_image", Message: "malformed data URI"}
		}
		ref = payload
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ref))
	if err != nil {
		return nil, &diffusion.FieldError{Field: "init_image", Message: "not base64: " + err.Error()}
	}
	return data, nil
}
