package gateway

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/broker"
)

func TestCreateJobDefaults(t *testing.T) {
	e := newEnv(t, Config{})
	rec := e.do(t, http.MethodPost, "/v1/jobs", `{"prompt": "a red fox"}`)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
	}
	job := decode[pigment.Job](t, rec)
	if loc := rec.Header().Get("Location"); loc != "/v1/jobs/"+job.ID {
		t.Errorf("Location %q, want /v1/jobs/%s", loc, job.ID)
	}
	if job.Status != pigment.StatusQueued || job.Progress != (pigment.Progress{Step: 0, Steps: 20}) {
		t.Errorf("status %s, progress %+v", job.Status, job.Progress)
	}
	if job.Seed >= 1<<32 || job.Request.Seed == nil || uint64(*job.Request.Seed) != job.Seed {
		t.Errorf("seed %d, request seed %v: want one random uint32 in both", job.Seed, job.Request.Seed)
	}
	if job.Images == nil || job.CreatedAt.IsZero() {
		t.Errorf("images %v (want []), created_at %v", job.Images, job.CreatedAt)
	}
	seed := *job.Request.Seed
	guidance := 7.5
	want := pigment.JobRequest{
		Prompt: "a red fox", Model: "tiny", Width: 16, Height: 16, Steps: 20, GuidanceScale: &guidance,
		Sampler: "pndm", Seed: &seed, N: 1, ClipSkip: 1, RNG: "cpu", Priority: "normal",
	}
	if !reflect.DeepEqual(job.Request, want) {
		t.Errorf("resolved request\n got %+v\nwant %+v", job.Request, want)
	}

	// The record is in the KV bucket as returned, and the job on jobs.normal.
	stored, _, err := e.b.GetJob(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored.Request, job.Request) || stored.Status != pigment.StatusQueued {
		t.Errorf("stored record %+v differs from the response %+v", stored, job)
	}
	msg, err := e.b.Stream.GetLastMsgForSubject(context.Background(), broker.Subject("normal"))
	if err != nil {
		t.Fatalf("no message on jobs.normal: %v", err)
	}
	if string(msg.Data) != job.ID {
		t.Errorf("message on jobs.normal is %q, want the job id %q", msg.Data, job.ID)
	}

	// GET returns the same job.
	got := decode[pigment.Job](t, e.do(t, http.MethodGet, "/v1/jobs/"+job.ID, ""))
	if got.ID != job.ID || !reflect.DeepEqual(got.Request, job.Request) {
		t.Errorf("GET: %+v", got)
	}
}

func TestCreateJobAllFields(t *testing.T) {
	e := newEnv(t, Config{PublicURL: "https://pigment.example.com/"})
	body := `{
		"prompt": "a lighthouse", "negative_prompt": "blurry", "model": "tiny",
		"width": 24, "height": 8, "steps": 30, "guidance_scale": 0, "sampler": "Euler a",
		"seed": 9007199254740993, "n": 3, "clip_skip": 2, "eta": 0.5, "guidance_rescale": 0.7,
		"rng": "CUDA", "output": {"format": "jpg", "quality": 80, "width": 12, "height": 4, "fit": "fill"},
		"priority": "high", "webhook_url": "https://hooks.example.com/done?x=1",
		"metadata": {"user": "ada", "tags": ["a", 1, null]}
	}`
	job := e.createJob(t, body)
	seed, guidance := int64(9007199254740993), 0.0
	want := pigment.JobRequest{
		Prompt: "a lighthouse", NegativePrompt: "blurry", Model: "tiny", Width: 24, Height: 8, Steps: 30,
		GuidanceScale: &guidance, Sampler: "euler_a", Seed: &seed, N: 3, ClipSkip: 2, Eta: 0.5,
		GuidanceRescale: 0.7, RNG: "cuda",
		Output:   &pigment.OutputOptions{Format: "jpeg", Quality: 80, Width: 12, Height: 4, Fit: "fill"},
		Priority: "high", WebhookURL: "https://hooks.example.com/done?x=1",
		Metadata: json.RawMessage(`{"user":"ada","tags":["a",1,null]}`),
	}
	if !reflect.DeepEqual(job.Request, want) {
		t.Errorf("resolved request\n got %+v\nwant %+v", job.Request, want)
	}
	if job.Seed != uint64(seed) {
		t.Errorf("seed %d, want %d", job.Seed, seed)
	}
	if n := e.streamMsgs(t, broker.Subject("high")); n != 1 {
		t.Errorf("%d messages on jobs.high, want 1", n)
	}

	// Image URLs carry the public URL and the output options.
	e.update(t, job.ID, func(j *pigment.Job) {
		j.Status = pigment.StatusSucceeded
		j.Images = []pigment.Image{{ID: broker.ImageID(j.ID, 0), Seed: j.Seed, Width: 24, Height: 8}}
	})
	got := decode[pigment.Job](t, e.do(t, http.MethodGet, "/v1/jobs/"+job.ID, ""))
	wantURL := "https://pigment.example.com/v1/images/" + job.ID + "-0?fit=fill&format=jpeg&h=4&quality=80&w=12"
	if len(got.Images) != 1 || got.Images[0].URL != wantURL {
		t.Errorf("images %+v, want url %s", got.Images, wantURL)
	}
}

