package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// twoReplicas starts two servers on one etcd cluster, both reading clk.
func twoReplicas(t *testing.T, clk *testclock.Clock, mod func(*server.Config)) (a, b *servertest.Server) {
	t.Helper()
	endpoints := etcdtest.Start(t, t.TempDir(), 1).Endpoints()
	cfg := func(c *server.Config) {
		c.Store, c.EtcdEndpoints, c.Now = "etcd", endpoints, clk.Now
		if mod != nil {
			mod(c)
		}
	}
	return servertest.Start(t, cfg), servertest.Start(t, cfg)
}

// keyStatus is an entry of GET /v4/keys.
type keyStatus struct {
	ID, Status string
	Activates  time.Time
}

// keysOf lists the keys of a replica.
func keysOf(t *testing.T, s *servertest.Server, tok string) []keyStatus {
	t.Helper()
	r := s.Call("GET", "/v4/keys", tok, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v4/keys: %d %s", r.Status, r.Body)
	}
	var list struct{ Data []keyStatus }
	r.JSON(t, &list)
	return list.Data
}

// kidOf returns the kid header of a token.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

// within polls cond until it holds, failing the test after a deadline.
func within(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cachingVerifier is a verifier as generic JWT middleware builds it: it
// fetches the JWKS, keeps it for the max-age of its Cache-Control (by the
// test clock) and verifies tokens with the keys it holds, without
// fetching again when a kid is unknown.
type cachingVerifier struct {
	t       *testing.T
	url     string
	clk     *testclock.Clock
	keys    map[string]any
	expires time.Time
	fetches int
}

func (v *cachingVerifier) verify(tok string) error {
	v.t.Helper()
	if now := v.clk.Now(); v.keys == nil || !now.Before(v.expires) {
		r := servertest.Send(v.t, "GET", v.url, "", nil)
		maxAge, ok := strings.CutPrefix(r.Header.Get("Cache-Control"), "public, max-age=")
		secs, err := strconv.Atoi(maxAge)
		if r.Status != http.StatusOK || !ok || err != nil || secs <= 0 {
			v.t.Fatalf("JWKS: %d, Cache-Control %q", r.Status, r.Header.Get("Cache-Control"))
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(r.Body, &set); err != nil {
			v.t.Fatal(err)
		}
		v.keys = map[string]any{}
		for _, k := range set.Keys {
			v.keys[k.KeyID] = k.Key
		}
		v.expires = now.Add(time.Duration(secs) * time.Second)
		v.fetches++
	}
	_, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		if k, ok := v.keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("kid %s is not in the cached JWKS", kid)
	}, jwt.WithValidMethods([]string{"RS512"}), jwt.WithTimeFunc(v.clk.Now))
	return err
}

