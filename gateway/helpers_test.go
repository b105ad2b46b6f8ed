package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/broker"
	"github.com/pigment-ai/pigment/internal/natstest"
)

// tinyModel is the model the fake workers of these tests serve.
var tinyModel = pigment.ModelInfo{Name: "tiny", VAEScaleFactor: 2, DefaultSize: 16, Sampler: "pndm", ClipLayers: 2}

// env is a gateway on a real embedded JetStream server.
type env struct {
	ns     *server.Server
	b      *broker.Broker
	gw     *Server
	reg    *prometheus.Registry
	images assets.Store
}

// newEnv starts a JetStream server, opens the broker, publishes tinyModel
// and returns a gateway configured by cfg (with a quiet logger).
func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	ns := natstest.Start(t, natstest.Options{})
	nc := natstest.Connect(t, ns)
	ctx := context.Background()
	b, err := broker.Open(ctx, nc, broker.Config{AckWait: time.Second, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PublishModel(ctx, tinyModel); err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	reg := prometheus.NewRegistry()
	gw := New(b, cfg, reg)
	t.Cleanup(gw.Close)
	return &env{ns: ns, b: b, gw: gw, reg: reg, images: assets.NewObjectStore(b.Images)}
}

// do serves one request through the gateway's handler. hdr holds header
// name, value pairs.
func (e *env) do(t testing.TB, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.gw.Handler().ServeHTTP(rec, req)
	return rec
}

// decode unmarshals a JSON response body.
func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON; body %s", ct, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %s: %v", rec.Body, err)
	}
	return v
}

// createJob posts body and returns the job, failing unless the status is 202.
func (e *env) createJob(t testing.TB, body string, hdr ...string) *pigment.Job {
	t.Helper()
	rec := e.do(t, http.MethodPost, "/v1/jobs", body, hdr...)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST /v1/jobs %s: %d %s", body, rec.Code, rec.Body)
	}
	j := decode[pigment.Job](t, rec)
	return &j
}

// update changes a job record as a worker would.
func (e *env) update(t testing.TB, id string, fn func(*pigment.Job)) *pigment.Job {
	t.Helper()
	j, err := e.b.UpdateJob(context.Background(), id, func(j *pigment.Job) error { fn(j); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// streamMsgs returns the number of messages on subject in the JOBS stream.
func (e *env) streamMsgs(t testing.TB, subject string) uint64 {
	t.Helper()
	info, err := e.b.Stream.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// fakeWorker takes the next job on priority's consumer and does what a
// worker does: running, progress, images stored, succeeded (or failed with
// failure), ack. It reports problems with t.Errorf, so it can run in a
// goroutine.
func (e *env) fakeWorker(t testing.TB, priority, failure string) {
	ctx := context.Background()
	c, err := e.b.Stream.Consumer(ctx, broker.ConsumerName(priority))
	if err != nil {
		t.Errorf("fake worker: %v", err)
		return
	}
	msg, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Errorf("fake worker: next: %v", err)
		return
	}
	id := string(msg.Data())
	job, err := e.b.UpdateJob(ctx, id, func(j *pigment.Job) error {
		now := time.Now().UTC()
		j.Status, j.StartedAt, j.Attempts, j.Worker = pigment.StatusRunning, &now, 1, "fake"
		return nil
	})
	if err != nil {
		t.Errorf("fake worker: %v", err)
		return
	}
	var images []pigment.Image
	if failure == "" {
		for i := range job.Request.N {
			img := pigment.Image{ID: broker.ImageID(id, i), Seed: job.Seed + uint64(i), Width: job.Request.Width, Height: job.Request.Height}
			if err := e.images.Put(ctx, img.ID, testPNG(t, img.Width, img.Height), nil); err != nil {
				t.Errorf("fake worker: %v", err)
				return
			}
			images = append(images, img)
		}
	}
	_, err = e.b.UpdateJob(ctx, id, func(j *pigment.Job) error {
		now := time.Now().UTC()
		j.Status, j.FinishedAt, j.Images, j.Error = pigment.StatusSucceeded, &now, images, failure
		j.Progress.Step = j.Progress.Steps
		if failure != "" {
			j.Status = pigment.StatusFailed
		}
		return nil
	})
	if err != nil {
		t.Errorf("fake worker: %v", err)
	}
	_ = msg.Ack()
}

// testPNG encodes a w×h gradient.
func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / max(w, 1)), uint8(y * 255 / max(h, 1)), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombPNG is a valid 1×1 PNG whose header claims w×h pixels, a
// decompression bomb's calling card.
func bombPNG(t testing.TB, w, h uint32) []byte {
	t.Helper()
	b := testPNG(t, 1, 1)
	// 8 signature bytes, then the IHDR chunk: length, "IHDR", width, height, …, CRC.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}
