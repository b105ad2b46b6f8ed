package workers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/broker"
	"github.com/pigment-ai/pigment/diffusion"
)

// heartbeat tells the server the job is alive (InProgress resets the ack
// wait) every Config.Heartbeat until ctx is done, so a long job is not
// redelivered while it runs, and a job whose worker died is redelivered
// one ack wait after its last heartbeat.
func (w *Worker) heartbeat(ctx context.Context, msg jetstream.Msg) {
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := msg.InProgress(); err != nil {
				w.log.Warn("heartbeat", "job", string(msg.Data()), "err", err)
			}
		}
	}
}

// progress returns the engine's per-step callback for job: it records the
// step in the job record (compare-and-set, only while this attempt owns
// it), publishes it on broker.ProgressSubject as JSON pigment.Progress,
// and cancels the job if the record asks for it.
func (w *Worker) progress(job *pigment.Job, cancel context.CancelCauseFunc) func(diffusion.Progress) {
	last := time.Now()
	subject := broker.ProgressSubject(job.ID)
	return func(p diffusion.Progress) {
		now := time.Now()
		w.m.stepDuration.Observe(now.Sub(last).Seconds())
		last = now

		pr := pigment.Progress{Step: p.Step, Steps: p.Steps}
		cancelRequested := false
		_, err := w.update(job.ID, func(j *pigment.Job) error {
			if !w.owns(j, job.Attempts) {
				return broker.ErrNoChange
			}
			cancelRequested = j.CancelRequested
			if j.Progress == pr {
				return broker.ErrNoChange
			}
			j.Progress = pr
			return nil
		})
		if err != nil {
			w.log.Warn("recording progress", "job", job.ID, "err", err)
		}
		if data, err := json.Marshal(pr); err == nil {
			if err := w.b.NC.Publish(subject, data); err != nil {
				w.log.Warn("publishing progress", "job", job.ID, "err", err)
			}
		}
		if cancelRequested {
			cancel(errCanceled)
		}
		if w.onProgress != nil {
			w.onProgress(job.ID, p.Step, p.Steps)
		}
	}
}

// watchJob cancels ctx with errCanceled as soon as the job's record asks
// for it (between steps the progress callback would notice too, but this
// also covers model loading and long steps), and with errSuperseded when
// another worker settled the job meanwhile.
func (w *Worker) watchJob(ctx context.Context, id string, cancel context.CancelCauseFunc) {
	updates, err := w.b.WatchJob(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("watching job record", "job", id, "err", err)
		}
		return
	}
	for j := range updates {
		switch {
		case j.CancelRequested || j.Status == pigment.StatusCanceled:
			cancel(errCanceled)
			return
		case j.Status.Terminal():
			cancel(errSuperseded)
			return
		}
	}
}

// releaseAfterGrace cancels the job with errShutdown when the worker's ctx
// is done and the job has not finished within Config.ShutdownGrace.
func (w *Worker) releaseAfterGrace(ctx, job context.Context, cancel context.CancelCauseFunc) {
	select {
	case <-job.Done():
		return
	case <-ctx.Done():
	}
	if w.cfg.ShutdownGrace > 0 {
		t := time.NewTimer(w.cfg.ShutdownGrace)
		defer t.Stop()
		select {
		case <-job.Done():
			return
		case <-t.C:
		}
	}
	cancel(errShutdown)
}
