// Package workers runs Pigment's generation jobs: it pulls job ids from the
// JOBS stream (broker), runs the diffusion engine on the job records they
// name, stores the images and marks the records, and acknowledges a message
// only once its job is settled (DESIGN.md, "nothing is lost"):
//
//	JOBS jobs.<priority> ──Fetch(1)──▶ Worker.handle
//	                                     │ record: queued → running (CAS)
//	                                     │ model (LRU cache) → Generate
//	                                     │   progress every step → record + progress.<id>
//	                                     │   InProgress heartbeat every Config.Heartbeat
//	                                     │   cancel (record's CancelRequested) between steps
//	                                     │ PNGs (+ parameters chunk) → assets.Store
//	                                     ▼ record: succeeded → Ack
//
// The files follow that path: consumer.go pulls messages in priority order,
// handle.go turns one message into a settled job, ack.go holds the
// ack/nak/term policy and the record writes that go with it, progress.go
// the heartbeat, progress and cancel watching, models.go model discovery
// and the model cache, webhook.go the completion callbacks and metrics.go
// the Prometheus metrics.
//
// A Worker runs one job at a time; run several Workers (sharing one
// ModelCache) for more concurrency in one process, or more processes.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/broker"
)

// Config configures a Worker. Zero values take the documented defaults.
type Config struct {
	// Name identifies the worker in job records; it must be unique
	// among running workers (hostname-pid, then hostname-pid-2, -3, … for
	// further Workers of the same process).
	Name string
	// ModelsDir holds one diffusers model directory per model, named by
	// the model's name: ModelsDir/<name>/model_index.json. ModelsDir may
	// also be a model directory itself, served under its base name.
	ModelsDir string
	// MaxAttempts is how many times a job is tried before it is marked
	// failed (3). An attempt is counted when a worker starts running the
	// job; a job released by a worker shutting down is not charged.
	MaxAttempts int
	// Heartbeat is the interval of InProgress acks while a job runs
	// (broker AckWait/3). It must be shorter than the ack wait.
	Heartbeat time.Duration
	// ModelCacheBytes is the memory budget of the model cache (8 GiB),
	// estimated as the float32 size of the weights. Ignored when Models is
	// set.
	ModelCacheBytes int64
	// Models, if set, is a model cache shared with other Workers of this
	// process, so each model is loaded once.
	Models *ModelCache
	// PollWait bounds how long an idle worker waits for a wake-up before
	// asking the queues again (1s); it is the pickup delay of redelivered
	// jobs. New jobs wake idle workers at once; see Worker.next.
	PollWait time.Duration
	// ShutdownGrace is how long Run lets the running job finish after its
	// context is done (30s); after that the job is released to another
	// worker. Negative: release at once.
	ShutdownGrace time.Duration
	// RetryDelay is the redelivery delay after an attempt's first
	// transient failure (2s), doubled for each further attempt up to a
	// minute.
	RetryDelay time.Duration
	// ModelRefresh is how often the served models are published again
	// (30s), so the gateway sees which models are live. Negative: only at
	// start.
	ModelRefresh time.Duration
	// HTTPClient posts webhooks (a client with a 10s timeout that refuses
	// to connect to loopback, private, link-local and other non-public
	// addresses, checked at dial time so DNS cannot point it inside, unless
	// AllowPrivateWebhooks).
	HTTPClient *http.Client
	// AllowPrivateWebhooks lets the default HTTPClient reach non-public
	// addresses (webhook receivers on the same private network).
	AllowPrivateWebhooks bool
	// Logger receives the worker's logs (slog.Default()).
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxAttempts     = 3
	DefaultModelCacheBytes = 8 << 30
	DefaultPollWait        = time.Second
	DefaultShutdownGrace   = 30 * time.Second
	DefaultRetryDelay      = 2 * time.Second
	DefaultModelRefresh    = 30 * time.Second
	maxRetryDelay          = time.Minute
	webhookTimeout         = 10 * time.Second
)

// unnamed counts the Workers of this process named by default.
var unnamed atomic.Int64

// ErrInvalidConfig is wrapped by New's errors about its Config.
var ErrInvalidConfig = errors.New("workers: invalid config")

// Worker pulls jobs from the broker and runs them, one at a time.
type Worker struct {
	b      *broker.Broker
	store  assets.Store
	cfg    Config
	models *ModelCache
	m      *metrics
	log    *slog.Logger

	rr    int            // round-robin position of the blocking fetch
	hooks sync.WaitGroup // webhook deliveries in flight

	// onProgress, if set (tests), is called after each step's progress is
	// recorded.
	onProgress func(jobID string, step, steps int)
	// testWebhookBackoff, if set (tests), replaces webhookBackoff.
	testWebhookBackoff time.Duration
}

