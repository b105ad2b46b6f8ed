package workers

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's Prometheus metrics, shared by every Worker
// registered with the same Registerer.
type metrics struct {
	jobs         *prometheus.CounterVec // pigment_jobs_total{status}
	jobDuration  prometheus.Histogram   // pigment_job_duration_seconds
	stepDuration prometheus.Histogram   // pigment_step_duration_seconds
	busy         prometheus.Gauge       // pigment_worker_busy
	modelLoads   *prometheus.CounterVec // pigment_model_loads_total{model}
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pigment_jobs_total",
			Help: "Jobs this process's workers settled, by terminal status (succeeded, failed, canceled).",
		}, []string{"status"}),
		jobDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pigment_job_duration_seconds",
			Help:    "Time from a worker starting an attempt to its job reaching a terminal status.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2.5, 12), // 0.1s … ~40min
		}),
		stepDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pigment_step_duration_seconds",
			Help:    "Duration of one denoising step (the first includes prompt encoding).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12), // 5ms … ~5min
		}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pigment_worker_busy",
			Help: "Workers of this process running a job.",
		}),
		modelLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pigment_model_loads_total",
			Help: "Models loaded into memory, by model.",
		}, []string{"model"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.jobs, err = register(reg, m.jobs)
	if err != nil {
		return nil, err
	}
	if m.jobDuration, err = register(reg, m.jobDuration); err != nil {
		return nil, err
	}
	if m.stepDuration, err = register(reg, m.stepDuration); err != nil {
		return nil, err
	}
	if m.busy, err = register(reg, m.busy); err != nil {
		return nil, err
	}
	if m.modelLoads, err = register(reg, m.modelLoads); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c with reg, or returns the collector already
// registered under its name (another Worker of this process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
