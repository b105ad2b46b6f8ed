package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/broker"
	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/internal/tinymodel"
)

func TestJobSucceeds(t *testing.T) {
	e := newEnv(t, 0)
	w := e.worker(t, Config{Name: "w1"})
	e.start(t, w)
	e.submit(t, "job-ok", "normal", func(j *pigment.Job) { j.Request.N = 2 })

	job := e.wait(t, "job-ok", pigment.StatusSucceeded)
	e.waitSettled(t)
	if job.Attempts != 1 || job.Worker != "w1" || job.Error != "" || job.StartedAt == nil || job.FinishedAt == nil {
		t.Errorf("record: attempts %d, worker %q, error %q, started %v, finished %v", job.Attempts, job.Worker, job.Error, job.StartedAt, job.FinishedAt)
	}
	if job.Progress != (pigment.Progress{Step: 3, Steps: 3}) {
		t.Errorf("progress %+v, want 3/3", job.Progress)
	}
	if len(job.Images) != 2 {
		t.Fatalf("images %+v, want 2", job.Images)
	}
	for i, im := range job.Images {
		if im.ID != broker.ImageID("job-ok", i) || im.Seed != 42 || im.Width != 16 || im.Height != 16 {
			t.Errorf("image %d: %+v", i, im)
		}
		data, _, err := e.store.Get(context.Background(), im.ID)
		if err != nil {
			t.Fatal(err)
		}
		img, format, err := imageio.Decode(bytes.NewReader(data), 0)
		if err != nil || format != "png" {
			t.Fatalf("image %d: %v (%s)", i, err, format)
		}
		if b := img.Bounds(); b.Dx() != 16 || b.Dy() != 16 {
			t.Errorf("image %d is %v, want 16x16", i, b)
		}
		text, err := imageio.ReadPNGText(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		p := text["parameters"]
		for _, want := range []string{"a red star\nNegative prompt: blurry\n", "Steps: 3", "Sampler: Euler", "Seed: 42", "Size: 16x16", "Model: tiny"} {
			if !strings.Contains(p, want) {
				t.Errorf("image %d parameters %q lack %q", i, p, want)
			}
		}
	}
	if got := e.metric(t, w, "pigment_jobs_total", "status=succeeded"); got != 1 {
		t.Errorf("pigment_jobs_total{succeeded} = %v, want 1", got)
	}
	if got := e.metric(t, w, "pigment_step_duration_seconds"); got != 3 {
		t.Errorf("step durations observed %v, want 3", got)
	}
	if got := e.metric(t, w, "pigment_model_loads_total", "model=tiny"); got != 1 {
		t.Errorf("model loads %v, want 1", got)
	}
}

func TestProgressInOrder(t *testing.T) {
	e := newEnv(t, 0)
	const steps = 8
	sub, err := e.b.NC.SubscribeSync(broker.ProgressSubject("job-progress"))
	if err != nil {
		t.Fatal(err)
	}
	e.submit(t, "job-progress", "normal", func(j *pigment.Job) { j.Request.Steps = steps })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	updates, err := e.b.WatchJob(ctx, "job-progress")
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, e.worker(t, Config{}))

	var seen []int
	var last *pigment.Job
	for j := range updates {
		if j.Status == pigment.StatusRunning {
			seen = append(seen, j.Progress.Step)
		}
		last = j
	}
	if last == nil || last.Status != pigment.StatusSucceeded {
		t.Fatalf("last record %+v", last)
	}
	want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}
	if !slices.Equal(seen, want) {
		t.Errorf("running records' steps %v, want %v", seen, want)
	}
	for i := 1; i <= steps; i++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("progress event %d: %v", i, err)
		}
		var p pigment.Progress
		if err := json.Unmarshal(m.Data, &p); err != nil || p != (pigment.Progress{Step: i, Steps: steps}) {
			t.Errorf("progress event %d: %s (%v)", i, m.Data, err)
		}
	}
}

