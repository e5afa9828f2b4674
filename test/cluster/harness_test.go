package cluster

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
)

// rootPassword is the bootstrap password of root in every cluster.
const rootPassword = "Cluster-Root-2day!"

// propagationBound is how soon a change acknowledged by one replica must
// take effect on every other one (SPEC §4.1).
const propagationBound = time.Second

// patience bounds waits that the contract gives no bound for (start-up,
// shutdown, recovery after an outage): generous, for a loaded machine.
const patience = time.Minute

// build is the gatehouse binary, built once per test run into a
// directory that TestMain removes.
var build struct {
	once sync.Once
	dir  string
	bin  string
	out  []byte
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build.dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds the gatehouse command on first use and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.bin = filepath.Join(build.dir, "gatehouse")
		cmd := exec.Command("go", "build", "-o", build.bin, "github.com/gatehouse/gatehouse/cmd/gatehouse")
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("build gatehouse: %v\n%s", build.err, build.out)
	}
	return build.bin
}

// fleet is an etcd cluster and the Gatehouse replicas running on it.
type fleet struct {
	etcd *etcdtest.Cluster
	reps []*replica
}

// startFleet starts a three-member etcd cluster and n replicas on it, all
// at once, with flags added to each replica's command line.
func startFleet(t *testing.T, n int, flags ...string) *fleet {
	t.Helper()
	c := etcdtest.Start(t, t.TempDir(), 3)
	args := append([]string{"serve", "--store", "etcd",
		"--etcd-endpoints", strings.Join(c.Endpoints(), ","),
		"--listen", "127.0.0.1:0", "--rate-limit", "0"}, flags...)
	bin := binary(t)
	reps := make([]*replica, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range reps {
		reps[i] = &replica{name: string(rune('A' + i)), exited: make(chan struct{})}
		wg.Go(func() { errs[i] = reps[i].start(t, bin, args) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return &fleet{etcd: c, reps: reps}
}

// replica is one `gatehouse serve` process.
type replica struct {
	name   string
	base   string // http://host:port
	cmd    *exec.Cmd
	log    lineLog
	exited chan struct{} // closed once the process was reaped
}

// start runs the process and waits for its "listening" log line. The
// process is stopped when the test ends; if the test failed, the end of
// its log is reported.
func (rp *replica) start(t *testing.T, bin string, args []string) error {
	rp.cmd = exec.Command(bin, args...)
	rp.cmd.Dir = t.TempDir()
	rp.cmd.Env = append(environ(), "GATEHOUSE_ROOT_PASSWORD="+rootPassword)
	stderr, err := rp.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := rp.cmd.Start(); err != nil {
		return err
	}
	t.Cleanup(func() {
		rp.stop(t)
		if t.Failed() {
			t.Logf("replica %s, last log lines:\n%s", rp.name, strings.Join(rp.log.tail(40), "\n"))
		}
	})
	addr := make(chan string, 1)
	go rp.read(stderr, addr)
	select {
	case a := <-addr:
		rp.base = "http://" + a
		return nil
	case <-rp.exited:
		return fmt.Errorf("replica %s exited before listening: %v", rp.name, rp.cmd.ProcessState)
	case <-time.After(patience):
		return fmt.Errorf("replica %s did not listen within %v", rp.name, patience)
	}
}

// environ is the test's environment without settings meant for another
// Gatehouse.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") && !strings.HasPrefix(kv, "SC_INIT_") {
			env = append(env, kv)
		}
	}
	return env
}

// read keeps the process's log lines, hands the address of the
// "listening" line to addr, and reaps the process once its stderr closes.
func (rp *replica) read(stderr io.Reader, addr chan<- string) {
	defer close(rp.exited)
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rp.log.add(line)
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" && rec.Addr != "" {
			select {
			case addr <- rec.Addr:
			default:
			}
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	_ = rp.cmd.Wait()
}

// stop asks the process to shut down and kills it if it does not within
// patience.
func (rp *replica) stop(t *testing.T) {
	_ = rp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-rp.exited:
	case <-time.After(patience):
		t.Errorf("replica %s ignored SIGTERM for %v; killing it", rp.name, patience)
		_ = rp.cmd.Process.Kill()
		<-rp.exited
	}
}

// lineLog keeps the log lines of a process.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

func (l *lineLog) tail(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[max(0, len(l.lines)-n):]...)
}

// httpClient bounds every request, so that a hanging server fails the
// test instead of stalling it.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// reply is an HTTP answer, read whole.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// field returns the top-level string field name of a JSON body ("" if
// absent or not a string).
func (r reply) field(name string) string {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	s, _ := m[name].(string)
	return s
}

