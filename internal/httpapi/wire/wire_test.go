package wire

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apierror"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	proxies, err := ParseProxies([]string{"10.0.0.0/8", " 192.0.2.1 ", "", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer, xff, realIP string
		proxies                 *Proxies
		want                    string
	}{
		{"no proxies trusted", "203.0.113.9:4000", "198.51.100.1", "", nil, "203.0.113.9"},
		{"untrusted peer's header ignored", "203.0.113.9:4000", "198.51.100.1", "198.51.100.2", proxies, "203.0.113.9"},
		{"trusted peer", "10.1.2.3:4000", "198.51.100.1", "", proxies, "198.51.100.1"},
		{"right-most untrusted hop", "10.1.2.3:4000", "198.51.100.7, 198.51.100.1, 10.9.9.9", "", proxies, "198.51.100.1"},
		{"every hop trusted", "10.1.2.3:4000", "10.4.4.4, 192.0.2.1", "", proxies, "10.4.4.4"},
		{"malformed hop stops the chain", "10.1.2.3:4000", "198.51.100.7, bogus, 10.9.9.9", "", proxies, "10.9.9.9"},
		{"X-Real-IP from a trusted peer", "192.0.2.1:80", "", "198.51.100.3", proxies, "198.51.100.3"},
		{"malformed X-Real-IP", "192.0.2.1:80", "", "nope", proxies, "192.0.2.1"},
		{"IPv4-mapped peer", "[::ffff:203.0.113.9]:1", "", "", proxies, "203.0.113.9"},
		{"IPv6 proxy", "[2001:db8::1]:443", "2001:db9::5", "", proxies, "2001:db9::5"},
		{"peer without port", "203.0.113.9", "", "", proxies, "203.0.113.9"},
		{"peer not an address", "pipe", "198.51.100.1", "", proxies, "pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.realIP != "" {
				r.Header.Set("X-Real-IP", tc.realIP)
			}
			if got := tc.proxies.ClientIP(r); got != tc.want {
				t.Fatalf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ParseProxies([]string{"10.0.0.0/8", "not-a-proxy"}); err == nil {
		t.Fatal("a proxy that is neither an address nor a CIDR was accepted")
	}
}

func TestScheme(t *testing.T) {
	t.Parallel()
	proxies, err := ParseProxies([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xfp        []string
		tls        bool
		want       string
	}{
		{"plain", "10.1.2.3:4000", nil, false, "http"},
		{"TLS listener", "203.0.113.9:4000", []string{"http"}, true, "https"},
		{"trusted proxy", "10.1.2.3:4000", []string{"https"}, false, "https"},
		{"trusted proxy, upper case", "10.1.2.3:4000", []string{"HTTPS"}, false, "https"},
		{"nearest proxy's value", "10.1.2.3:4000", []string{"http, https"}, false, "https"},
		{"nearest proxy's header", "10.1.2.3:4000", []string{"https", "http"}, false, "http"},
		{"untrusted peer", "203.0.113.9:4000", []string{"https"}, false, "http"},
		{"not a scheme", "10.1.2.3:4000", []string{"ftp"}, false, "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xfp {
				r.Header.Add("X-Forwarded-Proto", v)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := proxies.Scheme(r); got != tc.want {
				t.Fatalf("Scheme = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorModels(t *testing.T) {
	t.Parallel()
	errs := Errors{}
	r := httptest.NewRequest("POST", "/x", nil)
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		body, ccm  string
		retryAfter string
		close      bool
	}{
		{"api error", apierror.WrongCredentials, 401,
			`{"errorCode":"401202","errorMessage":"User name or password is wrong"}`,
			`{"resultCode":"1","resultDesc":"User name or password is wrong"}`, "", false},
		{"detail", apierror.InvalidParams.WithDetail("field x must be a string"), 400,
			`{"errorCode":"400001","errorMessage":"Invalid parameter(s)","detail":"field x must be a string"}`,
			`{"resultCode":"1","resultDesc":"field x must be a string"}`, "", false},
		{"internal error hidden", errors.New("disk on fire at /var/lib"), 500,
			`{"errorCode":"500003","errorMessage":"Internal server error"}`,
			`{"resultCode":"1","resultDesc":"Internal server error"}`, "", false},
		{"rate limited", apierror.TooManyRequests, 429,
			`{"errorCode":"429001","errorMessage":"Too many requests"}`,
			`{"resultCode":"1","resultDesc":"Too many requests"}`, "1", false},
		{"too large", apierror.TooLarge, 413,
			`{"errorCode":"413001","errorMessage":"Request entity too large"}`,
			`{"resultCode":"1","resultDesc":"Request entity too large"}`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for model, write := range map[string]func(http.ResponseWriter, *http.Request, error){"api": errs.Write, "ccm": errs.WriteCCM} {
				w := httptest.NewRecorder()
				write(w, r, tc.err)
				want := tc.body
				if model == "ccm" {
					want = tc.ccm
				}
				if w.Code != tc.status || w.Body.String() != want {
					t.Errorf("%s: %d %s, want %d %s", model, w.Code, w.Body, tc.status, want)
				}
				h := w.Header()
				if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
					t.Errorf("%s: headers %v", model, h)
				}
				if h.Get("Retry-After") != tc.retryAfter || (h.Get("Connection") == "close") != tc.close {
					t.Errorf("%s: Retry-After %q, Connection %q", model, h.Get("Retry-After"), h.Get("Connection"))
				}
			}
		})
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]any{"f": func() {}})
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 500 || body["errorCode"] != "500003" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestSessionCredentials(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/apiaccess/ccmessaging/session", nil)
	r.Header.Set("x-app-key", "app")
	r.Header.Set("authorization", "Bearer at")
	r.Header.Set("ccmessaging-token", "st")
	c := SessionCredentials(r, "198.51.100.1")
	if c.AppKey != "app" || c.Authorization != "Bearer at" || c.Token != "st" || c.IP != "198.51.100.1" {
		t.Fatalf("%+v", c)
	}
	if len(SessionHeaders) != 3 {
		t.Fatalf("SessionHeaders %v", SessionHeaders)
	}
}
