package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

// target is a server under load and what was seeded on it.
type target struct {
	api       *api
	root      string       // root's engine token
	runID     string       // names everything this run creates
	stop      func() error // set for in-process servers: shut down, delete the data
	app       *app
	channel   string
	accounts  []string // login accounts created
	accountPW string   // their password
}

// newPassword returns a random password that meets the account policy.
func newPassword() string { return "Bench-7" + rand.Text()[:12] }

// inProcess configures an in-process server on dir: bolt, no rate limit,
// a free loopback port, its log going to h.
func inProcess(dir, rootPassword string, h slog.Handler) server.Config {
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Store = "127.0.0.1:0", dir, "bolt"
	cfg.RateLimit = 0
	cfg.RSABits = defaultRSABits
	cfg.RootPassword = rootPassword
	cfg.Logger = slog.New(h)
	return cfg
}

// startLocal starts an in-process server on a new data directory, which
// stopping it deletes; adjust may change its configuration.
func startLocal(ctx context.Context, log slog.Handler, hc *http.Client, adjust func(*server.Config)) (*target, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return nil, err
	}
	t, err := startServer(ctx, log, hc, dir, newPassword(), adjust)
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	stop := t.stop
	t.stop = func() error { return errors.Join(stop(), os.RemoveAll(dir)) }
	return t, nil
}

// startServer starts an in-process server on dir, with root password pw
// if the store holds no root yet, and logs in as root.
func startServer(ctx context.Context, log slog.Handler, hc *http.Client, dir, pw string, adjust func(*server.Config)) (*target, error) {
	sc := inProcess(dir, pw, log)
	if adjust != nil {
		adjust(&sc)
	}
	srv, err := server.Start(ctx, sc)
	if err != nil {
		return nil, err
	}
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
	t, err := connect(ctx, "http://"+srv.Addr(), pw, hc)
	if err != nil {
		return nil, errors.Join(err, stop())
	}
	t.stop = stop
	return t, nil
}

// connect logs in as root on the server at base.
func connect(ctx context.Context, base, rootPassword string, hc *http.Client) (*target, error) {
	t := &target{api: &api{base: base, hc: hc}, runID: rand.Text()[:8]}
	var err error
	if t.root, err = t.api.login(ctx, "root", rootPassword); err != nil {
		return nil, fmt.Errorf("root login: %w", err)
	}
	return t, nil
}

// name returns a name unique to this run.
func (t *target) name(kind string, i int) string {
	return "bench-" + t.runID + "-" + kind + strconv.Itoa(i)
}

// seedApp creates, once, an app with an AccessToken and a channel open to it.
func (t *target) seedApp(ctx context.Context) error {
	if t.app != nil {
		return nil
	}
	ap, err := t.api.createApp(ctx, t.root, t.name("app", 0))
	if err != nil {
		return err
	}
	t.app = &ap
	t.channel, err = t.api.createChannel(ctx, t.root, t.name("channel", 0), ap.Key)
	return err
}

// openSessions opens n sessions of users kind0..kind<n-1> with parallel
// requests and returns their tokens.
func (t *target) openSessions(ctx context.Context, kind string, n, parallel int) ([]string, error) {
	return t.sampleSessions(ctx, kind, n, 1, parallel, nil)
}

// sampleSessions opens n sessions of users kind0..kind<n-1> with parallel
// requests and returns the tokens of every every-th of them, writing a
// progress line to progress (when not nil) every 100 000 sessions.
func (t *target) sampleSessions(ctx context.Context, kind string, n, every, parallel int, progress io.Writer) ([]string, error) {
	if err := t.seedApp(ctx); err != nil {
		return nil, err
	}
	tokens := make([]string, (n+every-1)/every)
	err := inParallel(n, parallel, func(i int) error {
		tok, err := t.api.applyToken(ctx, *t.app, t.channel, t.runID+kind+strconv.Itoa(i))
		if i%every == 0 {
			tokens[i/every] = tok
		}
		if progress != nil && (i+1)%100_000 == 0 {
			fmt.Fprintf(progress, "\rseeding %d/%d sessions ", i+1, n)
		}
		return err
	})
	if progress != nil && n >= 100_000 {
		fmt.Fprintln(progress)
	}
	return tokens, err
}

// loginAccounts creates, once, n accounts with one password and returns
// their names and the password.
func (t *target) loginAccounts(ctx context.Context, n int) ([]string, string, error) {
	if len(t.accounts) >= n {
		return t.accounts[:n], t.accountPW, nil
	}
	pw := newPassword()
	names := make([]string, n)
	for i := range names {
		names[i] = t.name("user", i)
	}
	err := inParallel(n, 4, func(i int) error { return t.api.createAccount(ctx, t.root, names[i], pw) })
	t.accounts = names // every one may exist, for close
	if err != nil {
		return nil, "", err
	}
	t.accountPW = pw
	return names, pw, nil
}

// close removes what was seeded on a running server, or stops an
// in-process one.
func (t *target) close(ctx context.Context) error {
	if t.stop != nil {
		return t.stop()
	}
	var errs []error
	for _, name := range t.accounts {
		errs = append(errs, t.api.remove(ctx, t.root, "/v4/accounts/"+name))
	}
	if t.app != nil {
		if t.channel != "" {
			errs = append(errs, t.api.remove(ctx, t.root, "/v4/channels/"+t.channel))
		}
		errs = append(errs, t.api.remove(ctx, t.root, "/v4/apps/"+t.app.Key))
	}
	return errors.Join(errs...)
}

// inParallel calls fn(0..n-1) from at most parallel goroutines; after
// the first error it starts no more calls and returns that error.
func inParallel(n, parallel int, fn func(i int) error) error {
	var (
		wg     sync.WaitGroup
		next   atomic.Int64
		once   sync.Once
		first  error
		failed atomic.Bool
	)
	for range min(parallel, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err; failed.Store(true) })
				}
			}
		}()
	}
	wg.Wait()
	return first
}
