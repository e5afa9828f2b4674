// Package gcpolicy owns the pacing of the process's garbage collector: a
// headroom policy that never lets the heap goal fall less than a fixed
// number of bytes above the live heap. Password hashing allocates a
// large, short-lived block per hash; with Go's default proportional goal
// (twice the live heap) a small server collects many times a second under
// login load, while a fixed headroom lets those blocks die between
// collections. Once the live heap is larger than the headroom, Go's
// default goal already leaves that much room and the policy changes
// nothing.
package gcpolicy

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultHeadroom is the headroom Gatehouse runs with, in bytes: room for
// a dozen concurrent argon2id hashes at the default cost (19 MiB each)
// plus slack.
const DefaultHeadroom = 256 << 20

const (
	// defaultPercent is the runtime's default GOGC: the policy never sets
	// a lower one.
	defaultPercent = 100
	// minLive is the smallest live heap the policy computes with, the
	// runtime's own minimum heap at the default GOGC; it bounds the
	// percentage while the live heap is tiny or not yet measured. The
	// runtime scales its minimum heap with the percentage, so below
	// minLive the goal is the headroom itself.
	minLive = 4 << 20
	// maxHeadroom bounds the headroom, so that the percentage computed
	// from it stays well within the range the runtime accepts.
	maxHeadroom = 1 << 40
	// liveMetric is the heap marked live by the last completed cycle: the
	// base the runtime computes its proportional goal from, so it is what
	// the percentage must be derived from. /gc/heap/goal:bytes is an
	// output of the percentage itself, and allocated bytes (including
	// runtime.MemStats.HeapAlloc, read by stopping the world) count the
	// garbage of the running cycle too.
	liveMetric = "/gc/heap/live:bytes"
)

// Start applies the headroom policy until stop is called: the garbage
// collector's heap goal is kept at least headroom bytes above the live
// heap, and never below Go's default goal (GOGC=100, twice the live heap,
// with a live heap counted as at least 4 MiB). It sets the GC percentage at once from the live heap of the last
// collection, then again at the end of every collection, and stop
// restores the percentage found at Start; calling stop again does
// nothing.
//
// The end of a collection is observed through a sentinel object with a
// runtime cleanup: each collection frees the sentinel, whose cleanup
// recomputes the percentage and allocates the next sentinel. This follows
// the live heap exactly as often as it can change, with no goroutine of
// its own and no polling interval, and costs nothing while the process
// does not allocate. Cleanups run on a runtime goroutine: when every CPU
// is busy one may run late, and the next collection may then start with
// the percentage computed for the previous one.
//
// Start does nothing (and stop nothing) when headroom is 0 or GOGC is set
// in the environment (to anything but the empty string, which the
// runtime ignores too): explicit tuning the policy respects. A
// memory limit (GOMEMLIMIT or debug.SetMemoryLimit) still applies on top
// of the policy: the runtime collects as often as needed to stay under
// it, whatever the percentage. Headrooms above 1 TiB count as 1 TiB. At
// most one policy should run at a time.
func Start(headroom uint64) (stop func()) {
	if headroom == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	p := &policy{headroom: headroom}
	p.original = debug.SetGCPercent(gcPercent(liveHeap(), p.headroom))
	p.arm()
	return p.stop
}

// policy is a running headroom policy.
type policy struct {
	headroom uint64
	original int // the GC percentage before Start

	mu      sync.Mutex
	stopped bool
}

// sentinel is an object allocated only to be collected. It holds a
// pointer so that the allocator never batches it with other small
// objects, which could keep it reachable and its cleanup from running.
type sentinel struct{ _ *int }

// arm attaches the policy to a new sentinel, so that it runs again at the
// end of the next collection.
func (p *policy) arm() {
	runtime.AddCleanup(new(sentinel), (*policy).collected, p)
}

// collected recomputes the GC percentage after a collection and rearms
// the policy, unless it was stopped.
func (p *policy) collected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	debug.SetGCPercent(gcPercent(liveHeap(), p.headroom))
	p.arm()
}

// stop ends the policy and restores the original GC percentage.
func (p *policy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	debug.SetGCPercent(p.original)
}

// gcPercent returns the GC percentage whose goal lies at least headroom
// bytes (counting at most maxHeadroom) above a live heap of live bytes,
// and never below the default percentage. The runtime's goal is live +
// (live + stacks + globals) * percent / 100, so rounding the percentage
// up guarantees the headroom.
func gcPercent(live, headroom uint64) int {
	live = max(live, minLive)
	p := (min(headroom, maxHeadroom)*100 + live - 1) / live
	return int(max(defaultPercent, p))
}

// liveHeap returns the heap marked live by the last collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: liveMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