// is reports nil if r has the status and, unless code is empty, the
// errorCode code; otherwise an error describing r.
func (r reply) is(status int, code string) error {
	if r.Status == status && (code == "" || r.field("errorCode") == code) {
		return nil
	}
	return fmt.Errorf("got %s, want %d %s", r, status, code)
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// send makes one request; header holds name, value pairs. body is
// encoded as JSON unless nil. It is safe to call from any goroutine.
func (rp *replica) send(method, path string, body any, header ...string) (reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, rp.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("replica %s: %s %s: %w", rp.name, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("replica %s: %s %s: %w", rp.name, method, path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// call is send that fails the test on a transport error; only for the
// test's own goroutine.
func (rp *replica) call(t testing.TB, method, path string, body any, header ...string) reply {
	t.Helper()
	r, err := rp.send(method, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// must is call that fails the test unless the answer is 200.
func (rp *replica) must(t testing.TB, method, path string, body any, header ...string) reply {
	t.Helper()
	r := rp.call(t, method, path, body, header...)
	if r.Status != http.StatusOK {
		t.Fatalf("replica %s: %s %s: %s", rp.name, method, path, r)
	}
	return r
}

// bearer is the Authorization header of a token.
func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// credentials is a login request body.
type credentials struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// login signs name in on rp and returns the token.
func (rp *replica) login(t testing.TB, name, password string) string {
	t.Helper()
	r := rp.must(t, "POST", "/v4/token", credentials{name, password})
	return r.field("token")
}

// createAccount creates an account with the developer role through rp.
func (rp *replica) createAccount(t testing.TB, root, name, password string) {
	t.Helper()
	rp.must(t, "POST", "/v4/accounts", map[string]any{"name": name, "password": password, "roles": []string{"developer"}}, bearer(root)...)
}

// selfPerms verifies token on rp through an endpoint that needs a token
// and no permission.
func (rp *replica) selfPerms(token string) (reply, error) {
	return rp.send("GET", "/v4/self-perms", nil, bearer(token)...)
}

// within calls check until it returns nil, failing the test with its last
// error if limit passes first. It polls every few milliseconds for short
// limits.
func within(t testing.TB, limit time.Duration, what string, check func() error) {
	t.Helper()
	interval := min(max(limit/200, 2*time.Millisecond), 200*time.Millisecond)
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(interval)
	}
}

// expect is a check of within: rp answers the request with status and
// (unless empty) errorCode code.
func expect(rp *replica, status int, code, method, path string, body any, header ...string) func() error {
	return func() error {
		r, err := rp.send(method, path, body, header...)
		if err != nil {
			return err
		}
		if err := r.is(status, code); err != nil {
			return fmt.Errorf("replica %s: %s %s: %w", rp.name, method, path, err)
		}
		return nil
	}
}

// app is an API Fabric app and its current secret.
type app struct {
	Key    string `json:"appKey"`
	Secret string `json:"appSecret"`
}

// createApp creates an app through rp.
func (rp *replica) createApp(t testing.TB, root, name string) app {
	t.Helper()
	var a app
	if err := json.Unmarshal(rp.must(t, "POST", "/v4/apps", map[string]string{"name": name}, bearer(root)...).Body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// createChannel creates a channel open to appKey through rp and returns
// its id.
func (rp *replica) createChannel(t testing.TB, root, appKey string) string {
	t.Helper()
	r := rp.must(t, "POST", "/v4/channels", map[string]any{"name": "chat", "appKeys": []string{appKey}}, bearer(root)...)
	return r.field("id")
}

// tokenByAkSk asks rp for an AccessToken valid an hour.
func (rp *replica) tokenByAkSk(key, secret string) (reply, error) {
	return rp.send("POST", "/apigovernance/api/oauth/tokenByAkSk",
		map[string]string{"app_key": key, "app_secret": secret}, "X-Token-Expire", "3600")
}

// accessToken returns an AccessToken of a from rp, waiting (within the
// propagation bound) until rp knows the app's current secret.
func (rp *replica) accessToken(t testing.TB, a app) string {
	t.Helper()
	var tok string
	within(t, propagationBound, "tokenByAkSk on "+rp.name, func() error {
		r, err := rp.tokenByAkSk(a.Key, a.Secret)
		if err != nil {
			return err
		}
		tok = r.field("AccessToken")
		return r.is(http.StatusOK, "")
	})
	return tok
}

// applyToken opens the session of user on channel through rp.
func (rp *replica) applyToken(a app, access, channel, user string) (reply, error) {
	return rp.send("POST", "/apiaccess/ccmessaging/applyToken",
		map[string]string{"userId": user, "userName": "User " + user, "channelId": channel, "locale": "en_US"},
		"x-app-key", a.Key, "Authorization", "Bearer "+access)
}

// session is a protected ccmessaging request carrying token.
func (rp *replica) session(a app, access, token string) (reply, error) {
	return rp.send("GET", "/apiaccess/ccmessaging/session", nil,
		"x-app-key", a.Key, "Authorization", "Bearer "+access, "ccmessaging-token", token)
}

// jwtHeader decodes the header of a JWT.
func jwtHeader(t testing.TB, token string) map[string]string {
	t.Helper()
	seg, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h
}
