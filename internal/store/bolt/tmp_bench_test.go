package bolt_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

func BenchmarkTmpDelay(b *testing.B) {
	for _, d := range []time.Duration{100 * time.Microsecond, 500 * time.Microsecond, 2 * time.Millisecond, 10 * time.Millisecond} {
		for _, par := range []int{1, 4, 32} {
			b.Run(fmt.Sprintf("delay=%v/par=%d", d, par), func(b *testing.B) {
				s := newStore(b, bolt.Options{BatchDelay: d})
				var writers atomic.Int64
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					key := fmt.Sprintf("counter/%d", writers.Add(1))
					for pb.Next() {
						if _, err := s.Put(context.Background(), store.Item{Key: key, Value: []byte("x")}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
