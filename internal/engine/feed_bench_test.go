package engine

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// BenchmarkFeedPublish measures one revoked token id reaching the feed:
// the revoked-id table and the feed applying the change (as Table.Follow
// hands it to both) and the event queued for every subscriber, with the
// history full so every change evicts the oldest one.
func BenchmarkFeedPublish(b *testing.B) {
	for _, n := range []int{0, 1, 16, 256} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			f, accounts, revoked := newTestFeed(b, feedHistory)
			for _, h := range []followedSource{accounts, revoked} {
				h.Reset(nil)
				h.Listed(1)
			}
			value := store.EncodeJSON(revokedRecord{Exp: time.Now().Add(time.Hour).Unix()})
			rev := int64(1)
			apply := func() {
				rev++
				ev := store.Event{Type: store.EventPut, Item: store.Item{Key: revokedPrefix + "jti-" + strconv.FormatInt(rev, 10), Value: value, Revision: rev}}
				revoked.Apply(ev)
			}
			for range feedHistory {
				apply()
			}
			subs := make([]*Subscription, n)
			for i := range subs {
				subs[i], _ = f.Subscribe("")
			}
			drain := func() {
				for _, s := range subs {
					for len(s.ch) > 0 {
						<-s.ch
					}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				apply()
				if i%(feedBacklog/2) == 0 {
					b.StopTimer()
					drain()
					b.StartTimer()
				}
			}
			b.StopTimer()
			for _, s := range subs {
				if s.closed {
					b.Fatal("a subscriber was dropped")
				}
				s.Close()
			}
		})
	}
}
