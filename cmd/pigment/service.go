package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/broker"
	"github.com/pigment-ai/pigment/gateway"
	"github.com/pigment-ai/pigment/workers"
)

// serviceFlags are the flags every service command shares.
type serviceFlags struct {
	replicas    int
	ackWait     time.Duration
	maxAttempts int
	cacheMB     int64
	logLevel    string
	privateHook bool
}

func (f *serviceFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.replicas, "replicas", 1, "JetStream replicas of the stream, buckets and object store (3 in a 3-node cluster)")
	fs.DurationVar(&f.ackWait, "ack-wait", 30*time.Second, "how long a job may go without a worker heartbeat before it is redelivered")
	fs.IntVar(&f.maxAttempts, "max-attempts", 3, "attempts per job before it is marked failed")
	fs.Int64Var(&f.cacheMB, "model-cache-mb", 8192, "memory budget of the loaded-model cache, per process (MB)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.privateHook, "allow-private-webhooks", false, "let webhook_url reach loopback and private-network addresses (refused by default)")
}

// parse parses the command line of a service command (no positional
// arguments) and validates the shared flags.
func (f *serviceFlags) parse(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return f.validate()
}

func (f *serviceFlags) validate() error {
	switch {
	case f.replicas < 1 || f.replicas > 5:
		return usagef("--replicas must be between 1 and 5, got %d", f.replicas)
	case f.ackWait < time.Second:
		return usagef("--ack-wait must be at least 1s, got %s", f.ackWait)
	case f.maxAttempts < 1:
		return usagef("--max-attempts must be at least 1, got %d", f.maxAttempts)
	case f.cacheMB < 1:
		return usagef("--model-cache-mb must be positive, got %d", f.cacheMB)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	return nil
}

func (f *serviceFlags) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(f.logLevel))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

func (f *serviceFlags) brokerConfig() broker.Config {
	return broker.Config{Replicas: f.replicas, Storage: jetstream.FileStorage, AckWait: f.ackWait}
}

// connectNATS connects to url, retrying until the server answers, and keeps
// reconnecting for ever after (a restarted NATS server loses no job: the
// stream is on disk).
func connectNATS(url, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("--nats %s: %w", url, err)
	}
	return nc, nil
}

