package audit

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// TestListWithMixedAgeBatches checks List's limit when one stored item
// holds records hours apart (the writers batch whatever is queued, and
// callers may set Time): no newer record may be passed over for an
// older one stored beside a recent record.
func TestListWithMixedAgeBatches(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := &Log{st: st, logger: slog.New(slog.DiscardHandler), retention: 48 * time.Hour}
	now := time.Now()
	at := func(age time.Duration) Record {
		return Record{Time: now.Add(-age), Action: "age-" + age.String(), Outcome: Success}
	}
	// Newest-first and oldest-first batches, each spanning many buckets.
	l.write([]Record{at(0), at(3 * time.Hour)})
	l.write([]Record{at(30 * time.Hour), at(20 * time.Minute)})
	l.write([]Record{at(5 * time.Hour)})

	want := []string{"age-0s", "age-20m0s", "age-3h0m0s", "age-5h0m0s", "age-30h0m0s"}
	for limit := 1; limit <= len(want); limit++ {
		recs, err := l.List(t.Context(), limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != limit {
			t.Fatalf("limit %d: %d records %+v", limit, len(recs), recs)
		}
		for i, r := range recs {
			if r.Action != want[i] {
				t.Fatalf("limit %d: record %d is %s, want %s", limit, i, r.Action, want[i])
			}
		}
	}
}
