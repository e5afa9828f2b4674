package verifier

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// BenchmarkRevocationCheck is what the revocation feed adds to a
// verification: the lookups of the token id and the account, here among
// 100 000 revoked ids and 10 000 accounts.
func BenchmarkRevocationCheck(b *testing.B) {
	rv := newRevocations()
	exp := time.Now().Add(time.Hour).Unix()
	for i := range 100000 {
		rv.tokens[fmt.Sprintf("jti-%d", i)] = exp
	}
	for i := range 10000 {
		name := fmt.Sprintf("account-%d", i)
		rv.accounts[name] = accountRevocation{Account: name, ID: "id-" + name, RevokedBefore: 1000}
	}
	c := &claims{Account: "account-42", RegisteredClaims: jwt.RegisteredClaims{ID: "not-revoked"}}
	c.Cred = &credential{"id-account-42", 1000}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rv.check(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// testKeys returns n distinct public keys named a, b, c…, generated
// once: the tests compare keys by pointer.
var testKeys = func() func(n int) []publicKey {
	var keys []publicKey
	return func(n int) []publicKey {
		for len(keys) < n {
			priv, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				panic(err)
			}
			keys = append(keys, publicKey{id: string(rune('a' + len(keys))), pub: &priv.PublicKey})
		}
		return keys[:n]
	}
}()

// TestKeysListing: a keys event drops at once the keys it does not list,
// including from a key set whose fetch started before it and ended after
// it, reports a listed key missing from the fetched set, and lets a key
// it lists again verify without a fetch; a key set whose fetch started
// after the last event is newer: its keys verify, less those the event
// dropped, and become the listing.
func TestKeysListing(t *testing.T) {
	k := testKeys(4)
	a, b, c, d := k[0], k[1], k[2], k[3]
	v := &Verifier{}
	t0 := time.Unix(1700000000, 0)
	v.install(newKeySet([]publicKey{a, b}), t0, 0)
	if got := v.current().all.Keys; !slices.Equal(got, []jwt.VerificationKey{a.pub, b.pub}) {
		t.Fatal("before any keys event, every fetched key verifies a token without kid")
	}

	if !v.list(map[string]bool{"b": true, "c": true}) {
		t.Fatal("list(b, c) over a fetched (a, b) reports no missing key")
	}
	ks := v.current()
	if ks.byID["a"] != nil || ks.byID["b"] != b.pub || !slices.Equal(ks.all.Keys, []jwt.VerificationKey{b.pub}) {
		t.Fatalf("after list(b, c): keys %v, want b alone", ks.byID)
	}
	// A fetch that started before the event, from a replica that still
	// published a.
	v.install(newKeySet([]publicKey{c, a, b}), t0.Add(time.Second), 0)
	ks = v.current()
	if ks.byID["a"] != nil || ks.byID["b"] != b.pub || ks.byID["c"] != c.pub || !slices.Equal(ks.all.Keys, []jwt.VerificationKey{c.pub, b.pub}) {
		t.Fatalf("after installing (c, a, b): keys %v, want c and b", ks.byID)
	}
	if v.list(map[string]bool{"a": true, "c": true}) {
		t.Fatal("list(a, c) with a and c fetched reports a missing key")
	}
	if ks = v.current(); ks.byID["a"] != a.pub || ks.byID["b"] != nil || !slices.Equal(ks.all.Keys, []jwt.VerificationKey{c.pub, a.pub}) {
		t.Fatalf("after list(a, c): keys %v, want c and a", ks.byID)
	}
	// A fetch that started after that event, from a replica that has a
	// new key d and still publishes b, which the event dropped.
	v.install(newKeySet([]publicKey{d, c, a, b}), t0.Add(2*time.Second), 2)
	if ks = v.current(); ks.byID["d"] != d.pub || ks.byID["b"] != nil || !slices.Equal(ks.all.Keys, []jwt.VerificationKey{d.pub, c.pub, a.pub}) {
		t.Fatalf("after installing (d, c, a, b) fetched after list(a, c): keys %v, want d, c and a", ks.byID)
	}
	if !maps.Equal(v.listed, map[string]bool{"d": true, "c": true, "a": true}) {
		t.Fatalf("listing %v after a fetch newer than the last keys event, want d, c and a", v.listed)
	}
}

// feedAt is a verifier fed by hand, with the clock *now and leeway.
func feedAt(now *time.Time, leeway time.Duration) *Verifier {
	return &Verifier{opts: Options{Now: func() time.Time { return *now }, Leeway: leeway, Feed: &Feed{}}, revs: newRevocations()}
}

// feed applies events of the feed, in their wire form, to v.
func feed(t *testing.T, v *Verifier, events ...[2]string) {
	t.Helper()
	for _, e := range events {
		if err := v.apply(context.Background(), e[0], []byte(e[1])); err != nil {
			t.Fatalf("%s %s: %v", e[0], e[1], err)
		}
	}
}

// TestRevocationCheck: what the feed's snapshot and events refuse.
// W, the watermark of most accounts, is the first millisecond of the
// second T.
func TestRevocationCheck(t *testing.T) {
	const T = 1700000000
	const W = T * 1000
	now := time.Unix(T, 0)
	v := feedAt(&now, 0)
	feed(t, v,
		[2]string{"snapshot", fmt.Sprintf(`{"revoked":[{"jti":"gone","exp":%d}],"accounts":[`+
			`{"account":"ann","id":"ann-1","revokedBeforeMs":%d},`+
			`{"account":"bob","id":"bob-1","revokedBeforeMs":%d},`+
			`{"account":"cat","id":"cat-1","revokedBeforeMs":%d},`+
			`{"account":"dan","id":"dan-1","revokedBeforeMs":%d},`+
			`{"account":"eve","id":"eve-1","revokedBeforeMs":%d},`+
			`{"account":"sam","deleted":true}]}`, T+3600, W-5000, W, W-1, W, W-9000)},
		[2]string{"revoke", fmt.Sprintf(`{"jti":"late","exp":%d}`, T+3600)},
		// ann's password changes: the watermark moves.
		[2]string{"account", fmt.Sprintf(`{"account":"ann","id":"ann-1","revokedBeforeMs":%d}`, W)},
		[2]string{"account", `{"account":"dan","deleted":true}`},
		// eve is deleted and created again.
		[2]string{"account", `{"account":"eve","deleted":true}`},
		[2]string{"account", fmt.Sprintf(`{"account":"eve","id":"eve-2","revokedBeforeMs":%d}`, W+1)},
	)
	type tok struct {
		account, jti string
		iat          int64 // unix s; 0: none
		exp          int64 // unix s; 0: an hour after T
		cred         *credential
	}
	cred := func(id string, ver int64) *credential { return &credential{id, ver} }
	cases := []struct {
		what string
		tok  tok
		want error
	}{
		{"revoked id, from the snapshot", tok{account: "zed", jti: "gone"}, ErrRevoked},
		{"revoked id, from an event", tok{account: "ann", jti: "late", cred: cred("ann-1", W)}, ErrRevoked},
		{"unknown account", tok{account: "zed", jti: "other", iat: T - 60}, nil},
		{"unknown account, no jti", tok{account: "zed"}, nil},
		{"cred before the password change", tok{account: "ann", cred: cred("ann-1", W-5000)}, ErrRevoked},
		{"cred a millisecond below the watermark", tok{account: "ann", cred: cred("ann-1", W-1)}, ErrRevoked},
		{"cred at the watermark: a login after the change", tok{account: "ann", cred: cred("ann-1", W)}, nil},
		{"cred ahead of the watermark: the feed not told yet", tok{account: "ann", cred: cred("ann-1", W+7)}, nil},
		{"cred of another record of the account", tok{account: "bob", cred: cred("bob-0", W)}, ErrRevoked},
		{"deleted account, by an event", tok{account: "dan", cred: cred("dan-1", W)}, ErrRevoked},
		{"deleted account, in the snapshot", tok{account: "sam", cred: cred("sam-1", W)}, ErrRevoked},
		{"deleted account, no cred", tok{account: "sam", iat: T + 60}, ErrRevoked},
		{"re-created account, token of the old record", tok{account: "eve", cred: cred("eve-1", W+5)}, ErrRevoked},
		{"re-created account, token of the new record", tok{account: "eve", cred: cred("eve-2", W+1)}, nil},
		{"no cred, iat second before the watermark", tok{account: "bob", iat: T - 1}, ErrRevoked},
		{"no cred, iat second starting in the watermark's millisecond", tok{account: "bob", iat: T}, ErrRevoked},
		{"no cred, iat second starting a millisecond after the watermark", tok{account: "cat", iat: T}, nil},
		{"no cred, issued after the watermark", tok{account: "bob", iat: T + 1}, nil},
		{"no cred nor iat, exp less 24 h in the watermark's millisecond", tok{account: "bob", exp: T + 24*3600}, ErrRevoked},
		{"no cred nor iat, exp less 24 h after the watermark", tok{account: "bob", exp: T + 24*3600 + 1}, nil},
	}
	for _, tc := range cases {
		c := &claims{Account: tc.tok.account, Cred: tc.tok.cred, RegisteredClaims: jwt.RegisteredClaims{ID: tc.tok.jti}}
		if tc.tok.iat != 0 {
			c.IssuedAt = jwt.NewNumericDate(time.Unix(tc.tok.iat, 0))
		}
		exp := cmp.Or(tc.tok.exp, T+3600)
		c.ExpiresAt = jwt.NewNumericDate(time.Unix(exp, 0))
		if err := v.revs.check(c); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, err, tc.want)
		}
	}
}

