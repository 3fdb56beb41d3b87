package server

import (
	"bytes"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// metrics are the server's Prometheus metrics. They live in the server's
// own registry (none are global), which GET /metrics exposes.
type metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec   // route, model, status
	duration     *prometheus.HistogramVec // route
	ttft         *prometheus.HistogramVec // model
	interToken   *prometheus.HistogramVec // model
	promptTokens *prometheus.CounterVec   // model
	outputTokens *prometheus.CounterVec   // model
	cachedTokens *prometheus.CounterVec   // model
}

func newMetrics(models func() []*Model) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carryon_http_requests_total",
			Help: "HTTP requests by route, model and status code.",
		}, []string{"route", "model", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "carryon_http_request_duration_seconds",
			Help:    "Time from a request's arrival until its handler returned (streams: until the stream ended).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, []string{"route"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "carryon_time_to_first_token_seconds",
			Help:    "Time from a generation request's arrival until its first generated token.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"model"}),
		interToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "carryon_inter_token_latency_seconds",
			Help:    "Time between consecutive generated tokens of one choice.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"model"}),
		promptTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carryon_prompt_tokens_total",
			Help: "Prompt (input) tokens of finished requests.",
		}, []string{"model"}),
		outputTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carryon_generated_tokens_total",
			Help: "Generated (output) tokens of finished requests.",
		}, []string{"model"}),
		cachedTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carryon_prompt_cached_tokens_total",
			Help: "Prompt tokens whose KV came from the prefix cache.",
		}, []string{"model"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.ttft, m.interToken, m.promptTokens, m.outputTokens, m.cachedTokens,
		&schedulerCollector{models: models})
	return m
}

// render writes the metrics in the Prometheus text format.
func (m *metrics) render() ([]byte, string, error) {
	families, err := m.reg.Gather()
	if err != nil {
		return nil, "", fmt.Errorf("gather metrics: %w", err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, "", fmt.Errorf("encode metric %s: %w", f.GetName(), err)
		}
	}
	return buf.Bytes(), string(format), nil
}

// schedulerCollector reads each model's scheduler Stats at scrape time.
type schedulerCollector struct {
	models func() []*Model
}

var (
	descQueued = prometheus.NewDesc("carryon_queue_depth",
		"Requests waiting for admission.", []string{"model"}, nil)
	descRunning = prometheus.NewDesc("carryon_running_requests",
		"Admitted requests that have not ended (their choices are the running sequences).", []string{"model"}, nil)
	descKVUsed = prometheus.NewDesc("carryon_kv_cache_used_tokens",
		"KV cache positions held by running sequences and the prefix cache.", []string{"model"}, nil)
	descKVTotal = prometheus.NewDesc("carryon_kv_cache_total_tokens",
		"KV cache budget in positions.", []string{"model"}, nil)
	descKVUsage = prometheus.NewDesc("carryon_kv_cache_usage_ratio",
		"Fraction of the KV cache budget in use.", []string{"model"}, nil)
	descPrefix = prometheus.NewDesc("carryon_prefix_cache_tokens",
		"Tokens whose KV the prefix cache holds.", []string{"model"}, nil)
	descPreempt = prometheus.NewDesc("carryon_preemptions_total",
		"Requests sent back to the queue to make KV room.", []string{"model"}, nil)
)

// Describe sends the descriptors of the scheduler metrics.
func (c *schedulerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueued, descRunning, descKVUsed, descKVTotal, descKVUsage, descPrefix, descPreempt} {
		ch <- d
	}
}

// Collect reads every scheduler's Stats.
func (c *schedulerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.models() {
		st := m.sched.Stats()
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(st.Queued), m.Name)
		ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(st.Running), m.Name)
		ch <- prometheus.MustNewConstMetric(descKVUsed, prometheus.GaugeValue, float64(st.KVUsedTokens), m.Name)
		ch <- prometheus.MustNewConstMetric(descKVTotal, prometheus.GaugeValue, float64(st.KVTotalTokens), m.Name)
		ratio := 0.0
		if st.KVTotalTokens > 0 {
			ratio = float64(st.KVUsedTokens) / float64(st.KVTotalTokens)
		}
		ch <- prometheus.MustNewConstMetric(descKVUsage, prometheus.GaugeValue, ratio, m.Name)
		ch <- prometheus.MustNewConstMetric(descPrefix, prometheus.GaugeValue, float64(st.PrefixCacheTokens), m.Name)
		ch <- prometheus.MustNewConstMetric(descPreempt, prometheus.CounterValue, float64(st.Preemptions), m.Name)
	}
}
