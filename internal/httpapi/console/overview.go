package console

import (
	"math"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
	"github.com/gatehouse/gatehouse/internal/metrics"
)

// overviewCounts is what the overview shows besides its charts: counts of
// what the session may read (-1: may not).
type overviewCounts struct {
	Accounts, Roles, Apps, Channels, Sessions, Keys, Locks int
}

func (c *Console) loadOverview(r *http.Request, s *session) (any, error) {
	d := overviewCounts{-1, -1, -1, -1, -1, -1, -1}
	if s.Can(authz.ResourceAccount, authz.VerbGet) {
		d.Accounts = len(c.Engine.ListAccounts())
		if locks, err := c.Engine.Locks(r.Context()); err == nil {
			d.Locks = len(locks)
		}
	}
	if s.Can(authz.ResourceRole, authz.VerbGet) {
		d.Roles = len(c.Engine.ListRoles())
	}
	if c.Fabric != nil && s.Can(authz.ResourceApp, authz.VerbGet) {
		d.Apps = len(c.Fabric.ListApps())
	}
	if c.Messaging != nil && s.Can(authz.ResourceChannel, authz.VerbGet) {
		d.Channels = len(c.Messaging.ListChannels())
	}
	if c.Messaging != nil && s.Can(authz.ResourceSession, authz.VerbGet) {
		d.Sessions = len(c.Messaging.Sessions("", ""))
	}
	if s.Can(authz.ResourceKey, authz.VerbGet) {
		d.Keys = len(c.Keys.Keys())
	}
	return d, nil
}

// The overview's charts come from this replica's own metrics (the
// registry /metrics serves), sampled when a browser asks for them, at
// most once per sampleEvery; the last maxSamples are kept.
const (
	sampleEvery = 5 * time.Second
	maxSamples  = 120
)

// refusedLogin reports whether a login of result was refused: any result
// but a token or a failure of the server's own.
func refusedLogin(result string) bool {
	return result != metrics.LoginOK && result != metrics.LoginError
}

// sample is one reading of the counters the charts derive from.
type sample struct {
	at       time.Time
	failures float64            // refused engine logins (gatehouse_logins_total)
	issued   map[string]float64 // tokens issued by kind
	latency  []float64          // cumulative counts of the latency buckets
	bounds   []float64          // their upper bounds, seconds
	sessions float64            // live ccmessaging sessions
	locks    float64            // lockout keys
	requests float64            // requests the latency histogram observed
}

// sampler keeps the recent samples.
type sampler struct {
	c       *Console
	mu      sync.Mutex
	samples []sample
}

func newSampler(c *Console) *sampler { return &sampler{c: c} }

