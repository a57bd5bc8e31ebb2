package admission

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	decisions    *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	refresh      prometheus.Histogram
	promoted     prometheus.Gauge
	auditDropped prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socle_admission_decisions_total",
			Help: "Admission decisions by webhook (validate, mutate) and decision (allow, deny, warn, pin, error).",
		}, []string{"webhook", "decision"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "socle_admission_decision_seconds",
			Help:    "Time to decide an admission review, from the decoded request to the encoded answer, by decision.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
		}, []string{"decision"}),
		refresh: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "socle_admission_snapshot_refresh_seconds", Help: "Time to rebuild the admission snapshot from the store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		promoted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "socle_admission_promoted_digests", Help: "Digests in the admission snapshot.",
		}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "socle_admission_audit_dropped_total", Help: "Admission audit events dropped because the queue was full.",
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.decisions, m.latency, m.refresh, m.promoted, m.auditDropped}
}
