package gateway

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/pigment-ai/pigment"
)

// FuzzCreateJob: no body makes POST /v1/jobs answer 5xx or panic (the
// middleware would turn a panic into a 500); every answer is a job or an
// error in the contract's shape.
func FuzzCreateJob(f *testing.F) {
	for _, tc := range validationCases(f) {
		f.Add(tc.body)
	}
	f.Add(`{"prompt": "a"}`)
	f.Add(`{"prompt": "a", "model": "tiny", "width": 24, "height": 8, "steps": 30, "guidance_scale": 0, "sampler": "Euler a",
		"seed": 42, "n": 3, "clip_skip": 2, "eta": 0.5, "guidance_rescale": 0.7, "rng": "cuda",
		"output": {"format": "jpeg", "quality": 80, "width": 12, "height": 4, "fit": "fill"},
		"priority": "high", "webhook_url": "https://example.com/h", "metadata": {"k": [1, "v"]}}`)
	f.Add(`{"prompt": "a", "init_image": "` + pngB64(f) + `", "strength": 0.3}`)
	e := newEnv(f, Config{MaxBodyBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, body string) {
		rec := e.do(t, http.MethodPost, "/v1/jobs", body)
		if rec.Code >= 500 {
			t.Fatalf("%d %s for body %q", rec.Code, rec.Body, body)
		}
		if rec.Code == http.StatusAccepted {
			var j pigment.Job
			if err := json.Unmarshal(rec.Body.Bytes(), &j); err != nil || j.ID == "" || j.Status != pigment.StatusQueued {
				t.Fatalf("accepted, but the body is %s (%v)", rec.Body, err)
			}
			return
		}
		var eb errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("%d with body %s (%v), want the error shape", rec.Code, rec.Body, err)
		}
	})
}
