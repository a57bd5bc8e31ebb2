package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Counts is what the metrics gauges read from the store.
type Counts interface {
	ImageCount(ctx context.Context) (int, error)
	AdvisoryCount(ctx context.Context) (int, error)
	LayerCount(ctx context.Context) (int, error)
}

// Metrics are socle's Prometheus metrics, on a registry of their own.
type Metrics struct {
	reg          *prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	jobs         *prometheus.CounterVec
	jobDuration  *prometheus.HistogramVec
}

// NewMetrics registers the metrics; counts feeds the inventory gauges.
func NewMetrics(counts Counts) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socle_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "socle_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socle_jobs_total", Help: "Finished job attempts by kind and result.",
		}, []string{"kind", "result"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "socle_job_duration_seconds", Help: "Job attempt duration by kind.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
		}, []string{"kind"}),
	}
	gauge := func(name, help string, f func(context.Context) (int, error)) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := f(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		})
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.jobs, m.jobDuration,
		gauge("socle_images", "Images in the index.", counts.ImageCount),
		gauge("socle_advisories", "Advisory records in the store.", counts.AdvisoryCount),
		gauge("socle_layers_cached", "Layer analyses in the cache.", counts.LayerCount),
	)
	return m
}

// Register adds collectors of other parts (admission).
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// ObserveJob records a finished job attempt.
func (m *Metrics) ObserveJob(kind string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.jobs.WithLabelValues(kind, result).Inc()
	m.jobDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
