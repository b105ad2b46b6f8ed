// Package gateway is Pigment's HTTP API (DESIGN.md, contract): an echo
// adapter over the broker. It validates job requests, stores job records
// and publishes jobs through broker.Broker, streams progress from the job
// records in the KV bucket, and serves images from the object store,
// post-processed by package assets.
//
// A Server keeps no job state of its own: everything lives in JetStream, so
// any number of gateways can serve the same cluster, and any one of them
// can answer for a job another accepted.
//
// Wiring (cmd/pigment):
//
//	b, err := broker.Open(ctx, nc, broker.Config{})
//	gw := gateway.New(b, gateway.Config{Addr: addr, PublicURL: publicURL}, reg)
//	err = gw.ListenAndServe(ctx) // or gw.Serve(ctx, ln); a graceful shutdown when ctx ends
//
// Errors are JSON {"error": {"code", "message", "field"}} (errors.go),
// except on POST /v1/images/generations, which answers in OpenAI's shape
// {"error": {"message", "type", "param", "code"}} so that OpenAI clients
// understand it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/broker"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Addr is the address ListenAndServe listens on (default
	// "127.0.0.1:8080").
	Addr string
	// MaxBodyBytes bounds request bodies (default 16 MiB); a larger body is
	// answered 413 too_large.
	MaxBodyBytes int64
	// MaxInitPixels bounds the width×height an init image's header may
	// claim (default 4096×4096); it is checked before decoding.
	MaxInitPixels int
	// DefaultModel is the model of requests that name none. Empty: the
	// only model the workers serve, if they serve exactly one.
	DefaultModel string
	// PublicURL is the base of the image URLs in job records, such as
	// "https://pigment.example.com"; empty gives relative URLs
	// ("/v1/images/{id}"). The OpenAI-compatible endpoint, whose clients
	// expect absolute URLs, then uses the request's scheme and host.
	PublicURL string
	// SyncTimeout bounds how long POST /v1/images/generations waits for its
	// job (default 10 minutes); the job goes on after a timeout.
	SyncTimeout time.Duration
	// KeepAlive is the interval of SSE keep-alive comments (default 15 s).
	KeepAlive time.Duration
	// ShutdownTimeout bounds how long ListenAndServe waits for requests in
	// flight when its context ends (default 10 s).
	ShutdownTimeout time.Duration
	// Logger receives internal errors; nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.MaxInitPixels <= 0 {
		c.MaxInitPixels = 4096 * 4096
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = 10 * time.Minute
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is the HTTP gateway.
type Server struct {
	b       *broker.Broker
	images  assets.Store
	cfg     Config
	log     *slog.Logger
	echo    *echo.Echo
	metrics *metrics

	// streams ends when the server shuts down, so that long-lived
	// responses (SSE, synchronous generations) finish instead of holding
	// the shutdown up; they are the only requests that watch it.
	streams    context.Context
	endStreams context.CancelFunc
}

// New returns a gateway over b. Its metrics are registered with reg and
// served on /metrics from reg if reg is also a prometheus.Gatherer (a
// *prometheus.Registry is both); nil reg means a new registry of its own.
func New(b *broker.Broker, cfg Config, reg prometheus.Registerer) *Server {
	cfg.defaults()
	s := &Server{
		b:      b,
		images: assets.NewObjectStore(b.Images),
		cfg:    cfg,
		log:    cfg.Logger,
		echo:   echo.New(),
	}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(b, reg, s.log)
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.handleError
	s.echo.Use(s.observe)
	s.routes()
	return s
}

// Handler returns the HTTP handler of the API (the echo instance).
func (s *Server) Handler() http.Handler { return s.echo }

// ListenAndServe serves the API on Config.Addr until ctx ends, then shuts
// down gracefully: it stops accepting connections, ends SSE streams and
// synchronous waits, and waits up to Config.ShutdownTimeout for the other
// requests in flight. It returns nil after a shutdown caused by ctx.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on a listener of the caller's (which it closes).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// No WriteTimeout: SSE streams and synchronous generations are
		// long; they end with the client or at shutdown.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.endStreams()
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	s.endStreams()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}

// Close ends SSE streams and synchronous waits of a Server used through
// Handler (ListenAndServe does this itself).
func (s *Server) Close() { s.endStreams() }

// observe is the middleware around every route: it recovers panics into
// internal errors, writes errors through handleError (so that the status
// is known here), and counts and times the request.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
			if err != nil {
				s.handleError(err, c)
				err = nil
			}
			route := c.Path()
			if route == "" || route == "/*" {
				route = "unmatched"
			}
			method := c.Request().Method
			s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
			s.metrics.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}()
		return next(c)
	}
}
