package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
)

// openStore opens a bolt store in a temporary directory for the test.
func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestRecordStoreAndList(t *testing.T) {
	st := openStore(t)
	var logs bytes.Buffer
	l := audit.New(st, slog.New(slog.NewJSONHandler(&logs, nil)), time.Hour)
	base := time.Now()
	for i, action := range []string{"login", "account.create", "role.delete"} {
		l.Record(audit.Record{Time: base.Add(time.Duration(i) * time.Millisecond), Actor: "root", IP: "127.0.0.1", Action: action, Outcome: audit.Success})
	}
	l.Change("root", "10.0.0.1", "account.update", "bob", apierror.AccountNotExist.WithDetail("secret-ish input"))
	l.Change("root", "10.0.0.1", "account.delete", "bob", errors.New("disk on fire"))
	l.Close()                                     // flushes the queue
	l.Record(audit.Record{Action: "after-close"}) // must not panic

	recs, err := l.List(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("stored %d records, want 5: %+v", len(recs), recs)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Time.After(recs[i-1].Time) {
			t.Fatalf("records not newest first: %+v", recs)
		}
	}
	byAction := map[string]audit.Record{}
	for _, r := range recs {
		byAction[r.Action] = r
	}
	if r := byAction["account.update"]; r.Outcome != audit.Failure || r.Detail != "400200 Account not exists" {
		t.Fatalf("failed change recorded as %+v", r)
	}
	if r := byAction["account.delete"]; r.Detail != "internal error" {
		t.Fatalf("internal failure recorded as %+v", r)
	}
	if strings.Contains(logs.String(), "secret-ish") || strings.Contains(logs.String(), "disk on fire") {
		t.Fatal("error input leaked into the audit log")
	}
	if n := strings.Count(logs.String(), `"msg":"audit"`); n != 6 {
		t.Fatalf("%d audit log lines, want 6", n)
	}
	two, err := l.List(context.Background(), 2)
	if err != nil || len(two) != 2 || two[0] != recs[0] {
		t.Fatalf("limit 2: %v %+v", err, two)
	}
}

