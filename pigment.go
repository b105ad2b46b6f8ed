// Package pigment holds the domain types shared by Pigment's gateway,
// workers and command line: a generation job as clients submit it
// (JobRequest), the job record the service keeps (Job), and the error codes
// of the HTTP API.
//
// The service is drawn in ../shared/DESIGN.md: the gateway validates a
// JobRequest, stores a Job record in the JetStream KV bucket "jobs" and
// publishes the job on the JOBS stream; workers pull it, run the diffusion
// engine, store the images in the object store "images" and mark the record
// succeeded before acknowledging the message.
package pigment

import (
	"encoding/json"
	"time"
)

// JobStatus is the lifecycle state of a job.
type JobStatus string

// Job statuses. A job moves queued → running → succeeded | failed |
// canceled; a running job whose worker dies goes back to queued when the
// message is redelivered.
const (
	StatusQueued    JobStatus = "queued"
	StatusRunning   JobStatus = "running"
	StatusSucceeded JobStatus = "succeeded"
	StatusFailed    JobStatus = "failed"
	StatusCanceled  JobStatus = "canceled"
)

// Terminal reports whether s is final.
func (s JobStatus) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Priorities, the last token of the JOBS stream subject jobs.<priority>.
var Priorities = []string{"high", "normal", "low"}

// JobRequest is the body of POST /v1/jobs (DESIGN.md, contract). Pointer
// fields distinguish "omitted" from zero.
type JobRequest struct {
	Prompt          string          `json:"prompt"`
	NegativePrompt  string          `json:"negative_prompt,omitempty"`
	Model           string          `json:"model,omitempty"`
	Width           int             `json:"width,omitempty"`
	Height          int             `json:"height,omitempty"`
	Steps           int             `json:"steps,omitempty"`
	GuidanceScale   *float64        `json:"guidance_scale,omitempty"`
	Sampler         string          `json:"sampler,omitempty"`
	Seed            *int64          `json:"seed,omitempty"`
	N               int             `json:"n,omitempty"`
	ClipSkip        int             `json:"clip_skip,omitempty"`
	Eta             float64         `json:"eta,omitempty"`
	GuidanceRescale float64         `json:"guidance_rescale,omitempty"`
	RNG             string          `json:"rng,omitempty"`
	InitImage       string          `json:"init_image,omitempty"`
	Strength        *float64        `json:"strength,omitempty"`
	Output          *OutputOptions  `json:"output,omitempty"`
	Priority        string          `json:"priority,omitempty"`
	WebhookURL      string          `json:"webhook_url,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
}

// OutputOptions post-process the stored images when they are served.
type OutputOptions struct {
	Format  string `json:"format,omitempty"` // png | jpeg
	Quality int    `json:"quality,omitempty"`
	Width   int    `json:"width,omitempty"`
	Height  int    `json:"height,omitempty"`
	Fit     string `json:"fit,omitempty"` // fit | fill | stretch
}

// Progress is the denoising progress of a running job.
type Progress struct {
	Step  int `json:"step"`
	Steps int `json:"steps"`
}

// Image is one stored result image.
type Image struct {
	ID     string `json:"id"`
	URL    string `json:"url,omitempty"`
	Seed   uint64 `json:"seed"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// Job is the record of one job, kept in the KV bucket "jobs" under its ID
// and returned by GET /v1/jobs/{id}. The resolved request has every default
// filled in (model, size, steps, sampler, seed), so it can be re-run.
type Job struct {
	ID         string     `json:"id"`
	Status     JobStatus  `json:"status"`
	Request    JobRequest `json:"request"`
	Seed       uint64     `json:"seed"`
	Progress   Progress   `json:"progress"`
	Images     []Image    `json:"images"`
	Error      string     `json:"error,omitempty"`
	Attempts   int        `json:"attempts"`
	Worker     string     `json:"worker,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// CancelRequested is set by DELETE /v1/jobs/{id} on a running job; the
	// worker stops between steps and marks the job canceled.
	CancelRequested bool `json:"cancel_requested,omitempty"`
}

// Error codes of the HTTP API's error body
// {"error": {"code", "message", "field"}}.
const (
	CodeInvalid     = "invalid_request"
	CodeNotFound    = "not_found"
	CodeConflict    = "conflict"
	CodeTooLarge    = "too_large"
	CodeUnavailable = "unavailable"
	CodeInternal    = "internal"
)

// ModelInfo describes a model a worker serves; workers publish it in the KV
// bucket "models" so the gateway can validate requests without loading
// weights, and GET /v1/models lists it.
type ModelInfo struct {
	Name           string    `json:"name"`
	VAEScaleFactor int       `json:"vae_scale_factor"`
	DefaultSize    int       `json:"default_size"`
	Sampler        string    `json:"default_sampler"`
	ClipLayers     int       `json:"clip_layers"`
	UpdatedAt      time.Time `json:"updated_at"`
}