// TestAccountStampsPruned: an account's word from the feed is kept until
// neither its watermark nor its arrival is within the longest token
// lifetime, a minute and the leeway: then no token it refuses can still
// verify, and it is dropped.
func TestAccountStampsPruned(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	now := t0
	const leeway = 2 * time.Second
	v := feedAt(&now, leeway)
	feed(t, v, [2]string{"snapshot", fmt.Sprintf(`{"revoked":[],"accounts":[{"account":"old","id":"old-1","revokedBeforeMs":%d}]}`,
		t0.Add(-23*time.Hour).UnixMilli())})
	now = t0.Add(time.Hour)
	feed(t, v,
		[2]string{"account", fmt.Sprintf(`{"account":"new","id":"new-1","revokedBeforeMs":%d}`, now.UnixMilli())},
		[2]string{"account", `{"account":"gone","deleted":true}`},
		[2]string{"revoke", fmt.Sprintf(`{"jti":"a","exp":%d}`, now.Add(time.Hour).Unix())})
	// A token of "old" from before its watermark, which may verify until
	// the window ends.
	oldTok := &claims{Account: "old", Cred: &credential{"old-1", 0}}
	held := func() []string {
		v.revs.mu.RLock()
		defer v.revs.mu.RUnlock()
		var names []string
		for name := range v.revs.accounts {
			names = append(names, name)
		}
		for jti := range v.revs.tokens {
			names = append(names, "jti "+jti)
		}
		slices.Sort(names)
		return names
	}
	if got := held(); !slices.Equal(got, []string{"gone", "jti a", "new", "old"}) {
		t.Fatalf("at t0+1h: holds %q", got)
	}
	steps := []struct {
		at   time.Time
		want []string
	}{
		{t0.Add(relevance + leeway), []string{"gone", "new", "old"}},
		{t0.Add(relevance + leeway + time.Minute), []string{"gone", "new"}},
		{t0.Add(time.Hour + relevance + leeway), []string{"gone", "new"}},
		{t0.Add(time.Hour + relevance + leeway + time.Minute), nil},
	}
	for i, s := range steps {
		now = s.at
		// Any event prunes, at most once a minute; this one is pruned
		// itself (its token expired).
		feed(t, v, [2]string{"revoke", fmt.Sprintf(`{"jti":"x%d","exp":%d}`, i, t0.Unix())})
		if got := held(); !slices.Equal(got, s.want) {
			t.Fatalf("at t0+%v: holds %q, want %q", s.at.Sub(t0), got, s.want)
		}
		if slices.Contains(s.want, "old") && v.revs.check(oldTok) != ErrRevoked {
			t.Fatalf("at t0+%v: a token of old from before its watermark is not refused", s.at.Sub(t0))
		}
	}
}