func TestCancelRunning(t *testing.T) {
	e := newEnv(t, 0)
	w := e.worker(t, Config{})
	w.onProgress = func(id string, step, steps int) {
		if step == 2 { // as DELETE /v1/jobs/{id} does on a running job
			_, err := e.b.UpdateJob(context.Background(), id, func(j *pigment.Job) error {
				j.CancelRequested = true
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}
	}
	e.start(t, w)
	e.submit(t, "job-cancel", "normal", func(j *pigment.Job) { j.Request.Steps = 20 })

	job := e.wait(t, "job-cancel", pigment.StatusCanceled)
	e.waitSettled(t)
	if job.Progress.Step < 2 || job.Progress.Step >= 20 || len(job.Images) != 0 || job.FinishedAt == nil {
		t.Errorf("canceled record: progress %+v, images %v, finished %v", job.Progress, job.Images, job.FinishedAt)
	}
	if names := e.objects(t, "job-cancel"); len(names) != 0 {
		t.Errorf("images stored for a canceled job: %v", names)
	}
	if got := e.metric(t, w, "pigment_jobs_total", "status=canceled"); got != 1 {
		t.Errorf("pigment_jobs_total{canceled} = %v, want 1", got)
	}
}

func TestCanceledWhileQueuedIsSkipped(t *testing.T) {
	e := newEnv(t, 0)
	e.submit(t, "job-canceled", "normal", nil)
	e.submit(t, "job-cancel-requested", "normal", nil)
	// The gateway cancels a queued job directly; a cancel racing with a
	// worker's start sets CancelRequested instead.
	for id, fn := range map[string]func(*pigment.Job){
		"job-canceled":         func(j *pigment.Job) { j.Status = pigment.StatusCanceled },
		"job-cancel-requested": func(j *pigment.Job) { j.CancelRequested = true },
	} {
		if _, err := e.b.UpdateJob(context.Background(), id, func(j *pigment.Job) error { fn(j); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	w := e.worker(t, Config{})
	e.start(t, w)
	e.waitSettled(t)
	for _, id := range []string{"job-canceled", "job-cancel-requested"} {
		j := e.get(t, id)
		if j.Status != pigment.StatusCanceled || j.Attempts != 0 || j.StartedAt != nil {
			t.Errorf("%s: status %s, attempts %d, started %v", id, j.Status, j.Attempts, j.StartedAt)
		}
	}
	if got := e.metric(t, w, "pigment_model_loads_total", "model=tiny"); got != 0 {
		t.Errorf("model loaded %v times for canceled jobs", got)
	}
}

func TestRedeliveryAfterWorkerDied(t *testing.T) {
	e := newEnv(t, time.Second)
	ctx := context.Background()
	e.submit(t, "job-redeliver", "normal", nil)

	// A worker takes the job, marks it running and dies: no ack, no
	// heartbeat.
	c, err := e.b.Stream.Consumer(ctx, broker.ConsumerName("normal"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || string(msg.Data()) != "job-redeliver" {
		t.Fatalf("fetch: %v", err)
	}
	if _, err := e.b.UpdateJob(ctx, "job-redeliver", func(j *pigment.Job) error {
		now := time.Now().UTC()
		j.Status, j.Attempts, j.Worker, j.StartedAt = pigment.StatusRunning, 1, "dead", &now
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	w := e.worker(t, Config{Name: "alive"})
	e.start(t, w)
	job := e.wait(t, "job-redeliver", pigment.StatusSucceeded)
	e.waitSettled(t)
	if job.Attempts != 2 || job.Worker != "alive" || len(job.Images) != 1 {
		t.Errorf("record: attempts %d, worker %q, images %v", job.Attempts, job.Worker, job.Images)
	}

	// The same job delivered once more (a duplicate publish) is acked and
	// skipped: handling twice is harmless.
	if _, err := e.b.JS.Publish(ctx, broker.Subject("normal"), []byte("job-redeliver")); err != nil {
		t.Fatal(err)
	}
	e.waitSettled(t)
	again := e.get(t, "job-redeliver")
	if !again.FinishedAt.Equal(*job.FinishedAt) || again.Attempts != 2 {
		t.Errorf("duplicate delivery changed the record: %+v", again)
	}
	if got := e.metric(t, w, "pigment_jobs_total", "status=succeeded"); got != 1 {
		t.Errorf("pigment_jobs_total{succeeded} = %v, want 1", got)
	}
	if names := e.objects(t, "job-redeliver"); !slices.Equal(names, []string{"job-redeliver-0"}) {
		t.Errorf("stored images %v, want one", names)
	}
}

func TestMaxAttempts(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	if err := tinymodel.Write(broken, 2); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "unet", "diffusion_pytorch_model.safetensors"), []byte("not a safetensors file"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 0)
	w := e.worker(t, Config{ModelsDir: dir, MaxAttempts: 3})
	e.start(t, w)
	e.submit(t, "job-broken", "normal", func(j *pigment.Job) { j.Request.Model = "broken" })

	job := e.wait(t, "job-broken", pigment.StatusFailed)
	e.waitSettled(t)
	if job.Attempts != 3 || !strings.HasPrefix(job.Error, "gave up after 3 attempts: ") || !strings.Contains(job.Error, "unet") {
		t.Errorf("record: attempts %d, error %q", job.Attempts, job.Error)
	}
	c, err := e.b.Stream.Consumer(context.Background(), broker.ConsumerName("normal"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer != 3 {
		t.Errorf("delivered %d times, want 3", info.Delivered.Consumer)
	}
	if got := e.metric(t, w, "pigment_jobs_total", "status=failed"); got != 1 {
		t.Errorf("pigment_jobs_total{failed} = %v, want 1", got)
	}
}

func TestPermanentFailures(t *testing.T) {
	e := newEnv(t, 0)
	e.start(t, e.worker(t, Config{}))
	for _, tc := range []struct {
		id, want string
		mod      func(*pigment.Job)
	}{
		{"job-width", "width", func(j *pigment.Job) { j.Request.Width = 15 }},
		{"job-model", "model not found", func(j *pigment.Job) { j.Request.Model = "nope" }},
		{"job-sampler", "sampler", func(j *pigment.Job) { j.Request.Sampler = "bogus" }},
		{"job-init", "init_image", func(j *pigment.Job) { j.Request.InitImage = "stored:" + broker.InitImageName(j.ID) }},
	} {
		e.submit(t, tc.id, "normal", tc.mod)
		job := e.wait(t, tc.id, pigment.StatusFailed)
		if job.Attempts != 1 || !strings.Contains(job.Error, tc.want) {
			t.Errorf("%s: attempts %d, error %q, want one attempt and %q", tc.id, job.Attempts, job.Error, tc.want)
		}
	}
	e.waitSettled(t)
}

func TestPriority(t *testing.T) {
	e := newEnv(t, 0)
	e.submit(t, "job-low", "low", nil)
	e.submit(t, "job-normal", "normal", nil)
	e.submit(t, "job-high", "high", nil)
	e.start(t, e.worker(t, Config{}))
	low := e.wait(t, "job-low", pigment.StatusSucceeded)
	normal := e.wait(t, "job-normal", pigment.StatusSucceeded)
	high := e.wait(t, "job-high", pigment.StatusSucceeded)
	if !high.StartedAt.Before(*normal.StartedAt) || !normal.StartedAt.Before(*low.StartedAt) {
		t.Errorf("start times: high %v, normal %v, low %v", high.StartedAt, normal.StartedAt, low.StartedAt)
	}
	if !high.FinishedAt.Before(*normal.StartedAt) {
		t.Errorf("jobs overlapped on one worker: high finished %v, normal started %v", high.FinishedAt, normal.StartedAt)
	}
}

func TestGracefulShutdownReleasesJob(t *testing.T) {
	e := newEnv(t, 0) // 30s ack wait: only a Nak brings the job back quickly
	w1 := e.worker(t, Config{Name: "w1", ShutdownGrace: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w1.onProgress = func(id string, step, steps int) {
		if step == 2 {
			cancel()                           // SIGTERM mid-job
			time.Sleep(200 * time.Millisecond) // outlast the grace
		}
	}
	done := make(chan error, 1)
	go func() { done <- w1.Run(ctx) }()
	e.submit(t, "job-shutdown", "normal", func(j *pigment.Job) { j.Request.Steps = 10 })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	job := e.get(t, "job-shutdown")
	if job.Status != pigment.StatusQueued || job.Attempts != 0 || job.Worker != "" || job.Progress.Step != 0 {
		t.Fatalf("released record: status %s, attempts %d, worker %q, progress %+v", job.Status, job.Attempts, job.Worker, job.Progress)
	}

	w2 := e.worker(t, Config{Name: "w2"})
	e.start(t, w2)
	start := time.Now()
	job = e.wait(t, "job-shutdown", pigment.StatusSucceeded)
	e.waitSettled(t)
	if job.Attempts != 1 || job.Worker != "w2" {
		t.Errorf("record: attempts %d, worker %q", job.Attempts, job.Worker)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("released job took %v to run again: not Nak'd?", d)
	}
}

func TestGracefulShutdownFinishesJob(t *testing.T) {
	e := newEnv(t, 0)
	w := e.worker(t, Config{ShutdownGrace: 20 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.onProgress = func(id string, step, steps int) {
		if step == 1 {
			cancel()
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.submit(t, "job-finish", "normal", func(j *pigment.Job) { j.Request.Steps = 4 })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if job := e.get(t, "job-finish"); job.Status != pigment.StatusSucceeded {
		t.Fatalf("status %s (error %q), want succeeded within the grace", job.Status, job.Error)
	}
	e.waitSettled(t)
}

func TestImg2Img(t *testing.T) {
	e := newEnv(t, 0)
	img := image.NewNRGBA(image.Rect(0, 0, 24, 20))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	name := broker.InitImageName("job-img2img")
	if err := e.store.Put(context.Background(), name, buf.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	strength := 0.5
	e.submit(t, "job-img2img", "normal", func(j *pigment.Job) {
		j.Request.InitImage, j.Request.Strength, j.Request.Steps = "stored:"+name, &strength, 6
	})
	e.start(t, e.worker(t, Config{}))
	job := e.wait(t, "job-img2img", pigment.StatusSucceeded)
	if job.Progress != (pigment.Progress{Step: 3, Steps: 3}) || len(job.Images) != 1 || job.Images[0].Width != 16 {
		t.Errorf("record: progress %+v, images %+v", job.Progress, job.Images)
	}
	data, _, err := e.store.Get(context.Background(), job.Images[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	text, err := imageio.ReadPNGText(bytes.NewReader(data))
	if err != nil || !strings.Contains(text["parameters"], "Denoising strength: 0.5") {
		t.Errorf("parameters %q (%v)", text["parameters"], err)
	}
}

func TestModelsPublished(t *testing.T) {
	e := newEnv(t, 0)
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(modelsDir, "tiny"), filepath.Join(dir, "tiny")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk", "model_index.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := e.worker(t, Config{ModelsDir: dir})
	infos, err := w.Models()
	if err != nil {
		t.Fatal(err)
	}
	want := pigment.ModelInfo{Name: "tiny", VAEScaleFactor: 2, DefaultSize: 16, Sampler: "pndm", ClipLayers: 2}
	if len(infos) != 1 || withoutTime(infos[0]) != want {
		t.Fatalf("Models() = %+v, want [%+v]", infos, want)
	}

	// A models dir that is itself a model serves it under its base name.
	single := e.worker(t, Config{ModelsDir: filepath.Join(modelsDir, "tiny")})
	if infos, err := single.Models(); err != nil || len(infos) != 1 || withoutTime(infos[0]) != want {
		t.Errorf("Models() of a model dir = %+v, %v", infos, err)
	}

	e.start(t, w)
	deadline := time.Now().Add(10 * time.Second)
	for {
		models, err := e.b.ListModels(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := models["tiny"]; ok {
			if withoutTime(m) != want || m.UpdatedAt.IsZero() {
				t.Errorf("published %+v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("model not published")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func withoutTime(m pigment.ModelInfo) pigment.ModelInfo {
	m.UpdatedAt = time.Time{}
	return m
}

func TestModelCache(t *testing.T) {
	dir := t.TempDir()
	for name, seed := range map[string]uint64{"a": 1, "b": 2} {
		if err := tinymodel.Write(filepath.Join(dir, name), seed); err != nil {
			t.Fatal(err)
		}
	}
	size := EstimateModelBytes(filepath.Join(dir, "a"))
	if size <= 0 {
		t.Fatalf("estimated size %d", size)
	}
	var loads atomic.Int64
	c := NewModelCache(dir, size+size/2) // room for one model
	c.load = func(p string) (*diffusion.Model, error) {
		loads.Add(1)
		return diffusion.LoadModel(p)
	}
	ctx := context.Background()
	get := func(name string) func() {
		t.Helper()
		m, release, err := c.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if m.Name != name {
			t.Fatalf("got model %q, want %q", m.Name, name)
		}
		return release
	}

	get("a")()
	get("a")()
	if n := loads.Load(); n != 1 {
		t.Errorf("a loaded %d times, want once", n)
	}
	get("b")() // over budget: a, idle and least recently used, goes
	if got := c.Loaded(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("loaded %v after b, want [b]", got)
	}
	releaseA := get("a") // evicts b; a stays in use
	releaseB := get("b") // over budget, but nothing idle to evict
	if got := c.Loaded(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("loaded %v while both in use, want [a b]", got)
	}
	releaseB() // b is the only idle one
	if got := c.Loaded(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("loaded %v, want [a]: a is in use", got)
	}
	releaseA()
	if n := loads.Load(); n != 4 {
		t.Errorf("%d loads, want 4", n)
	}

	for _, name := range []string{"", "..", "../a", "zzz", "a/unet"} {
		if _, _, err := c.Get(ctx, name); !errors.Is(err, ErrModelNotFound) {
			t.Errorf("Get(%q): %v, want ErrModelNotFound", name, err)
		}
	}
}

func TestModelCacheLoadsOnceConcurrently(t *testing.T) {
	var loads atomic.Int64
	c := NewModelCache(modelsDir, 1<<40)
	c.load = func(p string) (*diffusion.Model, error) {
		loads.Add(1)
		time.Sleep(50 * time.Millisecond)
		return diffusion.LoadModel(p)
	}
	var wg sync.WaitGroup
	models := make([]*diffusion.Model, 8)
	for i := range models {
		wg.Go(func() {
			m, release, err := c.Get(context.Background(), "tiny")
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			models[i] = m
		})
	}
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("loaded %d times, want once", n)
	}
	for _, m := range models {
		if m != models[0] {
			t.Fatal("different model instances")
		}
	}
}

func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, b)
		if len(bodies) == 1 {
			http.Error(rw, "try later", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	e := newEnv(t, 0)
	w := e.worker(t, Config{})
	w.testWebhookBackoff = 10 * time.Millisecond
	e.start(t, w)
	e.submit(t, "job-hook", "normal", func(j *pigment.Job) { j.Request.WebhookURL = srv.URL })
	e.wait(t, "job-hook", pigment.StatusSucceeded)

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d webhook requests, want 2 (one retry)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var job pigment.Job
	if err := json.Unmarshal(bodies[1], &job); err != nil {
		t.Fatal(err)
	}
	if job.ID != "job-hook" || job.Status != pigment.StatusSucceeded || len(job.Images) != 1 {
		t.Errorf("webhook body %s", bodies[1])
	}
}

func TestNewValidatesConfig(t *testing.T) {
	e := newEnv(t, 0)
	for name, cfg := range map[string]Config{
		"no models dir":  {},
		"long heartbeat": {ModelsDir: modelsDir, Heartbeat: time.Minute},
		"negative":       {ModelsDir: modelsDir, MaxAttempts: -1},
	} {
		if _, err := New(e.b, e.store, cfg, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	// Workers of one process share one registry.
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := New(e.b, assets.NewMemStore(), Config{ModelsDir: modelsDir}, reg); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHeartbeatKeepsLongJob(t *testing.T) {
	e := newEnv(t, time.Second)
	w := e.worker(t, Config{}) // heartbeat every 333ms
	w.onProgress = func(id string, step, steps int) { time.Sleep(250 * time.Millisecond) }
	e.submit(t, "job-long", "normal", func(j *pigment.Job) { j.Request.Steps = 10 }) // > 2 ack waits
	e.submit(t, "job-next", "normal", func(j *pigment.Job) { j.Request.Steps = 1 })
	e.start(t, w)

	ctx := context.Background()
	c, err := e.b.Stream.Consumer(ctx, broker.ConsumerName("normal"))
	if err != nil {
		t.Fatal(err)
	}
	for e.get(t, "job-long").Progress.Step < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	// One job running, the other still waiting in the stream: a busy
	// worker holds only the message it runs.
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 1 || info.NumPending != 1 {
		t.Errorf("while running: %d unacked, %d pending; want 1 and 1", info.NumAckPending, info.NumPending)
	}

	job := e.wait(t, "job-long", pigment.StatusSucceeded)
	e.wait(t, "job-next", pigment.StatusSucceeded)
	e.waitSettled(t)
	if info, err = c.Info(ctx); err != nil {
		t.Fatal(err)
	}
	if job.Attempts != 1 || info.NumRedelivered != 0 || info.Delivered.Consumer != 2 {
		t.Errorf("attempts %d, redelivered %d, delivered %d: the heartbeat did not hold the job", job.Attempts, info.NumRedelivered, info.Delivered.Consumer)
	}
}

func TestEnginePanicFailsJob(t *testing.T) {
	e := newEnv(t, 0)
	c := NewModelCache(modelsDir, 1<<30)
	c.load = func(string) (*diffusion.Model, error) { return &diffusion.Model{Name: "tiny"}, nil } // no components: Generate panics
	e.start(t, e.worker(t, Config{Models: c}))
	e.submit(t, "job-panic", "normal", nil)
	job := e.wait(t, "job-panic", pigment.StatusFailed)
	e.waitSettled(t)
	if job.Attempts != 1 || !strings.HasPrefix(job.Error, "internal error in the diffusion engine: ") || strings.Contains(job.Error, "goroutine") {
		t.Errorf("attempts %d, error %q", job.Attempts, job.Error)
	}
}
