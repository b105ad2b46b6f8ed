package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/broker"
)

// metrics are the gateway's Prometheus metrics:
//
//	pigment_queue_depth{priority}                        jobs waiting, read from JetStream at scrape time
//	pigment_jobs_submitted_total{priority}               jobs accepted by this gateway (idempotent replays excluded)
//	pigment_http_requests_total{method,route,code}       requests by route pattern and status
//	pigment_http_request_duration_seconds{method,route}  request latency (SSE: the stream's life)
type metrics struct {
	submitted *prometheus.CounterVec
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	gatherer  prometheus.Gatherer
}

func newMetrics(b *broker.Broker, reg prometheus.Registerer, log *slog.Logger) *metrics {
	m := &metrics{
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pigment_jobs_submitted_total",
			Help: "Jobs accepted and queued by this gateway, by priority.",
		}, []string{"priority"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pigment_http_requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pigment_http_request_duration_seconds",
			Help:    "HTTP request duration by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	m.submitted = register(reg, m.submitted)
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	register(reg, prometheus.Collector(&queueDepth{b: b, log: log, desc: prometheus.NewDesc(
		"pigment_queue_depth",
		"Jobs waiting in the JOBS stream (not yet delivered to a worker), by priority.",
		[]string{"priority"}, nil,
	)}))
	for _, p := range pigment.Priorities {
		m.submitted.WithLabelValues(p) // export zeros from the start
	}
	m.gatherer = prometheus.DefaultGatherer
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}
	return m
}

// register registers c with reg, or returns the equal collector already
// registered (a second Server on the same registry shares the counters).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("gateway: registering metrics: " + err.Error())
	}
	return c
}

// queueDepth collects pigment_queue_depth from broker.QueueDepth on every
// scrape, so that every gateway reports the cluster's queue, not a copy.
type queueDepth struct {
	b    *broker.Broker
	log  *slog.Logger
	desc *prometheus.Desc
}

func (q *queueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- q.desc }

func (q *queueDepth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	depth, err := q.b.QueueDepth(ctx)
	if err != nil {
		q.log.Warn("metrics: reading the queue depth", "err", err)
		return // the series goes missing, which alerts can notice
	}
	for _, p := range pigment.Priorities {
		ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(depth[p]), p)
	}
}