// TestAnnouncedFetchesBounded: keys events naming a key the verifier has
// not fetched fetch the key set despite MinRefreshInterval, but one
// fetch at a time and announceAttempts at most per announced list of
// keys (the attempts for a list superseded meanwhile end early), however
// often a misbehaving feed repeats or changes the list, and none when
// nothing listed is missing.
func TestAnnouncedFetchesBounded(t *testing.T) {
	s := servertest.Start(t, nil)
	var served, running, most atomic.Int32
	var hold atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if hold.Load() {
			entered <- struct{}{}
			<-release
		}
		resp, err := http.Get(s.Base + "/.well-known/jwks.json")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(jwks.Close)
	opts := Options{JWKSURL: jwks.URL, MinRefreshInterval: 24 * time.Hour, Feed: &Feed{URL: "unused", Token: func(context.Context) (string, error) { return "", nil }}}
	if err := opts.defaults(); err != nil {
		t.Fatal(err)
	}
	v := &Verifier{opts: opts, revs: newRevocations()}
	life, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := v.refresh(life, time.Time{}); err != nil {
		t.Fatal(err)
	}
	kid := v.current().keys[0].id
	keys := func(ids ...string) [2]string {
		return [2]string{"keys", `{"keys":[{"id":"` + strings.Join(ids, `"},{"id":"`) + `"}]}`}
	}
	fetches := func(when string, want int32) {
		t.Helper()
		v.running.Wait()
		if n := served.Load(); n != want {
			t.Fatalf("%s: %d fetches of the key set, want %d", when, n, want)
		}
	}

	feed(t, v, keys(kid, "x"))
	fetches("a key announced and not published", 1+announceAttempts)
	feed(t, v, keys(kid, "x"), keys("x", kid), keys(kid, "x"))
	fetches("the same keys announced again", 1+announceAttempts)
	feed(t, v, keys(kid))
	fetches("keys announced, all fetched", 1+announceAttempts)

	hold.Store(true)
	feed(t, v, keys(kid, "y"))
	<-entered
	hold.Store(false)
	for i := range 5 {
		feed(t, v, keys(kid, fmt.Sprint("z", i)))
	}
	close(release)
	// The fetch for y, then announceAttempts for the last list.
	fetches("keys announced during a fetch", 1+announceAttempts+1+announceAttempts)
	if m := most.Load(); m != 1 {
		t.Fatalf("%d fetches of the key set at once, want 1", m)
	}
	if v.current().byID[kid] == nil {
		t.Fatal("the listed key fetched does not verify")
	}
}

