package verifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse/gatehouse/pkg/verifier"
)

// revocationBound is how soon a verifier with the feed must refuse a
// token revoked anywhere in the cluster (issue #17).
const revocationBound = time.Second

// patience bounds waits the contract gives no bound for (reconnecting
// after a cut), generous for a loaded machine.
const patience = 30 * time.Second

// replicas starts two Gatehouse replicas on one etcd member, each with
// mod applied to its configuration.
func replicas(tb testing.TB, mod func(*server.Config)) (a, b *servertest.Server) {
	tb.Helper()
	endpoints := etcdtest.Start(tb, tb.TempDir(), 1).Endpoints()
	start := func() *servertest.Server {
		return servertest.Start(tb, func(c *server.Config) {
			c.Store, c.EtcdEndpoints = "etcd", endpoints
			if mod != nil {
				mod(c)
			}
		})
	}
	return start(), start()
}

// send makes a request to a replica and fails unless it answers 200.
func send(tb testing.TB, s *servertest.Server, method, path, token string, body any) servertest.Reply {
	tb.Helper()
	r := s.Call(method, path, token, body)
	if r.Status != http.StatusOK {
		tb.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
	}
	return r
}

// createAccount creates an account with roles through s and waits until
// other replicas may log it in.
func createAccount(tb testing.TB, s *servertest.Server, root, name, pw string, roles ...string) {
	tb.Helper()
	send(tb, s, "POST", "/v4/accounts", root, map[string]any{"name": name, "password": pw, "roles": roles})
}