// take reads the metrics registry and the live counts.
func (sm *sampler) take(r *http.Request, now time.Time) sample {
	s := sample{at: now, issued: map[string]float64{}}
	fams, _ := metrics.Registry.Gather()
	for _, f := range fams {
		switch f.GetName() {
		case "gatehouse_logins_total":
			for _, m := range f.GetMetric() {
				if refusedLogin(labels(m)["result"]) {
					s.failures += m.GetCounter().GetValue()
				}
			}
		case "gatehouse_tokens_issued_total":
			for _, m := range f.GetMetric() {
				s.issued[labels(m)["kind"]] += m.GetCounter().GetValue()
			}
		case "gatehouse_http_request_duration_seconds":
			for _, m := range f.GetMetric() {
				s.requests += float64(m.GetHistogram().GetSampleCount())
				bs := m.GetHistogram().GetBucket()
				if s.latency == nil {
					s.latency, s.bounds = make([]float64, len(bs)), make([]float64, len(bs))
				}
				for i, b := range bs {
					if i < len(s.latency) {
						s.latency[i] += float64(b.GetCumulativeCount())
						s.bounds[i] = b.GetUpperBound()
					}
				}
			}
		}
	}
	if sm.c.Messaging != nil {
		s.sessions = float64(len(sm.c.Messaging.Sessions("", "")))
	}
	if locks, err := sm.c.Engine.Locks(r.Context()); err == nil {
		s.locks = float64(len(locks))
	}
	return s
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// recent samples now if the last sample is old enough and returns a copy
// of the samples.
func (sm *sampler) recent(r *http.Request) []sample {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	now := time.Now()
	// A browser polls every sampleEvery; timers drift a little.
	if n := len(sm.samples); n == 0 || now.Sub(sm.samples[n-1].at) >= sampleEvery*9/10 {
		sm.samples = append(sm.samples, sm.take(r, now))
		if len(sm.samples) > maxSamples {
			sm.samples = sm.samples[len(sm.samples)-maxSamples:]
		}
	}
	return append([]sample(nil), sm.samples...)
}

// series is one chart: a value per sample interval (nil: no data).
type series struct {
	Name   string     `json:"name"`
	Unit   string     `json:"unit"`
	Points []*float64 `json:"points"`
}

// overviewData answers the charts as JSON: rates per minute between
// consecutive samples, gauges at each sample, p99 latency of the requests
// between samples. Series of resources the session may not read are left
// out.
func (c *Console) overviewData(w http.ResponseWriter, r *http.Request, s *session) {
	ss := c.charts.recent(r)
	rate := func(name string, f func(s sample) float64) series {
		out := series{Name: name, Unit: "/min", Points: []*float64{}}
		for i := 1; i < len(ss); i++ {
			dt := ss[i].at.Sub(ss[i-1].at).Minutes()
			v := math.Max(0, f(ss[i])-f(ss[i-1])) / dt
			out.Points = append(out.Points, &v)
		}
		return out
	}
	gauge := func(name string, f func(s sample) float64) series {
		out := series{Name: name, Points: []*float64{}}
		for _, x := range ss {
			v := f(x)
			out.Points = append(out.Points, &v)
		}
		return out
	}
	charts := []series{
		rate("Sign-ins", func(s sample) float64 { return s.issued[metrics.KindEngine] }),
		rate("Refused sign-ins", func(s sample) float64 { return s.failures }),
		rate("Access tokens issued", func(s sample) float64 { return s.issued[metrics.KindAccess] }),
		rate("ccmessaging tokens issued", func(s sample) float64 { return s.issued[metrics.KindCCMessaging] }),
	}
	if c.Messaging != nil && s.Can(authz.ResourceSession, authz.VerbGet) {
		charts = append(charts, gauge("Live sessions", func(s sample) float64 { return s.sessions }))
	}
	if s.Can(authz.ResourceAccount, authz.VerbGet) {
		charts = append(charts, gauge("Locks", func(s sample) float64 { return s.locks }))
	}
	p99 := series{Name: "p99 latency", Unit: "ms", Points: []*float64{}}
	for i := 1; i < len(ss); i++ {
		p99.Points = append(p99.Points, quantile(0.99, ss[i-1], ss[i]))
	}
	charts = append(charts, p99)
	wire.WriteJSON(w, http.StatusOK, map[string]any{"intervalSeconds": sampleEvery.Seconds(), "charts": charts})
}

// quantile estimates the q-quantile in milliseconds of the requests
// observed between a and b, interpolating within a bucket as Prometheus's
// histogram_quantile does; nil when there were none.
func quantile(q float64, a, b sample) *float64 {
	if len(b.latency) == 0 {
		return nil
	}
	delta := make([]float64, len(b.latency))
	for i := range b.latency {
		delta[i] = b.latency[i]
		if i < len(a.latency) {
			delta[i] -= a.latency[i]
		}
	}
	total := b.requests - a.requests
	if total <= 0 {
		return nil
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, cum := range delta {
		if cum >= rank {
			v := (lower + (b.bounds[i]-lower)*(rank-below)/math.Max(cum-below, 1)) * 1000
			return &v
		}
		lower, below = b.bounds[i], cum
	}
	v := lower * 1000 // beyond the last finite bucket: its bound
	return &v
}