// TestIssuedAtByJTI: a token without cred is revoked when issued at or
// before the account's watermark, the instant of issue read as
// Gatehouse reads it (internal/engine's issuedAtMs): from a version 7
// UUID jti, in any form the uuid package parses, before iat; from the
// first millisecond of the iat second when the jti is something else;
// else from exp less 24 h.
func TestIssuedAtByJTI(t *testing.T) {
	const T = 1700000000
	const W = T*1000 + 500 // the watermark, within the second T
	now := time.Unix(T+60, 0)
	v := feedAt(&now, 0)
	feed(t, v, [2]string{"snapshot", fmt.Sprintf(`{"revoked":[],"accounts":[{"account":"ann","id":"ann-1","revokedBeforeMs":%d}]}`, W)})
	v7 := func(ms int64) string { return fmt.Sprintf("%08x-%04x-7abc-8def-0123456789ab", ms>>16, ms&0xffff) }
	const v4 = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
	cases := []struct {
		what string
		jti  string
		iat  int64 // unix s; 0: none
		exp  int64 // unix s; 0: an hour after T
		ms   int64 // issuedAtMs
		want error
	}{
		{"v7 jti at the watermark", v7(W), 0, 0, W, ErrRevoked},
		{"v7 jti a millisecond before", v7(W - 1), 0, 0, W - 1, ErrRevoked},
		{"v7 jti a millisecond after", v7(W + 1), 0, 0, W + 1, nil},
		{"v7 jti after, iat second starting before: the jti decides", v7(W + 1), T, 0, W + 1, nil},
		{"v7 jti at the watermark, iat after: the jti decides", v7(W), T + 1, 0, W, ErrRevoked},
		{"v7 jti after, upper case", strings.ToUpper(v7(W + 1)), T, 0, W + 1, nil},
		{"v7 jti after, without hyphens", strings.ReplaceAll(v7(W+1), "-", ""), T, 0, W + 1, nil},
		{"v7 jti after, as a URN", "urn:uuid:" + v7(W+1), T, 0, W + 1, nil},
		{"v7 jti after, in braces", "{" + v7(W+1) + "}", T, 0, W + 1, nil},
		{"v7 jti, the largest instant", v7(1<<48 - 1), T, 0, 1<<48 - 1, nil},
		{"v7 jti cut short: iat decides", v7(W + 1)[:35], T, 0, T * 1000, ErrRevoked},
		{"v4 jti: iat second starting before", v4, T, 0, T * 1000, ErrRevoked},
		{"v4 jti: iat second after", v4, T + 1, 0, (T + 1) * 1000, nil},
		{"jti not a UUID: iat second starting before", "abc", T, 0, T * 1000, ErrRevoked},
		{"no jti: iat second after", "", T + 1, 0, (T + 1) * 1000, nil},
		{"no jti nor iat: exp less 24 h before", "", 0, T + 24*3600, T * 1000, ErrRevoked},
		{"no jti nor iat: exp less 24 h after", "", 0, T + 1 + 24*3600, (T + 1) * 1000, nil},
		{"v4 jti, no iat: exp less 24 h after", v4, 0, T + 1 + 24*3600, (T + 1) * 1000, nil},
	}
	for _, tc := range cases {
		c := &claims{Account: "ann", RegisteredClaims: jwt.RegisteredClaims{ID: tc.jti,
			ExpiresAt: jwt.NewNumericDate(time.Unix(cmp.Or(tc.exp, T+3600), 0))}}
		if tc.iat != 0 {
			c.IssuedAt = jwt.NewNumericDate(time.Unix(tc.iat, 0))
		}
		if ms := issuedAtMs(c); ms != tc.ms {
			t.Errorf("%s: issued at %d, want %d", tc.what, ms, tc.ms)
		}
		if err := v.revs.check(c); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, err, tc.want)
		}
	}
	if ms := issuedAtMs(&claims{}); ms != 0 {
		t.Errorf("no jti, iat nor exp: issued at %d, want 0", ms)
	}
}