// pngB64 is a valid 20×12 PNG in base64.
func pngB64(t testing.TB) string { return base64.StdEncoding.EncodeToString(testPNG(t, 20, 12)) }

type errorCase struct {
	name   string
	body   string
	status int
	code   string
	field  string
}

// validationCases are bad POST /v1/jobs bodies; they also seed FuzzCreateJob.
func validationCases(t testing.TB) []errorCase {
	img := pngB64(t)
	const bad = http.StatusBadRequest
	const inv = pigment.CodeInvalid
	return []errorCase{
		{"empty body", ``, bad, inv, ""},
		{"array", `[]`, bad, inv, ""},
		{"null", `null`, bad, inv, ""},
		{"string", `"a cat"`, bad, inv, ""},
		{"malformed", `{"prompt": "a cat"`, bad, inv, ""},
		{"syntax error", `{"prompt": a cat}`, bad, inv, ""},
		{"trailing data", `{"prompt": "a cat"} {}`, bad, inv, ""},
		{"unknown field", `{"prompt": "a cat", "colour": "red"}`, bad, inv, "colour"},
		{"unknown output field", `{"prompt": "a", "output": {"format": "png", "dpi": 300}}`, bad, inv, "output.dpi"},
		{"prompt missing", `{"steps": 10}`, bad, inv, "prompt"},
		{"prompt empty", `{"prompt": ""}`, bad, inv, "prompt"},
		{"prompt blank", `{"prompt": " \n\t"}`, bad, inv, "prompt"},
		{"prompt null", `{"prompt": null}`, bad, inv, "prompt"},
		{"prompt number", `{"prompt": 5}`, bad, inv, "prompt"},
		{"prompt array", `{"prompt": ["a", "b"]}`, bad, inv, "prompt"},
		{"prompt too long", `{"prompt": "` + strings.Repeat("é", MaxPromptLength+1) + `"}`, bad, inv, "prompt"},
		{"negative prompt too long", `{"prompt": "a", "negative_prompt": "` + strings.Repeat("x", MaxPromptLength+1) + `"}`, bad, inv, "negative_prompt"},
		{"unknown model", `{"prompt": "a", "model": "sdxl"}`, bad, inv, "model"},
		{"model with wildcard", `{"prompt": "a", "model": "ti*"}`, bad, inv, "model"},
		{"model number", `{"prompt": "a", "model": 1}`, bad, inv, "model"},
		{"width odd", `{"prompt": "a", "width": 15}`, bad, inv, "width"},
		{"width zero", `{"prompt": "a", "width": 0}`, bad, inv, "width"},
		{"width negative", `{"prompt": "a", "width": -16}`, bad, inv, "width"},
		{"width too large", `{"prompt": "a", "width": 2050}`, bad, inv, "width"},
		{"width fraction", `{"prompt": "a", "width": 16.5}`, bad, inv, "width"},
		{"width string", `{"prompt": "a", "width": "16"}`, bad, inv, "width"},
		{"width huge", `{"prompt": "a", "width": 1e100}`, bad, inv, "width"},
		{"height too large", `{"prompt": "a", "height": 4096}`, bad, inv, "height"},
		{"steps zero", `{"prompt": "a", "steps": 0}`, bad, inv, "steps"},
		{"steps too many", `{"prompt": "a", "steps": 151}`, bad, inv, "steps"},
		{"steps bool", `{"prompt": "a", "steps": true}`, bad, inv, "steps"},
		{"guidance negative", `{"prompt": "a", "guidance_scale": -1}`, bad, inv, "guidance_scale"},
		{"guidance too large", `{"prompt": "a", "guidance_scale": 100.5}`, bad, inv, "guidance_scale"},
		{"guidance overflow", `{"prompt": "a", "guidance_scale": 1e400}`, bad, inv, "guidance_scale"},
		{"cfg_scale too large", `{"prompt": "a", "cfg_scale": 101}`, bad, inv, "cfg_scale"},
		{"cfg_scale and guidance differ", `{"prompt": "a", "cfg_scale": 5, "guidance_scale": 6}`, bad, inv, "cfg_scale"},
		{"sampler unknown", `{"prompt": "a", "sampler": "heun++"}`, bad, inv, "sampler"},
		{"sampler number", `{"prompt": "a", "sampler": 2}`, bad, inv, "sampler"},
		{"seed -2", `{"prompt": "a", "seed": -2}`, bad, inv, "seed"},
		{"seed 2^63", `{"prompt": "a", "seed": 9223372036854775808}`, bad, inv, "seed"},
		{"seed fraction", `{"prompt": "a", "seed": 1.5}`, bad, inv, "seed"},
		{"n zero", `{"prompt": "a", "n": 0}`, bad, inv, "n"},
		{"n too many", `{"prompt": "a", "n": 17}`, bad, inv, "n"},
		{"clip_skip too deep", `{"prompt": "a", "clip_skip": 3}`, bad, inv, "clip_skip"},
		{"clip_skip negative", `{"prompt": "a", "clip_skip": -1}`, bad, inv, "clip_skip"},
		{"eta negative", `{"prompt": "a", "eta": -0.1}`, bad, inv, "eta"},
		{"eta too large", `{"prompt": "a", "eta": 10.5}`, bad, inv, "eta"},
		{"guidance_rescale too large", `{"prompt": "a", "guidance_rescale": 1.01}`, bad, inv, "guidance_rescale"},
		{"rng gpu", `{"prompt": "a", "rng": "gpu"}`, bad, inv, "rng"},
		{"strength without init_image", `{"prompt": "a", "strength": 0.5}`, bad, inv, "strength"},
		{"strength zero", `{"prompt": "a", "init_image": "` + img + `", "strength": 0}`, bad, inv, "strength"},
		{"strength above one", `{"prompt": "a", "init_image": "` + img + `", "strength": 1.5}`, bad, inv, "strength"},
		{"init_image bad base64", `{"prompt": "a", "init_image": "not*base64!"}`, bad, inv, "init_image"},
		{"init_image not an image", `{"prompt": "a", "init_image": "` + base64.StdEncoding.EncodeToString([]byte("hello, world")) + `"}`, bad, inv, "init_image"},
		{"init_image truncated", `{"prompt": "a", "init_image": "` + base64.StdEncoding.EncodeToString(testPNG(t, 20, 12)[:60]) + `"}`, bad, inv, "init_image"},
		{"init_image 1x1", `{"prompt": "a", "init_image": "` + base64.StdEncoding.EncodeToString(testPNG(t, 1, 1)) + `"}`, bad, inv, "init_image"},
		{"init_image wider than MaxSide", `{"prompt": "a", "init_image": "` + base64.StdEncoding.EncodeToString(testPNG(t, 2100, 2)) + `"}`, bad, inv, "init_image"},
		{"init_image bomb", `{"prompt": "a", "init_image": "` + base64.StdEncoding.EncodeToString(bombPNG(t, 100000, 100000)) + `"}`, http.StatusRequestEntityTooLarge, pigment.CodeTooLarge, "init_image"},
		{"init_image data URI not base64", `{"prompt": "a", "init_image": "data:image/png,abc"}`, bad, inv, "init_image"},
		{"init_image data URI text", `{"prompt": "a", "init_image": "data:text/plain;base64,` + img + `"}`, bad, inv, "init_image"},
		{"init_image data URI no comma", `{"prompt": "a", "init_image": "data:image/png;base64"}`, bad, inv, "init_image"},
		{"output string", `{"prompt": "a", "output": "png"}`, bad, inv, "output"},
		{"output format gif", `{"prompt": "a", "output": {"format": "gif"}}`, bad, inv, "output.format"},
		{"output quality zero", `{"prompt": "a", "output": {"format": "jpeg", "quality": 0}}`, bad, inv, "output.quality"},
		{"output quality too high", `{"prompt": "a", "output": {"format": "jpeg", "quality": 101}}`, bad, inv, "output.quality"},
		{"output quality for png", `{"prompt": "a", "output": {"format": "png", "quality": 90}}`, bad, inv, "output.quality"},
		{"output width too large", `{"prompt": "a", "output": {"width": 4097}}`, bad, inv, "output.width"},
		{"output height string", `{"prompt": "a", "output": {"height": "64"}}`, bad, inv, "output.height"},
		{"output fit unknown", `{"prompt": "a", "output": {"width": 8, "fit": "crop"}}`, bad, inv, "output.fit"},
		{"output fill needs both sides", `{"prompt": "a", "output": {"width": 8, "fit": "fill"}}`, bad, inv, "output.fit"},
		{"priority urgent", `{"prompt": "a", "priority": "urgent"}`, bad, inv, "priority"},
		{"webhook relative", `{"prompt": "a", "webhook_url": "/hook"}`, bad, inv, "webhook_url"},
		{"webhook ftp", `{"prompt": "a", "webhook_url": "ftp://example.com/x"}`, bad, inv, "webhook_url"},
		{"webhook malformed", `{"prompt": "a", "webhook_url": "http://[::1"}`, bad, inv, "webhook_url"},
		{"metadata too large", `{"prompt": "a", "metadata": {"x": "` + strings.Repeat("m", MaxMetadataBytes) + `"}}`, http.StatusRequestEntityTooLarge, pigment.CodeTooLarge, "metadata"},
	}
}