// dialBroker connects to the NATS cluster at url and opens Pigment's
// JetStream resources on it.
func dialBroker(ctx context.Context, url, name string, sf *serviceFlags, log *slog.Logger) (*broker.Broker, error) {
	nc, err := connectNATS(url, name, log)
	if err != nil {
		return nil, err
	}
	b, err := openBroker(ctx, nc, sf.brokerConfig(), log)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

// openBroker opens the JetStream resources, retrying while the server (or
// the JetStream cluster's leader election) is not ready yet.
func openBroker(ctx context.Context, nc *nats.Conn, cfg broker.Config, log *slog.Logger) (*broker.Broker, error) {
	for {
		b, err := broker.Open(ctx, nc, cfg)
		if err == nil {
			return b, nil
		}
		log.Warn("waiting for JetStream", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// runWorkers runs n workers sharing one model cache until ctx ends.
func runWorkers(ctx context.Context, b *broker.Broker, n int, modelsDir string, f *serviceFlags, reg prometheus.Registerer, log *slog.Logger) error {
	cache := workers.NewModelCache(modelsDir, f.cacheMB<<20)
	store := assets.NewObjectStore(b.Images)
	var ws []*workers.Worker
	for i := 0; i < n; i++ {
		w, err := workers.New(b, store, workers.Config{
			ModelsDir: modelsDir, Models: cache, MaxAttempts: f.maxAttempts, Logger: log,
			AllowPrivateWebhooks: f.privateHook,
		}, reg)
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.Run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP listen address")
	dataDir := fs.String("data-dir", "pigment-data", "where the embedded NATS server keeps JetStream data (jobs, records, images)")
	nWorkers := fs.Int("workers", 1, "workers in this process")
	modelsDir := fs.String("models-dir", "models", "folder of diffusers-layout models, one subfolder each, served by folder name")
	natsListen := fs.String("nats-listen", "", "also accept NATS clients (remote `pigment worker`s) on this host:port; empty: in-process only")
	publicURL := fs.String("public-url", "", "base URL of image links (default: relative links; absolute ones from the request's Host for the OpenAI endpoint)")
	defaultModel := fs.String("default-model", "", "model of requests that name none (default: "+defaultModelName+" when it is in --models-dir, else the only model served)")
	var sf serviceFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pigment serve [flags]\n\nOne process: an embedded NATS JetStream server, the HTTP gateway and --workers workers.")
		printDefaults(fs, stderr)
	}
	if err := sf.parse(fs, args); err != nil {
		return err
	}
	if *nWorkers < 0 {
		return usagef("--workers must be 0 or more, got %d", *nWorkers)
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usagef("--addr %q: %v", *addr, err)
	}
	if *defaultModel == "" && isModelDir(filepath.Join(*modelsDir, defaultModelName)) {
		*defaultModel = defaultModelName
	}
	log := sf.logger(stderr)
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return usagef("--data-dir: %v", err)
	}
	unlock, err := lockDir(*dataDir)
	if err != nil {
		return usagef("--data-dir: %v", err)
	}
	defer unlock()

	opts := &server.Options{
		ServerName: "pigment-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(*dataDir, "jetstream"),
		DontListen: *natsListen == "",
		NoSigs:     true,
		NoLog:      true,
	}
	if *natsListen != "" {
		host, port, err := net.SplitHostPort(*natsListen)
		if err != nil {
			return usagef("--nats-listen %q: %v", *natsListen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return usagef("--nats-listen %q: bad port", *natsListen)
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start()
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if !ns.ReadyForConnections(30 * time.Second) {
		return errors.New("embedded NATS server did not start")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("pigment serve"))
	if err != nil {
		return err
	}
	defer nc.Close()
	b, err := openBroker(ctx, nc, sf.brokerConfig(), log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	reg := newRegistry()
	gw := gateway.New(b, gateway.Config{Addr: *addr, PublicURL: *publicURL, DefaultModel: *defaultModel, Logger: log}, reg)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	log.Info("pigment serving", "addr", "http://"+ln.Addr().String(), "workers", *nWorkers, "models", *modelsDir, "data", *dataDir)
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if *nWorkers == 0 {
			return // a gateway for remote workers (--nats-listen)
		}
		werr = runWorkers(ctx, b, *nWorkers, *modelsDir, &sf, reg, log)
		cancel()
	}()
	gerr := gw.Serve(ctx, ln)
	cancel()
	wg.Wait()
	return errors.Join(gerr, werr)
}

func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", stderr)
	natsURL := fs.String("nats", "", "NATS server URL(s), comma-separated (required)")
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP listen address")
	publicURL := fs.String("public-url", "", "base URL of image links in job records (default: relative links)")
	defaultModel := fs.String("default-model", "", "model of requests that name none (default: the only model served)")
	var sf serviceFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pigment gateway --nats URL [flags]")
		printDefaults(fs, stderr)
	}
	if err := sf.parse(fs, args); err != nil {
		return err
	}
	if *natsURL == "" {
		return usagef("--nats is required")
	}
	log := sf.logger(stderr)
	b, err := dialBroker(ctx, *natsURL, "pigment gateway", &sf, log)
	if err != nil {
		return err
	}
	defer b.NC.Close()
	gw := gateway.New(b, gateway.Config{Addr: *addr, PublicURL: *publicURL, DefaultModel: *defaultModel, Logger: log}, newRegistry())
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	return gw.Serve(ctx, ln)
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", stderr)
	natsURL := fs.String("nats", "", "NATS server URL(s), comma-separated (required)")
	modelsDir := fs.String("models-dir", "models", "folder of diffusers-layout models, one subfolder each")
	concurrency := fs.Int("concurrency", 1, "jobs run at once by this process (each uses all cores; 1 is usually best)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics on this address (e.g. :9090)")
	var sf serviceFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pigment worker --nats URL [flags]")
		printDefaults(fs, stderr)
	}
	if err := sf.parse(fs, args); err != nil {
		return err
	}
	if *natsURL == "" {
		return usagef("--nats is required")
	}
	if *concurrency < 1 {
		return usagef("--concurrency must be at least 1, got %d", *concurrency)
	}
	if st, err := os.Stat(*modelsDir); err != nil || !st.IsDir() {
		return usagef("--models-dir %q is not a directory", *modelsDir)
	}
	log := sf.logger(stderr)
	b, err := dialBroker(ctx, *natsURL, "pigment worker", &sf, log)
	if err != nil {
		return err
	}
	defer b.NC.Close()
	reg := newRegistry()
	if *metricsAddr != "" {
		if err := serveMetrics(ctx, *metricsAddr, reg); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	fmt.Fprintf(stdout, "worker connected to %s\n", b.NC.ConnectedUrl())
	return runWorkers(ctx, b, *concurrency, *modelsDir, &sf, reg, log)
}