// TestAnnouncedKeyFromLaggingReplica: a fetch for an announced key that
// reaches a replica not publishing it yet is tried again, soon; and the
// announced fetches, however many, do not delay the fetch a token
// naming a key still missing makes once MinRefreshInterval has passed
// since the last other fetch.
func TestAnnouncedKeyFromLaggingReplica(t *testing.T) {
	s := servertest.Start(t, nil)
	var served, hide atomic.Int32
	var hidden atomic.Value // the kid the replica does not publish yet
	hidden.Store("")
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		resp, err := http.Get(s.Base + "/.well-known/jwks.json")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if hide.Add(-1) >= 0 {
			set.Keys = slices.DeleteFunc(set.Keys, func(k map[string]any) bool { return k["kid"] == hidden.Load() })
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(jwks.Close)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	opts := Options{JWKSURL: jwks.URL, Now: func() time.Time { return time.Unix(0, now.Load()) },
		Feed: &Feed{URL: "unused", Token: func(context.Context) (string, error) { return "", nil }}}
	if err := opts.defaults(); err != nil {
		t.Fatal(err)
	}
	v := &Verifier{opts: opts, revs: newRevocations()}
	life, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := v.refresh(life, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ids := []string{v.current().keys[0].id}
	rotate := func() string {
		var rotated struct{ ID string }
		r := s.Call("POST", "/v4/keys/rotate", s.Root(), map[string]bool{"immediate": true})
		r.JSON(t, &rotated)
		ids = append([]string{rotated.ID}, ids...)
		hidden.Store(rotated.ID)
		return rotated.ID
	}
	announce := func() {
		t.Helper()
		feed(t, v, [2]string{"keys", `{"keys":[{"id":"` + strings.Join(ids, `"},{"id":"`) + `"}]}`})
		v.running.Wait()
	}

	first := rotate()
	hide.Store(1)
	announce()
	if v.current().byID[first] == nil {
		t.Fatal("an announced key the first fetch missed does not verify")
	}
	if n := served.Load(); n != 3 {
		t.Fatalf("%d fetches of the key set, want 3 (New's, the lagging one, the retry)", n)
	}

	now.Add(int64(opts.MinRefreshInterval + time.Second))
	second := rotate()
	hide.Store(announceAttempts)
	announce()
	if v.current().byID[second] != nil {
		t.Fatal("a key no fetch brought verifies")
	}
	if n := served.Load(); n != 3+announceAttempts {
		t.Fatalf("%d fetches of the key set, want %d", n, 3+announceAttempts)
	}
	if _, _, err := v.key(life, second); err != nil {
		t.Fatalf("a token of the announced key, MinRefreshInterval after New's fetch: %v", err)
	}
}
