package bench

import (
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets: each power of two of
// nanoseconds is split into subBuckets equal parts, so a recorded value is
// known within 1/subBuckets (about 3 %). It needs no allocation to record.
type histogram struct {
	counts [64 * subBuckets]uint64
	n      uint64
}

// subBits is log2 of the number of buckets per power of two.
const (
	subBits    = 5
	subBuckets = 1 << subBits
)

// bucket returns the index of the bucket holding ns.
func bucket(ns uint64) int {
	if ns < subBuckets {
		return int(ns)
	}
	exp := bits.Len64(ns) - 1 - subBits // how far ns is shifted to keep subBits+1 bits
	return (exp+1)<<subBits | int(ns>>uint(exp)&(subBuckets-1))
}

// bucketValue returns the middle of bucket i, in nanoseconds.
func bucketValue(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	exp := i>>subBits - 1
	low := (subBuckets | uint64(i&(subBuckets-1))) << uint(exp)
	return low + (uint64(1)<<uint(exp))/2
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucket(uint64(max(d, 0)))]++
	h.n++
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the latency below which a fraction q of the recorded
// values lie (0 when nothing was recorded).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(bucketValue(i))
		}
	}
	return time.Duration(bucketValue(len(h.counts) - 1))
}