func TestCreateJobValidation(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tc := range validationCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, http.MethodPost, "/v1/jobs", tc.body)
			checkError(t, rec, tc.status, tc.code, tc.field)
		})
	}
	if n := e.streamMsgs(t, "jobs.>"); n != 0 {
		t.Errorf("%d jobs queued by invalid requests", n)
	}
}

// checkError asserts an error response in the contract's shape.
func checkError(t testing.TB, rec *httptest.ResponseRecorder, status int, code, field string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	body := decode[map[string]map[string]string](t, rec)
	d := body["error"]
	if d["code"] != code || d["field"] != field || d["message"] == "" {
		t.Errorf("error %v, want code %q field %q and a message", d, code, field)
	}
}

func TestCreateJobLimits(t *testing.T) {
	e := newEnv(t, Config{MaxBodyBytes: 1024, MaxInitPixels: 100})
	t.Run("body too large", func(t *testing.T) {
		rec := e.do(t, http.MethodPost, "/v1/jobs", `{"prompt": "`+strings.Repeat("a", 2000)+`"}`)
		checkError(t, rec, http.StatusRequestEntityTooLarge, pigment.CodeTooLarge, "")
	})
	t.Run("chunked body too large", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/v1/jobs", strings.NewReader(`{"prompt": "`+strings.Repeat("a", 2000)+`"}`))
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		e.gw.Handler().ServeHTTP(rec, req)
		checkError(t, rec, http.StatusRequestEntityTooLarge, pigment.CodeTooLarge, "")
	})
	t.Run("init image over the pixel limit", func(t *testing.T) {
		rec := e.do(t, http.MethodPost, "/v1/jobs", `{"prompt": "a", "init_image": "`+pngB64(t)+`"}`)
		checkError(t, rec, http.StatusRequestEntityTooLarge, pigment.CodeTooLarge, "init_image")
	})
	t.Run("idempotency key too long", func(t *testing.T) {
		rec := e.do(t, http.MethodPost, "/v1/jobs", `{"prompt": "a"}`, "Idempotency-Key", strings.Repeat("k", 256))
		checkError(t, rec, http.StatusBadRequest, pigment.CodeInvalid, "Idempotency-Key")
	})
}