// New returns a Worker for the broker's JOBS stream that stores images in
// store and registers its metrics with reg (nil: not registered). Several
// Workers may share one reg: the metrics are registered once and shared.
func New(b *broker.Broker, store assets.Store, cfg Config, reg prometheus.Registerer) (*Worker, error) {
	if b == nil || store == nil {
		return nil, fmt.Errorf("%w: a broker and a store are required", ErrInvalidConfig)
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "worker"
		}
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
		if n := unnamed.Add(1); n > 1 {
			cfg.Name += fmt.Sprintf("-%d", n) // several Workers in one process
		}
	}
	if cfg.ModelsDir == "" && cfg.Models == nil {
		return nil, fmt.Errorf("%w: ModelsDir is required", ErrInvalidConfig)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = b.Config.AckWait / 3
	}
	if cfg.ModelCacheBytes == 0 {
		cfg.ModelCacheBytes = DefaultModelCacheBytes
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = DefaultPollWait
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.ModelRefresh == 0 {
		cfg.ModelRefresh = DefaultModelRefresh
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = webhookClient(cfg.AllowPrivateWebhooks)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.MaxAttempts < 0:
		return nil, fmt.Errorf("%w: MaxAttempts %d < 0", ErrInvalidConfig, cfg.MaxAttempts)
	case cfg.Heartbeat <= 0 || (b.Config.AckWait > 0 && cfg.Heartbeat >= b.Config.AckWait):
		return nil, fmt.Errorf("%w: Heartbeat %v must be positive and shorter than the ack wait %v", ErrInvalidConfig, cfg.Heartbeat, b.Config.AckWait)
	case cfg.PollWait < 0 || cfg.RetryDelay < 0 || cfg.ModelCacheBytes < 0:
		return nil, fmt.Errorf("%w: negative PollWait, RetryDelay or ModelCacheBytes", ErrInvalidConfig)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	models := cfg.Models
	if models == nil {
		models = NewModelCache(cfg.ModelsDir, cfg.ModelCacheBytes)
	} else if cfg.ModelsDir == "" {
		cfg.ModelsDir = models.Dir()
	}
	models.setLoadCounter(m.modelLoads)
	return &Worker{
		b:      b,
		store:  store,
		cfg:    cfg,
		models: models,
		m:      m,
		log:    cfg.Logger.With("worker", cfg.Name),
	}, nil
}

// Name returns the worker's id as written in job records.
func (w *Worker) Name() string { return w.cfg.Name }

// Run publishes the models the worker serves and runs jobs until ctx is
// done. It then stops pulling, lets the running job finish within
// Config.ShutdownGrace or else releases it (record back to queued, message
// Nak'd, so another worker takes it at once), waits for webhook deliveries
// within the same grace, and returns nil. It returns an error only if the
// broker's consumers cannot be reached at start or the connection is
// closed. Run must not be called concurrently on one Worker.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.consumers(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	wake, unsubscribe, err := w.wakeups()
	if err != nil {
		return err
	}
	defer unsubscribe()
	var bg sync.WaitGroup
	bg.Go(func() { w.publishModels(ctx) })
	defer bg.Wait()

	w.log.Info("worker started", "models_dir", w.cfg.ModelsDir)
	for failures := 0; ctx.Err() == nil; {
		msg, err := w.next(ctx, cons, wake)
		if err != nil {
			if w.b.NC.IsClosed() {
				return fmt.Errorf("workers: %w", err)
			}
			failures++
			w.log.Warn("fetching jobs", "err", err)
			sleep(ctx, min(time.Duration(failures)*100*time.Millisecond, 5*time.Second))
			continue
		}
		failures = 0
		if msg == nil {
			continue
		}
		if ctx.Err() != nil {
			// Fetched as we were stopping: hand it straight back.
			_ = msg.Nak()
			break
		}
		w.handle(ctx, msg)
	}
	w.waitWebhooks(w.cfg.ShutdownGrace)
	w.log.Info("worker stopped")
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// publishModels publishes the models found in ModelsDir now and every
// ModelRefresh until ctx is done.
func (w *Worker) publishModels(ctx context.Context) {
	for {
		infos, err := w.Models()
		if err != nil {
			w.log.Error("scanning models", "err", err)
		}
		for _, info := range infos {
			if err := w.b.PublishModel(ctx, info); err != nil && ctx.Err() == nil {
				w.log.Warn("publishing model", "model", info.Name, "err", err)
			}
		}
		if w.cfg.ModelRefresh < 0 {
			return
		}
		sleep(ctx, w.cfg.ModelRefresh)
		if ctx.Err() != nil {
			return
		}
	}
}
