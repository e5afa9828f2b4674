package keyring

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// statuses returns the ids and statuses of the ring's keys, newest first.
func statuses(r *Ring) []string {
	var out []string
	for _, k := range r.Keys() {
		out = append(out, k.ID+":"+k.Status)
	}
	return out
}

// A pre-published key is in the JWKS at once and signs from its
// activation instant on, by the ring's clock; a second pre-published
// rotation while it waits changes nothing.
func TestPrepublishedRotation(t *testing.T) {
	clk := testclock.New(time.Now())
	const prepublish = 90 * time.Second
	r := openRing(t, newStore(t), Options{PrivateKeyPEM: pkcs1PEM(fixtureKeys()[0]), Prepublish: prepublish, Now: clk.Now})
	if got := r.CacheLifetime(); got != MaxJWKSCacheLifetime {
		t.Fatalf("cache lifetime %v with a pre-publication of %v", got, prepublish)
	}
	old := activeID(t, r)
	next, err := r.RotateWith(t.Context(), RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if next.Status != StatusPending || !next.Activates.Equal(clk.Now().Add(prepublish)) {
		t.Fatalf("pre-published key %+v, want pending until %v", next, clk.Now().Add(prepublish))
	}
	if ids := jwksIDs(t, r); !slices.Equal(ids, []string{next.ID, old}) {
		t.Fatalf("JWKS %v, want the pending key then the active one", ids)
	}
	if again, err := r.RotateWith(t.Context(), RotateOptions{}); err != nil || again.ID != next.ID {
		t.Fatalf("second rotation while a key waits: %+v, %v", again, err)
	}
	if _, err := r.RotateWith(t.Context(), RotateOptions{Revoke: true}); !errors.Is(err, ErrRevokeNeedsImmediate) {
		t.Fatalf("revoke without immediate: %v", err)
	}
	clk.Advance(prepublish - time.Nanosecond)
	oldToken := mustSign(t, r)
	if kid := parsedKID(t, r, oldToken); kid != old {
		t.Fatalf("just before activation the ring signs with %s, want %s", kid, old)
	}
	clk.Advance(time.Nanosecond)
	if kid := parsedKID(t, r, mustSign(t, r)); kid != next.ID {
		t.Fatalf("at activation the ring signs with %s, want %s", kid, next.ID)
	}
	if got, want := statuses(r), []string{next.ID + ":" + StatusActive, old + ":" + StatusRetired}; !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if _, err := parse(r, oldToken); err != nil {
		t.Fatalf("token of the retired key: %v", err)
	}
	if exp := r.Keys()[1].Expires; !exp.Equal(next.Activates.Add(DefaultMaxTokenLifetime)) {
		t.Fatalf("retired key expires %v, want its successor's activation plus the token lifetime", exp)
	}

	short := openRing(t, newStore(t), Options{Prepublish: 10 * time.Second})
	if got := short.CacheLifetime(); got != 10*time.Second {
		t.Fatalf("cache lifetime %v, want the pre-publication time", got)
	}
}

// An immediate rotation drops a key waiting to sign; with Revoke every
// earlier key stops verifying at once, leaves the JWKS and is never
// imported again, and Withdrawn tells caches to verify again.
func TestRevokingRotation(t *testing.T) {
	clk := testclock.New(time.Now())
	st := newStore(t)
	r := openRing(t, st, Options{PrivateKeyPEM: pkcs1PEM(fixtureKeys()[0]), Now: clk.Now})
	imported := activeID(t, r)
	oldToken := mustSign(t, r)
	pending, err := r.RotateWith(t.Context(), RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now, err := r.RotateWith(t.Context(), RotateOptions{Immediate: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(r), []string{now.ID + ":" + StatusActive, imported + ":" + StatusRetired}; !slices.Equal(got, want) {
		t.Fatalf("keys after an immediate rotation %v, want %v (the pending key %s dropped)", got, want, pending.ID)
	}
	if _, err := parse(r, oldToken); err != nil {
		t.Fatalf("immediate rotation without revoke refused an old token: %v", err)
	}

	withdrawn := r.Withdrawn()
	midToken := mustSign(t, r)
	last, err := r.RotateWith(t.Context(), RotateOptions{Immediate: true, Revoke: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{oldToken, midToken} {
		if _, err := parse(r, tok); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("token of a revoked key: %v, want ErrUnknownKey", err)
		}
	}
	if ids := jwksIDs(t, r); !slices.Equal(ids, []string{last.ID}) {
		t.Fatalf("JWKS after revocation %v", ids)
	}
	if r.Withdrawn() == withdrawn {
		t.Fatal("Withdrawn unchanged after revocation")
	}
	if rec := storedRing(t, st); !slices.Contains(rec.Expired, imported) || !slices.Contains(rec.Expired, now.ID) {
		t.Fatalf("revoked keys not recorded as expired: %v", rec.Expired)
	}
	res, err := Import(t.Context(), st, Options{PrivateKeyPEM: pkcs1PEM(fixtureKeys()[0]), Now: clk.Now}, true)
	if err != nil || res.Outcome != ImportExpired {
		t.Fatalf("importing the revoked key again: %+v, %v", res, err)
	}
}

// Replicas racing on the schedule publish exactly one key per period,
// and all sign with it from its activation on.
func TestScheduledRotationRace(t *testing.T) {
	endpoints := etcdtest.Start(t, t.TempDir(), 1).Endpoints()
	clk := testclock.New(time.Now())
	const every, prepublish = time.Hour, time.Minute
	var rings []*Ring
	for range 2 {
		st, err := etcd.Open(t.Context(), etcd.Config{Endpoints: endpoints})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		rings = append(rings, openRing(t, st, Options{RotateEvery: every, Prepublish: prepublish, Now: clk.Now}))
	}
	activation := clk.Now()
	for round := 1; round <= 3; round++ {
		clk.Advance(activation.Add(every - prepublish).Sub(clk.Now()))
		var wg sync.WaitGroup
		for _, r := range rings {
			for range 3 {
				wg.Go(func() { r.rotateIfDue(t.Context()) })
			}
		}
		wg.Wait()
		rec := storedRing(t, rings[0].st)
		if len(rec.Keys) != round+1 || !rec.Keys[0].Activates.Equal(activation.Add(every)) {
			t.Fatalf("round %d: stored keys %+v", round, rec.Keys)
		}
		next := rec.Keys[0].ID
		activation = activation.Add(every)
		for _, r := range rings {
			eventually(t, "the next key on every replica", func() bool {
				return r.Keys()[0].ID == next
			})
		}
		clk.Advance(activation.Sub(clk.Now()))
		for i, r := range rings {
			if kid := parsedKID(t, r, mustSign(t, r)); kid != next {
				t.Fatalf("round %d: replica %d signs with %s at activation, want %s", round, i, kid, next)
			}
		}
	}
}

// rotationDue publishes a key one period after the current one started,
// pre-publication ahead, or at once with a full pre-publication when the
// schedule was missed; never while a key waits.
func TestRotationDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const every, prepublish = time.Hour, 2 * time.Minute
	rec := ringRecord{Keys: []keyRecord{{ID: "a", Created: start}}}
	if _, due := rec.rotationDue(start.Add(58*time.Minute-time.Nanosecond), every, prepublish); due {
		t.Fatal("due before the pre-publication window")
	}
	if at, due := rec.rotationDue(start.Add(58*time.Minute), every, prepublish); !due || !at.Equal(start.Add(time.Hour)) {
		t.Fatalf("at the window: %v %v, want due for %v", at, due, start.Add(time.Hour))
	}
	late := start.Add(5 * time.Hour)
	if at, due := rec.rotationDue(late, every, prepublish); !due || !at.Equal(late.Add(prepublish)) {
		t.Fatalf("missed schedule: %v %v, want due for %v", at, due, late.Add(prepublish))
	}
	waiting, err := rec.prepublished(keyRecord{ID: "b", Created: late}, late.Add(prepublish), late, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, due := waiting.rotationDue(late.Add(time.Minute), every, prepublish); due {
		t.Fatal("due while a key waits")
	}
	// The next period starts at the waiting key's activation.
	if at, due := waiting.rotationDue(late.Add(prepublish+58*time.Minute), every, prepublish); !due || !at.Equal(late.Add(prepublish+time.Hour)) {
		t.Fatalf("next period: %v %v", at, due)
	}
}