func TestCreateJobModels(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	t.Run("no model served", func(t *testing.T) {
		if err := e.b.Models.Purge(ctx, "tiny"); err != nil {
			t.Fatal(err)
		}
		defer e.b.PublishModel(ctx, tinyModel)
		rec := e.do(t, http.MethodPost, "/v1/jobs", `{"prompt": "a"}`)
		checkError(t, rec, http.StatusServiceUnavailable, pigment.CodeUnavailable, "model")
	})
	t.Run("several models, none named", func(t *testing.T) {
		other := pigment.ModelInfo{Name: "wide", VAEScaleFactor: 8, DefaultSize: 64, Sampler: "Euler", ClipLayers: 12}
		if err := e.b.PublishModel(ctx, other); err != nil {
			t.Fatal(err)
		}
		defer e.b.Models.Purge(ctx, "wide")
		rec := e.do(t, http.MethodPost, "/v1/jobs", `{"prompt": "a"}`)
		checkError(t, rec, http.StatusBadRequest, pigment.CodeInvalid, "model")
		job := e.createJob(t, `{"prompt": "a", "model": "wide"}`)
		if r := job.Request; r.Width != 64 || r.Height != 64 || r.Sampler != "euler" {
			t.Errorf("model wide: %dx%d, sampler %q; want its defaults 64x64, euler", r.Width, r.Height, r.Sampler)
		}
		rec = e.do(t, http.MethodPost, "/v1/jobs", `{"prompt": "a", "model": "wide", "width": 60}`)
		checkError(t, rec, http.StatusBadRequest, pigment.CodeInvalid, "width")
	})
	t.Run("default model not served", func(t *testing.T) {
		e2 := &env{b: e.b, gw: New(e.b, Config{DefaultModel: "gone", Logger: e.gw.log}, nil)}
		rec := e2.do(t, http.MethodPost, "/v1/jobs", `{"prompt": "a"}`)
		checkError(t, rec, http.StatusServiceUnavailable, pigment.CodeUnavailable, "model")
	})
}

