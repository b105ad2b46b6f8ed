package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pigment-ai/pigment"
)

func TestModels(t *testing.T) {
	e := newEnv(t, Config{})
	rec := e.do(t, http.MethodGet, "/v1/models", "")
	resp := decode[listResponse[modelView]](t, rec)
	if rec.Code != http.StatusOK || resp.Object != "list" || len(resp.Data) != 1 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	m := resp.Data[0]
	if m.ID != "tiny" || m.Name != "tiny" || m.Object != "model" || m.DefaultSize != 16 || m.VAEScaleFactor != 2 ||
		m.DefaultSampler != "pndm" || m.ClipLayers != 2 || !m.Default {
		t.Errorf("model %+v", m)
	}
}

func TestSamplers(t *testing.T) {
	e := newEnv(t, Config{})
	rec := e.do(t, http.MethodGet, "/v1/samplers", "")
	resp := decode[listResponse[samplerView]](t, rec)
	if rec.Code != http.StatusOK || len(resp.Data) != 7 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	byName := map[string]samplerView{}
	for _, s := range resp.Data {
		byName[s.Name] = s
	}
	ea := byName["euler_a"]
	if ea.DisplayName != "Euler a" || !strings.Contains(strings.Join(ea.Aliases, "|"), "Euler a") ||
		!strings.Contains(strings.Join(ea.Aliases, "|"), "k_euler_a") {
		t.Errorf("euler_a: %+v", ea)
	}
	if k := byName["dpmpp_2m_karras"]; k.DisplayName != "DPM++ 2M Karras" || strings.Contains(strings.Join(k.Aliases, "|"), "DPMSolverMultistepScheduler") {
		t.Errorf("dpmpp_2m_karras: %+v (the class name means dpmpp_2m)", k)
	}
	// Every alias listed is accepted by POST /v1/jobs.
	for _, s := range resp.Data {
		for _, a := range append(s.Aliases, s.Name) {
			job := e.createJob(t, `{"prompt": "a", "sampler": "`+a+`"}`)
			if job.Request.Sampler != s.Name {
				t.Errorf("sampler %q resolved to %q, want %q", a, job.Request.Sampler, s.Name)
			}
		}
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t, Config{})
	if rec := e.do(t, http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("healthz: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(t, http.MethodGet, "/readyz", ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "ready") {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body)
	}

	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	for deadline := time.Now().Add(5 * time.Second); e.b.NC.IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client did not notice that NATS went away")
		}
	}
	checkError(t, e.do(t, http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, pigment.CodeUnavailable, "")
	if rec := e.do(t, http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("healthz without NATS: %d", rec.Code)
	}
	// A job request without NATS is the service's failure, never the client's.
	// (The client buffers while it reconnects: bound the wait.)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/jobs", strings.NewReader(`{"prompt": "a"}`))
	rec := httptest.NewRecorder()
	e.gw.Handler().ServeHTTP(rec, req)
	checkError(t, rec, http.StatusServiceUnavailable, pigment.CodeUnavailable, "")
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{})
	e.createJob(t, `{"prompt": "a"}`)
	e.createJob(t, `{"prompt": "a", "priority": "low"}`)
	e.do(t, http.MethodGet, "/v1/jobs/nope", "")
	// A consumer's pending count follows a publish asynchronously: scrape
	// until both jobs show (the request counters are exact from the start).
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rec := e.do(t, http.MethodGet, "/metrics", "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		body = rec.Body.String()
		if strings.Contains(body, `pigment_queue_depth{priority="low"} 1`) && strings.Contains(body, `pigment_queue_depth{priority="normal"} 1`) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{
		`pigment_queue_depth{priority="high"} 0`,
		`pigment_queue_depth{priority="normal"} 1`,
		`pigment_queue_depth{priority="low"} 1`,
		`pigment_jobs_submitted_total{priority="normal"} 1`,
		`pigment_http_requests_total{code="202",method="POST",route="/v1/jobs"} 2`,
		`pigment_http_requests_total{code="404",method="GET",route="/v1/jobs/:id"} 1`,
		`pigment_http_request_duration_seconds_count{method="POST",route="/v1/jobs"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