// loginOn logs name in on s, retrying until the account has reached s.
func loginOn(tb testing.TB, s *servertest.Server, name, pw string) string {
	tb.Helper()
	deadline := time.Now().Add(patience)
	for {
		r := s.Call("POST", "/v4/token", "", map[string]string{"name": name, "password": pw})
		if r.Status == http.StatusOK {
			var out struct{ Token string }
			r.JSON(tb, &out)
			return out.Token
		}
		if time.Now().After(deadline) {
			tb.Fatalf("login %s: %d %s", name, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feedAccount creates a role granting get on revocation and an account
// holding it, and returns the account's token.
func feedAccount(tb testing.TB, s *servertest.Server, root string) string {
	tb.Helper()
	send(tb, s, "POST", "/v4/roles", root, map[string]any{"name": "revocation-reader",
		"perms": []map[string]any{{"resources": []map[string]string{{"type": "revocation"}}, "verbs": []string{"get"}}}})
	createAccount(tb, s, root, "svc", "Svc-Passw0rd!", "revocation-reader")
	return loginOn(tb, s, "svc", "Svc-Passw0rd!")
}

// feedVerifier is a verifier of base's keys following the feed at
// feedBase with token, with mod applied to its options (Feed included),
// closed when the test ends.
func feedVerifier(tb testing.TB, base, feedBase, token string, mod func(*verifier.Options)) *verifier.Verifier {
	tb.Helper()
	opts := verifier.Options{JWKSURL: base + "/.well-known/jwks.json", Feed: &verifier.Feed{
		URL: feedBase + "/v4/revocations", MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Token: func(context.Context) (string, error) { return token, nil }}}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	v, err := verifier.New(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	return v
}

// refusedWithin waits until v refuses token with want, failing the test
// if limit passes first.
func refusedWithin(t *testing.T, v *verifier.Verifier, token string, want error, limit time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, err := v.Verify(context.Background(), token)
		if errors.Is(err, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not refused with %v within %v (last: %v)", what, want, limit, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// accepts fails the test unless v accepts token.
func accepts(t *testing.T, v *verifier.Verifier, token, what string) {
	t.Helper()
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestFeedRefusesRevokedAcrossReplicas: a verifier following replica A
// refuses, within a second, tokens revoked through replica B by logout,
// password change and deactivation.
func TestFeedRefusesRevokedAcrossReplicas(t *testing.T) {
	a, b := replicas(t, nil)
	root := b.Root()
	v := feedVerifier(t, a.Base, a.Base, feedAccount(t, b, root), nil)
	createAccount(t, b, root, "ann", "Ann-Passw0rd!", "developer")
	const pw2 = "Ann-Passw0rd!2"

	pw := "Ann-Passw0rd!"
	steps := []struct {
		what   string
		revoke func(token string)
	}{
		{"logout", func(tok string) { send(t, b, "DELETE", "/v4/token", tok, nil) }},
		{"password change", func(string) {
			send(t, b, "POST", "/v4/accounts/ann/password", root, map[string]string{"password": pw2})
			pw = pw2
		}},
		{"deactivation", func(string) {
			send(t, b, "PUT", "/v4/accounts/ann", root, map[string]any{"roles": []string{"developer"}, "status": "inactive"})
		}},
	}
	for _, step := range steps {
		tok := loginOn(t, b, "ann", pw)
		accepts(t, v, tok, "before "+step.what)
		step.revoke(tok)
		refusedWithin(t, v, tok, verifier.ErrRevoked, revocationBound, step.what+" on B")
	}
}

// proxy is a TCP proxy to a replica that can cut every connection and
// refuse new ones until restored, and sees whether each request asked to
// resume with Last-Event-ID.
type proxy struct {
	ln      net.Listener
	mu      sync.Mutex
	target  string
	down    bool
	conns   map[net.Conn]struct{}
	resumes atomic.Int32 // requests with Last-Event-ID
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: strings.TrimPrefix(target, "http://"), conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) base() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down, target := p.down, p.target
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() {
			buf := make([]byte, 4096)
			n, _ := c.Read(buf)
			if bytes.Contains(bytes.ToLower(buf[:n]), []byte("last-event-id:")) {
				p.resumes.Add(1)
			}
			_, _ = up.Write(buf[:n])
			_, _ = io.Copy(up, c)
			up.Close()
		}()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// cut closes every connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore accepts connections again, to target if not empty.
func (p *proxy) restore(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
	if target != "" {
		p.target = strings.TrimPrefix(target, "http://")
	}
}

// TestFeedResumesAfterCut: revocations made through B while the
// verifier's connection to A is cut are applied once it reconnects,
// resuming with Last-Event-ID; the same when A itself is stopped and
// started again.
func TestFeedResumesAfterCut(t *testing.T) {
	a, b := replicas(t, nil)
	root := b.Root()
	p := newProxy(t, a.Base)
	v := feedVerifier(t, a.Base, p.base(), feedAccount(t, b, root), nil)
	createAccount(t, b, root, "bob", "Bob-Passw0rd!", "developer")
	tokens := make([]string, 4)
	for i := range tokens {
		tokens[i] = loginOn(t, b, "bob", "Bob-Passw0rd!")
		accepts(t, v, tokens[i], "before the cut")
	}
	// A revocation before the cut gives the verifier an event id.
	send(t, b, "DELETE", "/v4/token", tokens[0], nil)
	refusedWithin(t, v, tokens[0], verifier.ErrRevoked, revocationBound, "logout before the cut")

	p.cut()
	send(t, b, "DELETE", "/v4/token", tokens[1], nil)
	accepts(t, v, tokens[1], "a logout while the feed is cut is not seen yet")
	p.restore("")
	refusedWithin(t, v, tokens[1], verifier.ErrRevoked, patience, "logout during the cut, after reconnecting")
	if p.resumes.Load() == 0 {
		t.Fatal("the verifier reconnected without Last-Event-ID")
	}

	p.cut()
	a.Restart()
	send(t, b, "DELETE", "/v4/token", tokens[2], nil)
	p.restore(a.Base)
	refusedWithin(t, v, tokens[2], verifier.ErrRevoked, patience, "logout while A restarted, after reconnecting")
	send(t, b, "DELETE", "/v4/token", tokens[3], nil)
	refusedWithin(t, v, tokens[3], verifier.ErrRevoked, revocationBound, "logout after the restart")
}

// TestFeedStaleness: once the feed has been down longer than Staleness,
// a verifier refuses every token by default (ErrStale) and accepts
// again when the feed is back; with AcceptStale it accepts and calls
// OnStale.
func TestFeedStaleness(t *testing.T) {
	a, b := replicas(t, func(c *server.Config) { c.FeedHeartbeat = 20 * time.Millisecond })
	root := b.Root()
	feedTok := feedAccount(t, b, root)
	p := newProxy(t, a.Base)
	const staleness = 200 * time.Millisecond
	closed := feedVerifier(t, a.Base, p.base(), feedTok, func(o *verifier.Options) { o.Feed.Staleness = staleness })
	var staleCalls atomic.Int32
	open := feedVerifier(t, a.Base, p.base(), feedTok, func(o *verifier.Options) {
		f := o.Feed
		f.Staleness, f.AcceptStale = staleness, true
		f.OnStale = func(down time.Duration) {
			if down > staleness {
				staleCalls.Add(1)
			}
		}
	})
	tok := loginOn(t, b, "root", servertest.RootPassword)
	// Heartbeats keep a quiet feed fresh.
	time.Sleep(3 * staleness)
	accepts(t, closed, tok, "a quiet feed with heartbeats")

	p.cut()
	refusedWithin(t, closed, tok, verifier.ErrStale, patience, "fail closed")
	// The two verifiers have connections of their own: open goes stale
	// about when closed did, and accepts throughout.
	for deadline := time.Now().Add(patience); staleCalls.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("OnStale was not called for a token accepted while stale")
		}
		accepts(t, open, tok, "accept when stale")
	}
	p.restore("")
	deadline := time.Now().Add(patience)
	for _, err := closed.Verify(context.Background(), tok); err != nil; _, err = closed.Verify(context.Background(), tok) {
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the feed came back: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFeedPermissionDenied: an account without get on revocation cannot
// subscribe; New fails and OnError says why.
func TestFeedPermissionDenied(t *testing.T) {
	a, _ := replicas(t, nil)
	root := a.Root()
	createAccount(t, a, root, "dev", "Dev-Passw0rd!", "developer")
	tok := loginOn(t, a, "dev", "Dev-Passw0rd!")
	var last atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := verifier.New(ctx, verifier.Options{JWKSURL: a.Base + "/.well-known/jwks.json", Feed: &verifier.Feed{
		URL: a.Base + "/v4/revocations", Token: func(context.Context) (string, error) { return tok, nil },
		OnError: func(err error) { last.Store(err.Error()) }}})
	if err == nil {
		t.Fatal("New subscribed without the permission")
	}
	if msg, _ := last.Load().(string); !strings.Contains(msg, "status 403") {
		t.Fatalf("OnError saw %q, want status 403", msg)
	}
}

// jwksCounter is a transport that counts the requests for the key set.
type jwksCounter struct{ n atomic.Int32 }

func (c *jwksCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks.json") {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// heldFetches is a transport that lets the first request for the key
// set through and holds every later one until release is closed.
type heldFetches struct {
	jwks    atomic.Int32
	release chan struct{}
}

func (h *heldFetches) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks.json") && h.jwks.Add(1) > 1 {
		select {
		case <-h.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestFeedDropsRevokedKeys: after a revoking immediate rotation, a
// verifier following the feed refuses the tokens of the earlier keys as
// soon as the feed's keys event no longer lists them, neither waiting
// for MaxKeyAge nor for a fetch of the key set (the fetch the new key's
// announcement starts is held until then).
func TestFeedDropsRevokedKeys(t *testing.T) {
	s := servertest.Start(t, nil)
	root := s.Root()
	feedTok := feedAccount(t, s, root)
	h := &heldFetches{release: make(chan struct{})}
	v := feedVerifier(t, s.Base, s.Base, feedTok, func(o *verifier.Options) {
		o.HTTPClient = &http.Client{Transport: h}
		o.MaxKeyAge, o.MinRefreshInterval = 24*time.Hour, 24*time.Hour
	})
	createAccount(t, s, root, "kim", "Kim-Passw0rd!", "developer")
	tok := loginOn(t, s, "kim", "Kim-Passw0rd!")
	accepts(t, v, tok, "before the rotation")

	send(t, s, "POST", "/v4/keys/rotate", root, map[string]bool{"immediate": true, "revoke": true})
	refusedWithin(t, v, tok, verifier.ErrUnknownKey, revocationBound, "a token of a revoked key")
	close(h.release)
}

// announcedBound is how soon a verifier following the feed must verify
// the tokens of a key the feed announced, however recently it fetched
// the key set: well under MinRefreshInterval's default (30 s).
const announcedBound = 10 * time.Second

// TestFeedFetchesAnnouncedKey: after an emergency rotation, a verifier
// following the feed that fetched the key set moments ago, and fetches
// it for unknown key ids once a day at most, verifies the new key's
// tokens within announcedBound: the keys event announcing the new key
// fetches the set at once, and once.
func TestFeedFetchesAnnouncedKey(t *testing.T) {
	s := servertest.Start(t, nil)
	root := s.Root()
	feedTok := feedAccount(t, s, root)
	fetches := &jwksCounter{}
	v := feedVerifier(t, s.Base, s.Base, feedTok, func(o *verifier.Options) {
		o.HTTPClient = &http.Client{Transport: fetches}
		o.MaxKeyAge, o.MinRefreshInterval = 24*time.Hour, 24*time.Hour
	})
	accepts(t, v, root, "before the rotation")

	send(t, s, "POST", "/v4/keys/rotate", root, map[string]bool{"immediate": true})
	tok := loginOn(t, s, "root", servertest.RootPassword)
	deadline := time.Now().Add(announcedBound)
	for _, err := v.Verify(context.Background(), tok); err != nil; _, err = v.Verify(context.Background(), tok) {
		if time.Now().After(deadline) {
			t.Fatalf("a token of the new key: not verified within %v (last: %v)", announcedBound, err)
		}
		time.Sleep(time.Millisecond)
	}
	accepts(t, v, root, "a token of the previous key")
	if n := fetches.n.Load(); n != 2 {
		t.Fatalf("%d fetches of the key set, want 2 (New's, the announced key's)", n)
	}
}

// verifierGoroutines returns the stacks of the goroutines running a
// method of a Verifier. The tests using it do not run in parallel with
// others of the package, whose verifiers are all closed by then.
func verifierGoroutines() []string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "gatehouse/pkg/verifier.(*Verifier).") {
			out = append(out, g)
		}
	}
	return out
}

// holdingFetch is a transport that lets the first request for the key
// set through and holds every later one: it reports it on entered, and
// after the request's context ends keeps it a while longer (until
// released), so that a Close not waiting for the fetch returns first.
type holdingFetch struct {
	jwks     atomic.Int32
	entered  chan struct{}
	released chan struct{}
}

func (h *holdingFetch) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/jwks.json") || h.jwks.Add(1) == 1 {
		return http.DefaultTransport.RoundTrip(r)
	}
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-r.Context().Done()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-h.released:
	case <-t.C:
	}
	return nil, r.Context().Err()
}

// TestFeedCloseWaitsForFetches: Close returns only once every goroutine
// the verifier started has ended, a fetch of the key set a keys event
// started included.
func TestFeedCloseWaitsForFetches(t *testing.T) {
	s := servertest.Start(t, nil)
	root := s.Root()
	feedTok := feedAccount(t, s, root)
	h := &holdingFetch{entered: make(chan struct{}, 1), released: make(chan struct{})}
	defer close(h.released)
	v := feedVerifier(t, s.Base, s.Base, feedTok, func(o *verifier.Options) {
		o.HTTPClient = &http.Client{Transport: h}
	})
	// A pre-published key: the keys event names a key v does not hold,
	// and v fetches the key set, which h holds.
	send(t, s, "POST", "/v4/keys/rotate", root, nil)
	select {
	case <-h.entered:
	case <-time.After(patience):
		t.Fatal("no fetch of the key set after the keys event")
	}
	running := verifierGoroutines()
	if !strings.Contains(strings.Join(running, "\n"), "(*Verifier).fetch(") {
		t.Fatalf("no goroutine fetching the key set among:\n%s", strings.Join(running, "\n\n"))
	}
	v.Close()
	if left := verifierGoroutines(); len(left) > 0 {
		t.Fatalf("Close returned with %d goroutines of the verifier running:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

// TestFeedWithoutKidHonoursListing: with the feed, a token without kid
// is checked against the keys the feed lists: a Service Center token
// verifies while a pre-published key is listed first, and is refused as
// soon as a revoking rotation drops the imported key that signed it.
func TestFeedWithoutKidHonoursListing(t *testing.T) {
	s := servertest.Start(t, func(c *server.Config) { c.PrivateKeyFile = "testdata/service-center/private.pem" })
	root := s.Root()
	feedTok := feedAccount(t, s, root)
	tokens, now := serviceCenter(t)
	v := feedVerifier(t, s.Base, s.Base, feedTok, func(o *verifier.Options) { o.Now = now })
	send(t, s, "POST", "/v4/keys/rotate", root, nil)
	accepts(t, v, tokens["bob"], "a Service Center token after a pre-publication")

	send(t, s, "POST", "/v4/keys/rotate", root, map[string]bool{"immediate": true, "revoke": true})
	// Refused as signed by none of the keys (ErrInvalid), or by no key
	// at all (ErrUnknownKey) while the new key is being fetched.
	deadline := time.Now().Add(revocationBound)
	for {
		_, err := v.Verify(context.Background(), tokens["bob"])
		if errors.Is(err, verifier.ErrInvalid) || errors.Is(err, verifier.ErrUnknownKey) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a Service Center token after its key was revoked: not refused within %v (last: %v)", revocationBound, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// kidOf returns the kid in a token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	hdr, err := jwt.NewParser().DecodeSegment(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestFeedDownKeyCreatedMeanwhile: while the feed is cut (and
// AcceptStale accepts), a key pre-published and activated meanwhile is
// in the key set fetched once it is older than MaxKeyAge, and its tokens
// verify: the set fetched after the last keys event is newer than it.
func TestFeedDownKeyCreatedMeanwhile(t *testing.T) {
	s := servertest.Start(t, func(c *server.Config) { c.KeyPrepublish = time.Second })
	root := s.Root()
	feedTok := feedAccount(t, s, root)
	p := newProxy(t, s.Base)
	clk := &clock{now: time.Now()}
	v := feedVerifier(t, s.Base, p.base(), feedTok, func(o *verifier.Options) {
		o.Now = clk.Now
		o.MaxKeyAge, o.MinRefreshInterval = time.Hour, 30*time.Minute
		o.Feed.AcceptStale = true
	})
	accepts(t, v, root, "before the cut")

	p.cut()
	var rotated struct{ ID string }
	send(t, s, "POST", "/v4/keys/rotate", root, nil).JSON(t, &rotated)
	tok := s.Root()
	for deadline := time.Now().Add(patience); kidOf(t, tok) != rotated.ID; tok = s.Root() {
		if time.Now().After(deadline) {
			t.Fatal("the pre-published key does not sign")
		}
		time.Sleep(50 * time.Millisecond)
	}
	clk.add(2 * time.Hour)
	accepts(t, v, tok, "a token of a key activated while the feed was down, past MaxKeyAge")
	accepts(t, v, root, "a token of the previous key")
}

// TestFeedDownEmergencyKeyFetched: a token of the key of an emergency
// rotation that arrives before the feed's keys event does (here the feed
// is cut) fetches the key set, as any unknown kid does, and verifies.
func TestFeedDownEmergencyKeyFetched(t *testing.T) {
	s := servertest.Start(t, nil)
	root := s.Root()
	feedTok := feedAccount(t, s, root)
	p := newProxy(t, s.Base)
	clk := &clock{now: time.Now()}
	v := feedVerifier(t, s.Base, p.base(), feedTok, func(o *verifier.Options) { o.Now = clk.Now })
	accepts(t, v, root, "before the cut")

	p.cut()
	send(t, s, "POST", "/v4/keys/rotate", root, map[string]bool{"immediate": true})
	tok := s.Root()
	clk.add(31 * time.Second) // past MinRefreshInterval, within Staleness
	accepts(t, v, tok, "a token of the new key before the keys event")
	p.restore("")
	accepts(t, v, root, "a token of the previous key")
}

// TestFeedWithoutKidRetiredImportedKey: a Service Center token verifies
// after a rotation retired the imported key that signed it, as
// Gatehouse, which keeps checking tokens without kid against retired
// imported keys, verifies it; the feed's keys event lists that key as
// retired, and says nothing of it being imported.
func TestFeedWithoutKidRetiredImportedKey(t *testing.T) {
	s := servertest.Start(t, func(c *server.Config) { c.PrivateKeyFile = "testdata/service-center/private.pem" })
	root := s.Root()
	feedTok := feedAccount(t, s, root)
	tokens, now := serviceCenter(t)
	imported := firstKID(t, s.Base)
	var rotated struct{ ID string }
	send(t, s, "POST", "/v4/keys/rotate", root, map[string]bool{"immediate": true}).JSON(t, &rotated)
	var keys struct{ Data []struct{ ID, Status string } }
	send(t, s, "GET", "/v4/keys", root, nil).JSON(t, &keys)
	if i := slices.IndexFunc(keys.Data, func(k struct{ ID, Status string }) bool { return k.ID == imported }); i < 0 || keys.Data[i].Status != "retired" {
		t.Fatalf("keys %+v: want %s retired", keys.Data, imported)
	}
	v := feedVerifier(t, s.Base, s.Base, feedTok, func(o *verifier.Options) { o.Now = now })
	accepts(t, v, tokens["bob"], "a Service Center token of the retired imported key")
}