func TestCreateJobInitImage(t *testing.T) {
	e := newEnv(t, Config{})
	data := testPNG(t, 21, 12) // fitted to 20x12 by the VAE scale factor 2
	for _, tc := range []struct{ name, value string }{
		{"base64", base64.StdEncoding.EncodeToString(data)},
		{"unpadded url-safe base64", base64.RawURLEncoding.EncodeToString(data)},
		{"data URI", "data:image/png;base64," + base64.StdEncoding.EncodeToString(data)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := e.createJob(t, `{"prompt": "a", "init_image": "`+tc.value+`"}`)
			name := broker.InitImageName(job.ID)
			if job.Request.InitImage != "stored:"+name {
				t.Errorf("init_image %q, want stored:%s", job.Request.InitImage, name)
			}
			if r := job.Request; r.Width != 20 || r.Height != 12 || r.Strength == nil || *r.Strength != 0.8 {
				t.Errorf("size %dx%d strength %v; want the image's 20x12 and 0.8", r.Width, r.Height, r.Strength)
			}
			stored, _, err := e.images.Get(context.Background(), name)
			if err != nil || string(stored) != string(data) {
				t.Errorf("stored init image: %d bytes, %v; want the %d bytes sent", len(stored), err, len(data))
			}
		})
	}
	t.Run("explicit size and strength", func(t *testing.T) {
		job := e.createJob(t, `{"prompt": "a", "width": 32, "height": 32, "strength": 1, "init_image": "`+base64.StdEncoding.EncodeToString(data)+`"}`)
		if r := job.Request; r.Width != 32 || r.Height != 32 || *r.Strength != 1 {
			t.Errorf("size %dx%d strength %v", r.Width, r.Height, *r.Strength)
		}
	})
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t, Config{})
	body := `{"prompt": "a", "init_image": "` + pngB64(t) + `"}`
	first := e.do(t, http.MethodPost, "/v1/jobs", body, "Idempotency-Key", "order-42")
	if first.Code != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	second := e.do(t, http.MethodPost, "/v1/jobs", body, "Idempotency-Key", "order-42")
	if second.Code != http.StatusOK {
		t.Fatalf("replay: %d %s, want 200", second.Code, second.Body)
	}
	j1, j2 := decode[pigment.Job](t, first), decode[pigment.Job](t, second)
	if j1.ID != j2.ID || !reflect.DeepEqual(j1, j2) {
		t.Errorf("replay returned %+v, want the first job %+v", j2, j1)
	}
	if loc := second.Header().Get("Location"); loc != "/v1/jobs/"+j1.ID {
		t.Errorf("replay Location %q", loc)
	}
	if n := e.streamMsgs(t, "jobs.>"); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
	// The replay's own init image was removed again.
	lister, err := e.b.Images.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(lister) != 1 || lister[0].Name != broker.InitImageName(j1.ID) {
		t.Errorf("objects %d, want only the first job's init image", len(lister))
	}
	// Another key is another job.
	if j3 := e.createJob(t, body, "Idempotency-Key", "order-43"); j3.ID == j1.ID {
		t.Error("a new key returned the old job")
	}
}

