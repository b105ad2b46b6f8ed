package gateway

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/broker"
)

// createJob handles POST /v1/jobs: 202 and the queued job, or 200 and the
// first job for a replayed Idempotency-Key.
func (s *Server) createJob(c echo.Context) error {
	key := c.Request().Header.Get("Idempotency-Key")
	if len(key) > MaxIdempotencyKeyLen {
		return invalidf("Idempotency-Key", "is %d characters long; the limit is %d", len(key), MaxIdempotencyKeyLen)
	}
	data, err := s.readBody(c)
	if err != nil {
		return err
	}
	var body jobBody
	if err := decodeObject(data, &body, "", true); err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, err := s.resolve(ctx, &body)
	if err != nil {
		return err
	}
	job, created, err := s.submit(ctx, r, key)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, s.cfg.PublicURL+"/v1/jobs/"+job.ID)
	status := http.StatusAccepted
	if !created {
		status = http.StatusOK
	}
	return c.JSON(status, s.view(job))
}

// submit stores r's init image, if any, and submits a new job for r. For an
// Idempotency-Key seen before it returns the first job and created=false.
func (s *Server) submit(ctx context.Context, r *resolved, idempotencyKey string) (_ *pigment.Job, created bool, err error) {
	job := &pigment.Job{
		ID:        newJobID(),
		Status:    pigment.StatusQueued,
		Request:   r.req,
		Seed:      r.seed,
		Progress:  pigment.Progress{Step: 0, Steps: r.req.Steps},
		Images:    []pigment.Image{},
		CreatedAt: time.Now().UTC(),
	}
	if r.initImage != nil {
		name := broker.InitImageName(job.ID)
		if err := s.images.Put(ctx, name, r.initImage, map[string]string{"job": job.ID}); err != nil {
			return nil, false, fmt.Errorf("storing the init image: %w", err)
		}
		// The record keeps a reference, not megabytes of base64.
		job.Request.InitImage = "stored:" + name
		defer func() {
			if err != nil || !created {
				if derr := s.images.Delete(context.WithoutCancel(ctx), name); derr != nil {
					s.log.Warn("deleting an unused init image", "name", name, "err", derr)
				}
			}
		}()
	}
	// A replay racing the first request can find the key before the first
	// record exists; wait for it briefly.
	for attempt := 0; ; attempt++ {
		first, created, err := s.b.Submit(ctx, job, job.Request.Priority, idempotencyKey)
		switch {
		case err == nil:
			if created {
				s.metrics.submitted.WithLabelValues(job.Request.Priority).Inc()
			}
			return first, created, nil
		case idempotencyKey == "" || !errors.Is(err, broker.ErrNotFound):
			return nil, false, fmt.Errorf("submitting job: %w", err)
		case attempt == 20:
			return nil, false, errorf(ErrConflict, "Idempotency-Key", "a request with this Idempotency-Key is still being processed, or failed before its job was stored; retry later or use a new key")
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newJobID returns a UUIDv7 (RFC 9562): a millisecond timestamp then 74
// random bits, so ids sort by creation time and never collide in practice.
func newJobID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = crand.Read(b[6:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x70  // version 7
	b[8] = b[8]&0x3f | 0x80  // variant 10
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// validID reports whether id can name a job or an image: letters, digits,
// '-' and '_' (ids are UUIDs; image ids add "-<n>" or "-init"). Anything
// else cannot exist, and would not be a valid KV key.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// jobID returns the :id parameter, or a not-found error.
func jobID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !validID(id) {
		return "", errorf(ErrNotFound, "", "no such job")
	}
	return id, nil
}

// view returns the job as the API shows it: image URLs filled in from
// Config.PublicURL and the job's output options.
func (s *Server) view(j *pigment.Job) *pigment.Job {
	v := *j
	v.Images = make([]pigment.Image, len(j.Images))
	query := imageQuery(j.Request.Output)
	for i, img := range j.Images {
		img.URL = imageURL(s.cfg.PublicURL, img.ID, query)
		v.Images[i] = img
	}
	return &v
}

func imageURL(base, id, query string) string {
	u := base + "/v1/images/" + id
	if query != "" {
		u += "?" + query
	}
	return u
}

// getJob handles GET /v1/jobs/:id.
func (s *Server) getJob(c echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, _, err := s.b.GetJob(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.view(j))
}

// cancelJob handles DELETE /v1/jobs/:id: a queued job is canceled at once;
// a running one gets CancelRequested, and its worker stops between steps
// and marks it canceled; a finished one is a conflict. The answer is the
// job after the change.
func (s *Server) cancelJob(c echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, err := s.b.UpdateJob(c.Request().Context(), id, func(j *pigment.Job) error {
		switch j.Status {
		case pigment.StatusQueued:
			now := time.Now().UTC()
			j.Status, j.FinishedAt, j.CancelRequested = pigment.StatusCanceled, &now, true
		case pigment.StatusRunning:
			if j.CancelRequested {
				return broker.ErrNoChange
			}
			j.CancelRequested = true
		default:
			return errorf(ErrConflict, "", "job %s has already %s; only queued or running jobs can be canceled", j.ID, finished(j.Status))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.view(j))
}

// finished words a terminal status for "job … has already …".
func finished(s pigment.JobStatus) string {
	switch s {
	case pigment.StatusSucceeded:
		return "succeeded"
	case pigment.StatusFailed:
		return "failed"
	case pigment.StatusCanceled:
		return "been canceled"
	}
	return "finished (" + string(s) + ")"
}

// progressEvent is the data of an SSE progress event.
type progressEvent struct {
	Step   int               `json:"step"`
	Steps  int               `json:"steps"`
	Status pigment.JobStatus `json:"status"`
}

// jobEvents handles GET /v1/jobs/:id/events, a Server-Sent Events stream
// read from the job record's KV watch:
//
//	event: progress   data {"step", "steps", "status"}  on every change of these
//	event: status     data the job, as GET returns it     once, when the job ends; then the stream ends
//
// A comment line keeps idle connections open every Config.KeepAlive. The
// stream also ends when the client goes away or the server shuts down;
// EventSource clients then reconnect, and the first event tells them the
// current state again.
func (s *Server) jobEvents(c echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	if _, _, err := s.b.GetJob(ctx, id); err != nil {
		return err // 404 before the stream starts
	}
	updates, err := s.b.WatchJob(ctx, id)
	if err != nil {
		return err
	}

	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(event string, data any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	w.Flush()

	keepAlive := time.NewTicker(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	var last *progressEvent
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case j, ok := <-updates:
			if !ok {
				return nil // the watch ended early; the client reconnects
			}
			if j.Status.Terminal() {
				if err := send("status", s.view(j)); err != nil {
					s.log.Debug("sse: writing the status event", "job", id, "err", err)
				}
				return nil
			}
			ev := progressEvent{Step: j.Progress.Step, Steps: j.Progress.Steps, Status: j.Status}
			if last != nil && *last == ev {
				continue // a change of something else (attempts, worker)
			}
			last = &ev
			if err := send("progress", ev); err != nil {
				s.log.Debug("sse: writing a progress event", "job", id, "err", err)
				return nil
			}
		}
	}
}
