package workers

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/broker"
)

// The ack policy. A message is settled only after the job record says
// what happened to it, so a crash between the two leaves a message that
// is redelivered and finds the record settled (begin skips it):
//
//	outcome                 record                          message
//	succeeded               succeeded, images               DoubleAck
//	canceled                canceled                        Ack
//	already settled         (unchanged)                     Ack
//	permanent failure       failed, error                   Term
//	out of attempts         failed, "gave up after N …"     Term
//	transient failure       queued, error                   NakWithDelay(backoff)
//	worker shutting down    queued, attempt not charged     Nak (redelivered at once)
//	record write failed     (unchanged)                     NakWithDelay(backoff)
//
// Record writes go through broker.UpdateJob (compare-and-set), so a
// gateway's CancelRequested written meanwhile is never lost, and settle
// the record only while this worker's attempt owns it.

// Timeouts of the writes that settle a job; they run on their own
// context so that a worker shutting down still settles what it ran.
const (
	recordTimeout = 10 * time.Second
	ackTimeout    = 5 * time.Second
	storeTimeout  = time.Minute
	maxErrorLen   = 2000 // bytes of an error kept in a record
)

// update applies fn to the record of job id (broker.UpdateJob).
func (w *Worker) update(id string, fn func(*pigment.Job) error) (*pigment.Job, error) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	return w.b.UpdateJob(ctx, id, fn)
}

// owns reports whether record j is still the attempt this worker runs:
// another worker may have taken the job over after a missed heartbeat.
func (w *Worker) owns(j *pigment.Job, attempt int) bool {
	return j.Status == pigment.StatusRunning && j.Worker == w.cfg.Name && j.Attempts == attempt
}

// retryDelay is the redelivery delay after a transient failure of
// attempt: RetryDelay doubled per attempt, at most a minute.
func (w *Worker) retryDelay(attempt int) time.Duration {
	d := w.cfg.RetryDelay
	for i := 1; i < attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// succeed records the images and acks the message.
func (w *Worker) succeed(msg jetstream.Msg, job *pigment.Job, images []pigment.Image, started time.Time) {
	now := time.Now().UTC()
	wrote := false
	j, err := w.update(job.ID, func(j *pigment.Job) error {
		if j.Status.Terminal() {
			return broker.ErrNoChange // a duplicate delivery finished first
		}
		wrote = true
		j.Status, j.Images, j.Error, j.FinishedAt = pigment.StatusSucceeded, images, "", &now
		j.Progress.Step = j.Progress.Steps
		return nil
	})
	if err != nil {
		// The images are stored but the record does not say so: try the
		// job again rather than ack a job whose record is not settled.
		w.log.Error("recording success", "job", job.ID, "err", err)
		w.nakDelay(msg, w.retryDelay(job.Attempts))
		return
	}
	if wrote {
		w.log.Info("job succeeded", "job", job.ID, "images", len(images), "duration", time.Since(started))
		w.m.jobs.WithLabelValues(string(pigment.StatusSucceeded)).Inc()
		w.m.jobDuration.Observe(time.Since(started).Seconds())
		w.notify(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		// Redelivered later, it finds the record settled and is acked.
		w.log.Warn("ack", "job", job.ID, "err", err)
	}
}

// cancelJob records the job canceled and acks the message.
func (w *Worker) cancelJob(msg jetstream.Msg, job *pigment.Job, started time.Time) {
	now := time.Now().UTC()
	wrote := false
	_, err := w.update(job.ID, func(j *pigment.Job) error {
		if j.Status.Terminal() {
			return broker.ErrNoChange
		}
		wrote = true
		j.Status, j.FinishedAt = pigment.StatusCanceled, &now
		return nil
	})
	if err != nil {
		w.log.Error("recording cancel", "job", job.ID, "err", err)
		w.nakDelay(msg, w.retryDelay(1)) // redelivered, begin sees CancelRequested
		return
	}
	if wrote {
		w.log.Info("job canceled", "job", job.ID)
		w.m.jobs.WithLabelValues(string(pigment.StatusCanceled)).Inc()
		w.m.jobDuration.Observe(time.Since(started).Seconds())
	}
	w.ack(msg)
}

// fail records the job failed with reason and terminates the message.
func (w *Worker) fail(msg jetstream.Msg, job *pigment.Job, reason string, started time.Time) {
	now := time.Now().UTC()
	reason = truncate(reason)
	wrote := false
	j, err := w.update(job.ID, func(j *pigment.Job) error {
		if j.Status.Terminal() {
			return broker.ErrNoChange
		}
		wrote = true
		j.Status, j.Error, j.FinishedAt = pigment.StatusFailed, reason, &now
		return nil
	})
	if err != nil {
		w.log.Error("recording failure", "job", job.ID, "err", err)
		w.nakDelay(msg, w.retryDelay(job.Attempts))
		return
	}
	if wrote {
		w.log.Warn("job failed", "job", job.ID, "attempt", job.Attempts, "err", reason)
		w.m.jobs.WithLabelValues(string(pigment.StatusFailed)).Inc()
		w.m.jobDuration.Observe(time.Since(started).Seconds())
		w.notify(j)
	}
	w.term(msg, reason)
}

// retry records a transient failure, puts the job back to queued and
// asks for redelivery after the backoff.
func (w *Worker) retry(msg jetstream.Msg, job *pigment.Job, cause error) {
	w.log.Warn("job attempt failed; will retry", "job", job.ID, "attempt", job.Attempts, "err", cause)
	_, err := w.update(job.ID, func(j *pigment.Job) error {
		if !w.owns(j, job.Attempts) {
			return broker.ErrNoChange
		}
		j.Status, j.Error, j.Worker = pigment.StatusQueued, truncate(cause.Error()), ""
		return nil
	})
	if err != nil {
		w.log.Error("recording retry", "job", job.ID, "err", err)
	}
	w.nakDelay(msg, w.retryDelay(job.Attempts))
}

// release hands a job this worker cannot finish (shutting down) to
// another worker at once: the record goes back to queued without charging
// the attempt, then the message is Nak'd. The record is written first so
// that the next worker's "running" cannot be overwritten by it.
func (w *Worker) release(msg jetstream.Msg, job *pigment.Job) {
	w.log.Info("releasing job: worker shutting down", "job", job.ID)
	_, err := w.update(job.ID, func(j *pigment.Job) error {
		if !w.owns(j, job.Attempts) {
			return broker.ErrNoChange
		}
		j.Status, j.Attempts, j.Worker, j.StartedAt = pigment.StatusQueued, job.Attempts-1, "", nil
		j.Progress.Step = 0
		return nil
	})
	if err != nil {
		w.log.Error("recording release", "job", job.ID, "err", err)
	}
	if err := msg.Nak(); err != nil {
		w.log.Warn("nak", "job", job.ID, "err", err)
	}
}

func (w *Worker) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack", "job", string(msg.Data()), "err", err)
	}
}

func (w *Worker) nakDelay(msg jetstream.Msg, d time.Duration) {
	if err := msg.NakWithDelay(d); err != nil {
		w.log.Warn("nak", "job", string(msg.Data()), "err", err)
	}
}

func (w *Worker) term(msg jetstream.Msg, reason string) {
	if len(reason) > 256 {
		reason = strings.ToValidUTF8(reason[:256], "")
	}
	if err := msg.TermWithReason(reason); err != nil {
		w.log.Warn("term", "job", string(msg.Data()), "err", err)
	}
}

func truncate(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorLen], "") + "…"
}
