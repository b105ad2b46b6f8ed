package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/broker"
	"github.com/pigment-ai/pigment/internal/natstest"
	"github.com/pigment-ai/pigment/internal/tinymodel"
)

// modelsDir holds the tiny model "tiny" (tinymodel seed 1), written once
// for the package.
var modelsDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pigment-workers-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	modelsDir = dir
	if err := tinymodel.Write(filepath.Join(dir, "tiny"), 1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testEnv is a real embedded JetStream server with Pigment's layout.
type testEnv struct {
	b     *broker.Broker
	store assets.Store
	regs  map[*Worker]*prometheus.Registry // each worker's metrics
}

// newEnv starts a server; ackWait 0 keeps the broker's default (30s).
func newEnv(t *testing.T, ackWait time.Duration) *testEnv {
	t.Helper()
	s := natstest.Start(t, natstest.Options{})
	nc := natstest.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, nc, broker.Config{AckWait: ackWait, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{b: b, store: assets.NewObjectStore(b.Images), regs: map[*Worker]*prometheus.Registry{}}
}

// worker returns a Worker on the tiny model with test-sized timings.
func (e *testEnv) worker(t *testing.T, cfg Config) *Worker {
	t.Helper()
	if cfg.ModelsDir == "" && cfg.Models == nil {
		cfg.ModelsDir = modelsDir
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = 50 * time.Millisecond
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 10 * time.Millisecond
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	// Test webhook receivers listen on loopback.
	cfg.AllowPrivateWebhooks = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	reg := prometheus.NewRegistry()
	w, err := New(e.b, e.store, cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	e.regs[w] = reg
	return w
}

// start runs w until the returned stop is called (or the test ends); stop
// waits for Run to return.
func (e *testEnv) start(t *testing.T, w *Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// submit enqueues a job as the gateway would: a resolved request for the
// tiny model (16x16, 3 Euler steps, seed 42), status queued. mod may
// change it first.
func (e *testEnv) submit(t *testing.T, id, priority string, mod func(*pigment.Job)) *pigment.Job {
	t.Helper()
	seed, scale := int64(42), 7.5
	job := &pigment.Job{
		ID:     id,
		Status: pigment.StatusQueued,
		Request: pigment.JobRequest{
			Prompt: "a red star", NegativePrompt: "blurry", Model: "tiny",
			Width: 16, Height: 16, Steps: 3, GuidanceScale: &scale, Sampler: "euler",
			Seed: &seed, N: 1, RNG: "cpu", Priority: priority,
		},
		Seed:      42,
		Images:    []pigment.Image{},
		CreatedAt: time.Now().UTC(),
	}
	if mod != nil {
		mod(job)
	}
	if _, _, err := e.b.Submit(context.Background(), job, priority, ""); err != nil {
		t.Fatal(err)
	}
	return job
}

func (e *testEnv) get(t *testing.T, id string) *pigment.Job {
	t.Helper()
	j, _, err := e.b.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// wait polls the record of id until its status is want, failing the test
// if it settles otherwise or time runs out.
func (e *testEnv) wait(t *testing.T, id string, want pigment.JobStatus) *pigment.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j := e.get(t, id)
		if j.Status == want {
			return j
		}
		if j.Status.Terminal() {
			t.Fatalf("job %s: status %s (error %q), want %s", id, j.Status, j.Error, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: still %s after 30s, want %s", id, j.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSettled waits until every message is settled: the stream is empty
// and no consumer has a message delivered and not acknowledged.
func (e *testEnv) waitSettled(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := e.b.Stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pending := uint64(0)
		for _, p := range pigment.Priorities {
			c, err := e.b.Stream.Consumer(ctx, broker.ConsumerName(p))
			if err != nil {
				t.Fatal(err)
			}
			ci, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pending += uint64(ci.NumAckPending) + ci.NumPending
		}
		if info.State.Msgs == 0 && pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages not settled: %d in stream, %d pending", info.State.Msgs, pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// objects lists the names in the images object store starting with
// prefix.
func (e *testEnv) objects(t *testing.T, prefix string) []string {
	t.Helper()
	infos, err := e.b.Images.List(context.Background())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range infos {
		if strings.HasPrefix(in.Name, prefix) {
			names = append(names, in.Name)
		}
	}
	return names
}

// metric returns the value of metric name of w (a histogram's sample
// count), summed over the series matching labels ("key=value" pairs).
func (e *testEnv) metric(t *testing.T, w *Worker, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.regs[w].Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				ok := false
				for _, lp := range m.GetLabel() {
					ok = ok || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !ok {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}