// TestListSpansTimeBuckets checks that List finds records across many
// of its time buckets, newest first, and honours the retention window.
func TestListSpansTimeBuckets(t *testing.T) {
	st := openStore(t)
	l := audit.New(st, slog.New(slog.DiscardHandler), 48*time.Hour)
	now := time.Now()
	ages := []time.Duration{0, 20 * time.Minute, 3 * time.Hour, 30 * time.Hour}
	for _, age := range ages {
		l.Record(audit.Record{Time: now.Add(-age), Action: "age-" + age.String(), Outcome: audit.Success})
	}
	l.Close()
	recs, err := l.List(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(ages) {
		t.Fatalf("listed %d records, want %d: %+v", len(recs), len(ages), recs)
	}
	for i, age := range ages {
		if recs[i].Action != "age-"+age.String() {
			t.Fatalf("record %d is %s, want age-%s", i, recs[i].Action, age)
		}
	}
	two, err := l.List(t.Context(), 2)
	if err != nil || len(two) != 2 || two[1].Action != "age-20m0s" {
		t.Fatalf("limit 2: %v %+v", err, two)
	}
}

// TestListWithMixedAgeBatches checks List's limit when one stored item
// holds records hours apart (the writers batch whatever is queued, and
// callers may set Time): no newer record may be passed over for an
// older one stored beside a recent record.
func TestListWithMixedAgeBatches(t *testing.T) {
	l := audit.New(openStore(t), slog.New(slog.DiscardHandler), 48*time.Hour)
	defer l.Close()
	now := time.Now()
	at := func(age time.Duration) audit.Record {
		return audit.Record{Time: now.Add(-age), Action: "age-" + age.String(), Outcome: audit.Success}
	}
	// Newest-first and oldest-first batches, each spanning many buckets.
	l.WriteBatch([]audit.Record{at(0), at(3 * time.Hour)})
	l.WriteBatch([]audit.Record{at(30 * time.Hour), at(20 * time.Minute)})
	l.WriteBatch([]audit.Record{at(5 * time.Hour)})

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

// putStore is a store whose Puts go through put.
type putStore struct {
	store.Store
	put func(ctx context.Context, it store.Item) (store.Item, error)
}

func (s putStore) Put(ctx context.Context, it store.Item) (store.Item, error) { return s.put(ctx, it) }

// TestRecordWaitsForTheStore checks that Record returns only once the
// store write holding its record returned, and that RecordAsync does not
// wait for it.
func TestRecordWaitsForTheStore(t *testing.T) {
	bs := openStore(t)
	var stored sync.Map // targets of the records in Puts that returned
	release := make(chan struct{})
	st := putStore{bs, func(ctx context.Context, it store.Item) (store.Item, error) {
		<-release
		out, err := bs.Put(ctx, it)
		var recs []audit.Record
		if err := json.Unmarshal(it.Value, &recs); err != nil {
			t.Error(err)
		}
		for _, r := range recs {
			stored.Store(r.Target, true)
		}
		return out, err
	}}
	l := audit.New(st, slog.New(slog.DiscardHandler), time.Hour)
	defer l.Close()

	l.RecordAsync(audit.Record{Action: "session.renew", Target: "async", Outcome: audit.Success}) // the writer blocks in Put
	const callers = 8
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			target := fmt.Sprintf("caller-%d", i)
			l.Record(audit.Record{Action: "login", Target: target, Outcome: audit.Success})
			if _, ok := stored.Load(target); !ok {
				errs <- fmt.Errorf("Record of %s returned before its record was stored", target)
				return
			}
			errs <- nil
		}()
	}
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecordWhenStoreFails checks that a failed store write neither
// blocks nor fails Record: the record stays in the log and is counted.
func TestRecordWhenStoreFails(t *testing.T) {
	st := putStore{openStore(t), func(context.Context, store.Item) (store.Item, error) {
		return store.Item{}, store.ErrUnavailable
	}}
	var logs bytes.Buffer
	l := audit.New(st, slog.New(slog.NewJSONHandler(&logs, nil)), time.Hour)
	defer l.Close()
	before := unstored(t, "store_error")
	l.Record(audit.Record{Action: "account.delete", Target: "bob", Outcome: audit.Success})
	if n := unstored(t, "store_error") - before; n != 1 {
		t.Fatalf("unstored records counted: %v, want 1", n)
	}
	if !strings.Contains(logs.String(), `"msg":"audit","action":"account.delete"`) ||
		!strings.Contains(logs.String(), "audit records not stored") {
		t.Fatalf("log lacks the record or the failure:\n%s", logs.String())
	}
}

// unstored reads gatehouse_audit_records_unstored_total{reason}.
func unstored(t *testing.T, reason string) float64 {
	t.Helper()
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "gatehouse_audit_records_unstored_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestQuery checks Query's filter (time range, actor, action prefix,
// outcome) and limit over records spread across time buckets and mixed in
// stored items, and that it searches every record kept: a match older
// than thousands of newer records that do not match is found.
func TestQuery(t *testing.T) {
	l := audit.New(openStore(t), slog.New(slog.DiscardHandler), 48*time.Hour)
	defer l.Close()
	now := time.Now().Truncate(time.Millisecond)
	rec := func(age time.Duration, actor, action, outcome string) audit.Record {
		return audit.Record{Time: now.Add(-age), Actor: actor, Action: action, Target: age.String(), Outcome: outcome}
	}
	l.WriteBatch([]audit.Record{rec(0, "root", "login", audit.Success), rec(40*time.Hour, "bob", "account.delete", audit.Success)})
	l.WriteBatch([]audit.Record{rec(time.Hour, "bob", "account.create", audit.Failure), rec(2*time.Hour, "root", "account.update", audit.Success)})
	l.WriteBatch([]audit.Record{rec(30*time.Hour, "root", "role.create", audit.Failure)})
	var noise []audit.Record // newer than every record above but one
	for i := range 6000 {
		noise = append(noise, rec(time.Duration(i+1)*time.Millisecond, "svc", "session.renew", audit.Success))
	}
	for len(noise) > 0 {
		n := min(len(noise), 500)
		l.WriteBatch(noise[:n])
		noise = noise[n:]
	}

	for _, tc := range []struct {
		name  string
		f     audit.Filter
		limit int
		want  []string // targets, newest first
	}{
		{"actor", audit.Filter{Actor: "bob"}, 0, []string{"1h0m0s", "40h0m0s"}},
		{"action prefix", audit.Filter{Action: "account."}, 0, []string{"1h0m0s", "2h0m0s", "40h0m0s"}},
		{"outcome", audit.Filter{Outcome: audit.Failure}, 0, []string{"1h0m0s", "30h0m0s"}},
		{"limit", audit.Filter{Action: "account."}, 2, []string{"1h0m0s", "2h0m0s"}},
		{"from inclusive", audit.Filter{From: now.Add(-30 * time.Hour), Actor: "root"}, 0, []string{"0s", "2h0m0s", "30h0m0s"}},
		{"to exclusive", audit.Filter{To: now.Add(-2 * time.Hour), Actor: "root"}, 0, []string{"30h0m0s"}},
		{"range", audit.Filter{From: now.Add(-31 * time.Hour), To: now.Add(-time.Hour)}, 0, []string{"2h0m0s", "30h0m0s"}},
		{"none", audit.Filter{Actor: "nobody"}, 10, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := l.Query(t.Context(), tc.f, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, r := range recs {
				got = append(got, r.Target)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if recs, err := l.Query(t.Context(), audit.Filter{}, 3); err != nil || len(recs) != 3 || recs[0].Actor != "root" || recs[1].Actor != "svc" {
		t.Fatalf("no filter, limit 3: %v %+v", err, recs)
	}
}
