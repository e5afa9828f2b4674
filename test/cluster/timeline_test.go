package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// timeline records what probing clients saw over an outage: the status of
// every probe request and when it was sent, and named instants.
type timeline struct {
	mu     sync.Mutex
	probes []string            // in order of first sample
	series map[string][]sample // by probe
	marks  []mark
	wg     sync.WaitGroup
}

type sample struct {
	at     time.Time
	status int // 0: transport error
	took   time.Duration
}

type mark struct {
	at   time.Time
	what string
}

func newTimeline() *timeline { return &timeline{series: map[string][]sample{}} }

// probe sends a request with do every interval until ctx ends, recording
// each answer under name. Wait waits for every probe to stop.
func (tl *timeline) probe(ctx context.Context, name string, interval time.Duration, do func() (reply, error)) {
	tl.wg.Go(func() {
		for ctx.Err() == nil {
			sent := time.Now()
			r, err := do()
			if err != nil {
				r.Status = 0
			}
			tl.record(name, sample{at: sent, status: r.Status, took: time.Since(sent)})
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	})
}

// wait waits until every probe stopped.
func (tl *timeline) wait() { tl.wg.Wait() }

func (tl *timeline) record(name string, s sample) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if _, ok := tl.series[name]; !ok {
		tl.probes = append(tl.probes, name)
	}
	tl.series[name] = append(tl.series[name], s)
}

// mark records that what happened now.
func (tl *timeline) mark(what string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.marks = append(tl.marks, mark{time.Now(), what})
}

// report renders the timeline relative to zero: the marks, then for each
// probe its runs of equal status with their span, request count and
// slowest answer.
func (tl *timeline) report(zero time.Time) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	rel := func(at time.Time) string { return fmt.Sprintf("%+.1fs", at.Sub(zero).Seconds()) }
	var b strings.Builder
	for _, m := range tl.marks {
		fmt.Fprintf(&b, "  %7s  %s\n", rel(m.at), m.what)
	}
	for _, name := range tl.probes {
		fmt.Fprintf(&b, "  %s:\n", name)
		s := tl.series[name]
		for i := 0; i < len(s); {
			j := i
			for j < len(s) && s[j].status == s[i].status {
				j++
			}
			slowest := slices.MaxFunc(s[i:j], func(x, y sample) int { return int(x.took - y.took) }).took
			status := fmt.Sprint(s[i].status)
			if s[i].status == 0 {
				status = "error"
			}
			fmt.Fprintf(&b, "    %s from %s to %s: %d requests, slowest %v\n",
				status, rel(s[i].at), rel(s[j-1].at), j-i, slowest.Round(time.Millisecond))
			i = j
		}
	}
	return b.String()
}