// Scheduled rotation on two replicas: each period exactly one of them
// publishes the next key, though both check the schedule; both sign with
// it from its activation instant on; a verifier that refreshes the JWKS at
// its cache lifetime verifies every token of both replicas throughout.
func TestScheduledRotationTwoReplicas(t *testing.T) {
	const every, prepublish, step = time.Hour, 2 * time.Minute, 30 * time.Second
	clk := testclock.New(time.Now().Truncate(time.Second))
	a, b := twoReplicas(t, clk, func(c *server.Config) { c.KeyRotateEvery, c.KeyPrepublish = every, prepublish })
	reps := []*servertest.Server{a, b}
	root := a.Root()
	first := keysOf(t, a, root)
	if len(first) != 1 {
		t.Fatalf("keys at start %+v", first)
	}
	if cc := servertest.Send(t, "GET", b.Base+"/.well-known/jwks.json", "", nil).Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Fatalf("JWKS Cache-Control %q", cc)
	}
	client := &cachingVerifier{t: t, url: a.Base + "/.well-known/jwks.json", clk: clk}
	// check logs in on both replicas, makes sure the client verifies the
	// tokens and that they are signed with kid.
	var tokens []string
	check := func(when, kid string) {
		t.Helper()
		for i, s := range reps {
			tok := s.Root()
			tokens = append(tokens, tok)
			if got := kidOf(t, tok); got != kid {
				t.Fatalf("%s: replica %d signs with %s, want %s", when, i, got, kid)
			}
			if err := client.verify(tok); err != nil {
				t.Fatalf("%s, token of replica %d: %v", when, i, err)
			}
		}
	}

	current := first[0].ID
	check("start", current)
	activation := clk.Now() // the first key signs from its creation
	for round := 1; round <= 3; round++ {
		due := activation.Add(every - prepublish)
		for clk.Now().Add(step).Before(due) {
			clk.Advance(min(due.Sub(clk.Now())-step, 20*time.Minute))
			check(fmt.Sprintf("round %d, before publication", round), current)
		}
		clk.Advance(due.Sub(clk.Now()))
		var next string
		within(t, fmt.Sprintf("round %d: the next key on both replicas", round), func() error {
			var seen []string
			for _, s := range reps {
				ks := keysOf(t, s, root)
				if len(ks) == 0 || ks[0].Status != "pending" {
					return fmt.Errorf("keys %+v", ks)
				}
				seen = append(seen, ks[0].ID)
			}
			if seen[0] != seen[1] {
				return fmt.Errorf("replicas wait for different keys %v", seen)
			}
			next = seen[0]
			return nil
		})
		ks := keysOf(t, b, root)
		if len(ks) != round+1 || !ks[0].Activates.Equal(activation.Add(every)) {
			t.Fatalf("round %d: keys %+v, want %d keys, the newest activating at %v", round, ks, round+1, activation.Add(every))
		}
		activation = activation.Add(every)
		for clk.Now().Add(step).Before(activation) {
			clk.Advance(step)
			check(fmt.Sprintf("round %d, pre-publication", round), current)
		}
		clk.Advance(activation.Sub(clk.Now()) - time.Second)
		check(fmt.Sprintf("round %d, a second before activation", round), current)
		clk.Advance(time.Second)
		current = next
		check(fmt.Sprintf("round %d, at activation", round), current)
		for range 3 {
			clk.Advance(step)
			check(fmt.Sprintf("round %d, after activation", round), current)
		}
		for i, tok := range tokens {
			if err := client.verify(tok); err != nil {
				t.Fatalf("round %d: token %d of %d: %v", round, i, len(tokens), err)
			}
		}
	}
	if ks := keysOf(t, a, root); len(ks) != 4 {
		t.Fatalf("keys after three periods %+v, want 4", ks)
	}
	if client.fetches < 3 {
		t.Fatalf("the verifier fetched the JWKS %d times", client.fetches)
	}
}

// An emergency rotation on one replica switches both at once; with revoke,
// tokens of the earlier keys are refused on both, including tokens each
// had already verified.
func TestEmergencyRotationTwoReplicas(t *testing.T) {
	clk := testclock.New(time.Now())
	a, b := twoReplicas(t, clk, nil)
	reps := []*servertest.Server{a, b}
	old := []string{a.Root(), b.Root()}
	for _, s := range reps {
		for _, tok := range old {
			if r := s.Call("GET", "/v4/self-perms", tok, nil); r.Status != http.StatusOK {
				t.Fatalf("before the rotation: %d %s", r.Status, r.Body)
			}
		}
	}

	r := a.Call("POST", "/v4/keys/rotate", old[0], map[string]bool{"immediate": true, "revoke": true})
	var k keyStatus
	r.JSON(t, &k)
	if r.Status != http.StatusOK || k.Status != "active" {
		t.Fatalf("emergency rotation: %d %s", r.Status, r.Body)
	}
	if kid := kidOf(t, a.Root()); kid != k.ID {
		t.Fatalf("A signs with %s right after the emergency rotation, want %s", kid, k.ID)
	}
	for i, s := range reps {
		within(t, fmt.Sprintf("replica %d refuses the old tokens", i), func() error {
			for _, tok := range old {
				if r := s.Call("GET", "/v4/self-perms", tok, nil); r.Status != http.StatusUnauthorized {
					return errors.New(string(r.Body))
				}
			}
			return nil
		})
	}
	if kid := kidOf(t, b.Root()); kid != k.ID {
		t.Fatalf("B signs with %s after the emergency rotation, want %s", kid, k.ID)
	}
	fresh := a.Root()
	if r := b.Call("GET", "/v4/self-perms", fresh, nil); r.Status != http.StatusOK {
		t.Fatalf("B refuses a token of the new key: %d %s", r.Status, r.Body)
	}
}

// An issuer must be an http(s) URL that discovery can echo as it is.
func TestStartRefusesBadIssuer(t *testing.T) {
	for _, iss := range []string{"gatehouse", "ftp://gatehouse.example", "https://gatehouse.example/", "https://gatehouse.example?x=1", "https://u@gatehouse.example"} {
		cfg := server.DefaultConfig()
		cfg.Listen, cfg.DataDir, cfg.Issuer = "127.0.0.1:0", t.TempDir(), iss
		if s, err := server.Start(t.Context(), cfg); err == nil {
			_ = s.Shutdown(t.Context())
			t.Fatalf("started with issuer %q", iss)
		}
	}
}