func TestGetJobNotFound(t *testing.T) {
	e := newEnv(t, Config{})
	for _, path := range []string{"/v1/jobs/0190d1e2-0000-7000-8000-000000000000", "/v1/jobs/a.b", "/v1/jobs/%2A", "/v1/jobs/0190d1e2/events"} {
		checkError(t, e.do(t, http.MethodGet, path, ""), http.StatusNotFound, pigment.CodeNotFound, "")
	}
	checkError(t, e.do(t, http.MethodDelete, "/v1/jobs/nope", ""), http.StatusNotFound, pigment.CodeNotFound, "")
	checkError(t, e.do(t, http.MethodGet, "/v1/nothing", ""), http.StatusNotFound, pigment.CodeNotFound, "")
	checkError(t, e.do(t, http.MethodPut, "/v1/jobs", "{}"), http.StatusMethodNotAllowed, pigment.CodeInvalid, "")
}

func TestCancelJob(t *testing.T) {
	e := newEnv(t, Config{})
	t.Run("queued", func(t *testing.T) {
		job := e.createJob(t, `{"prompt": "a"}`)
		rec := e.do(t, http.MethodDelete, "/v1/jobs/"+job.ID, "")
		got := decode[pigment.Job](t, rec)
		if rec.Code != http.StatusOK || got.Status != pigment.StatusCanceled || got.FinishedAt == nil {
			t.Errorf("%d, status %s, finished_at %v; want 200 canceled", rec.Code, got.Status, got.FinishedAt)
		}
		stored, _, _ := e.b.GetJob(context.Background(), job.ID)
		if stored.Status != pigment.StatusCanceled {
			t.Errorf("stored status %s", stored.Status)
		}
	})
	t.Run("running", func(t *testing.T) {
		job := e.createJob(t, `{"prompt": "a"}`)
		e.update(t, job.ID, func(j *pigment.Job) { j.Status, j.Progress.Step = pigment.StatusRunning, 3 })
		for range 2 { // twice: the second changes nothing
			rec := e.do(t, http.MethodDelete, "/v1/jobs/"+job.ID, "")
			got := decode[pigment.Job](t, rec)
			if rec.Code != http.StatusOK || got.Status != pigment.StatusRunning || !got.CancelRequested || got.Progress.Step != 3 {
				t.Errorf("%d, %+v; want 200, running, cancel_requested", rec.Code, got)
			}
		}
	})
	for _, status := range []pigment.JobStatus{pigment.StatusSucceeded, pigment.StatusFailed, pigment.StatusCanceled} {
		t.Run(string(status), func(t *testing.T) {
			job := e.createJob(t, `{"prompt": "a"}`)
			e.update(t, job.ID, func(j *pigment.Job) { j.Status = status })
			rec := e.do(t, http.MethodDelete, "/v1/jobs/"+job.ID, "")
			checkError(t, rec, http.StatusConflict, pigment.CodeConflict, "")
			if !strings.Contains(rec.Body.String(), job.ID) {
				t.Errorf("message does not name the job: %s", rec.Body)
			}
		})
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ name, data string }

// readEvents reads events from an SSE stream into a channel, closed at
// the end of the stream; comments are sent as events named ":".
func readEvents(body *bufio.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		var ev sseEvent
		for {
			line, err := body.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ch <- sseEvent{name: ":"}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

func nextEvent(t *testing.T, ch <-chan sseEvent, skipComments bool) (sseEvent, bool) {
	t.Helper()
	for {
		select {
		case ev, ok := <-ch:
			if ok && skipComments && ev.name == ":" {
				continue
			}
			return ev, ok
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10 s")
		}
	}
}

func openStream(t *testing.T, srv *httptest.Server, id string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/jobs/"+id+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return readEvents(bufio.NewReader(resp.Body)), func() { cancel(); resp.Body.Close() }
}

func TestJobEvents(t *testing.T) {
	e := newEnv(t, Config{KeepAlive: 20 * time.Millisecond})
	srv := httptest.NewServer(e.gw.Handler())
	defer srv.Close()

	t.Run("progress then status", func(t *testing.T) {
		job := e.createJob(t, `{"prompt": "a", "steps": 3}`)
		events, closeStream := openStream(t, srv, job.ID)
		defer closeStream()
		var got []string
		expect := func(name string, want progressEvent) {
			t.Helper()
			ev, ok := nextEvent(t, events, true)
			if !ok {
				t.Fatalf("stream ended; events so far %v", got)
			}
			got = append(got, ev.name+" "+ev.data)
			var p progressEvent
			if ev.name != name || json.Unmarshal([]byte(ev.data), &p) != nil || p != want {
				t.Fatalf("event %s %s, want %s %+v", ev.name, ev.data, name, want)
			}
		}
		expect("progress", progressEvent{0, 3, pigment.StatusQueued})
		// A worker: running, steps 1..3, a change that is not progress, succeeded.
		e.update(t, job.ID, func(j *pigment.Job) { j.Status = pigment.StatusRunning })
		expect("progress", progressEvent{0, 3, pigment.StatusRunning})
		for step := 1; step <= 3; step++ {
			e.update(t, job.ID, func(j *pigment.Job) { j.Progress.Step = step })
			expect("progress", progressEvent{step, 3, pigment.StatusRunning})
		}
		e.update(t, job.ID, func(j *pigment.Job) { j.Worker = "w1" })
		e.update(t, job.ID, func(j *pigment.Job) {
			j.Status = pigment.StatusSucceeded
			j.Images = []pigment.Image{{ID: broker.ImageID(j.ID, 0), Width: 16, Height: 16}}
		})
		ev, ok := nextEvent(t, events, true)
		if !ok || ev.name != "status" {
			t.Fatalf("got %q %s, want the status event", ev.name, ev.data)
		}
		var final pigment.Job
		if err := json.Unmarshal([]byte(ev.data), &final); err != nil {
			t.Fatal(err)
		}
		if final.Status != pigment.StatusSucceeded || final.Worker != "w1" || len(final.Images) != 1 || final.Images[0].URL != "/v1/images/"+job.ID+"-0" {
			t.Errorf("final job %+v", final)
		}
		if ev, ok := nextEvent(t, events, true); ok {
			t.Errorf("event %+v after the status event; want the end of the stream", ev)
		}
	})

	t.Run("finished job", func(t *testing.T) {
		job := e.createJob(t, `{"prompt": "a"}`)
		e.do(t, http.MethodDelete, "/v1/jobs/"+job.ID, "")
		events, closeStream := openStream(t, srv, job.ID)
		defer closeStream()
		ev, _ := nextEvent(t, events, true)
		if ev.name != "status" || !strings.Contains(ev.data, `"status":"canceled"`) {
			t.Errorf("event %s %s, want status canceled", ev.name, ev.data)
		}
		if _, ok := nextEvent(t, events, true); ok {
			t.Error("the stream did not end")
		}
	})

	t.Run("keep-alive and shutdown", func(t *testing.T) {
		job := e.createJob(t, `{"prompt": "a"}`)
		events, closeStream := openStream(t, srv, job.ID)
		defer closeStream()
		if ev, _ := nextEvent(t, events, true); ev.name != "progress" {
			t.Fatalf("first event %q", ev.name)
		}
		if ev, _ := nextEvent(t, events, false); ev.name != ":" {
			t.Fatalf("event %q, want a keep-alive comment", ev.name)
		}
		e.gw.Close() // what ListenAndServe does at shutdown
		for ev := range events {
			if ev.name != ":" {
				t.Errorf("event %q after shutdown", ev.name)
			}
		}
	})
}
