// Package servertest runs real Gatehouse servers for black-box tests: on
// 127.0.0.1:0, over a bolt store in a temporary directory, with a known
// root password and no rate limit, and sends them HTTP requests.
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

// RootPassword is the root password of every test server.
const RootPassword = "Root-Passw0rd!"

// Server is a running test server. Base is its URL.
type Server struct {
	t    testing.TB
	cfg  server.Config
	srv  *server.Server
	Base string
}

// Start runs a server, stopped when the test ends; mod adjusts the
// configuration first.
func Start(t testing.TB, mod func(*server.Config)) *Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.RootPassword = RootPassword
	cfg.RateLimit = 0
	cfg.Logger = slog.New(slog.DiscardHandler)
	if mod != nil {
		mod(&cfg)
	}
	s := &Server{t: t, cfg: cfg}
	s.boot()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) boot() {
	s.t.Helper()
	srv, err := server.Start(context.Background(), s.cfg)
	if err != nil {
		s.t.Fatalf("start: %v", err)
	}
	s.srv, s.Base = srv, "http://"+srv.Addr()
}

// Admin is the base URL of the admin listener ("" without
// Config.AdminListen).
func (s *Server) Admin() string {
	if a := s.srv.AdminAddr(); a != "" {
		return "http://" + a
	}
	return ""
}

// Stop shuts the server down; it may be called more than once.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.t.Errorf("shutdown: %v", err)
	}
	s.srv = nil
}

// Restart stops the server and starts a new one on the same data, on a
// new port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.boot()
}

// Reply is a response with its body read.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test otherwise.
func (r Reply) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// Check, when set, sees every request Send makes with its reply; an error
// fails the test. Set it before the tests run (in TestMain), not while
// they run: the API's tests check every answer against the OpenAPI
// document this way.
var Check func(req *http.Request, r Reply) error

// Send sends a request to url. body may be nil, a string or []byte (sent
// raw) or a value (sent as JSON); a non-empty token is sent as a Bearer
// Authorization; headers are name, value pairs, added after those. Check,
// when set, sees the answer.
func Send(t testing.TB, method, url, token string, body any, headers ...string) Reply {
	t.Helper()
	req, r := send(t, method, url, token, body, headers...)
	if Check != nil {
		if err := Check(req, r); err != nil {
			t.Errorf("%s %s: answer %d: %v", method, url, r.Status, err)
		}
	}
	return r
}

// SendOutside is Send for a listener outside the API's contract (the
// admin listener): Check does not see its answers.
func SendOutside(t testing.TB, method, url, token string, body any, headers ...string) Reply {
	t.Helper()
	_, r := send(t, method, url, token, body, headers...)
	return r
}

func send(t testing.TB, method, url, token string, body any, headers ...string) (*http.Request, Reply) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return req, Reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Call sends a request to path on the server (see Send).
func (s *Server) Call(method, path, token string, body any, headers ...string) Reply {
	s.t.Helper()
	return Send(s.t, method, s.Base+path, token, body, headers...)
}

// Raw sends head, a request line and header lines without the empty line
// that ends them, then body, over a new connection, and reads the answer.
// It waits a few seconds at most for the answer and for the server to
// close the connection afterwards, and reports whether it did. The
// request may announce more body than it sends: the server must answer
// without it.
func (s *Server) Raw(head string, body []byte) (r Reply, closed bool) {
	s.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.Base, "http://"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		s.t.Fatal(err)
	}
	head = strings.TrimRight(head, "\r\n") + "\r\n\r\n"
	if _, err := conn.Write(append([]byte(head), body...)); err != nil {
		s.t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		s.t.Fatalf("no answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("answer body: %v", err)
	}
	_, err = br.ReadByte()
	var ne net.Error
	closed = err != nil && !(errors.As(err, &ne) && ne.Timeout()) // EOF, or a reset after unread data
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, closed
}

// Login returns an engine token for name, failing the test otherwise.
func (s *Server) Login(name, password string) string {
	s.t.Helper()
	r := s.Call("POST", "/v4/token", "", map[string]string{"name": name, "password": password})
	if r.Status != http.StatusOK {
		s.t.Fatalf("login %s: %d %s", name, r.Status, r.Body)
	}
	var out struct{ Token string }
	r.JSON(s.t, &out)
	return out.Token
}

// Root returns an engine token of root.
func (s *Server) Root() string { return s.Login("root", RootPassword) }
