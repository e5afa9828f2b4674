package gateway_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
	"github.com/gatehouse/gatehouse/internal/metrics"
)

// TestEngineTokenVerifiedOnce checks that a request is decided with one
// verification of its engine token, also when the labels of the decision
// come from the body (read only once the token is known valid) or the
// query. It counts the engine's successful verifications, a process-wide
// counter, so it does not run in parallel with the other tests.
func TestEngineTokenVerifiedOnce(t *testing.T) {
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	root := g.root()
	fooOnly := g.user(root, "fooOnly", labelled([]string{"get", "create"}, "service", map[string]string{"serviceName": "foo"}))

	const ms = "/v4/default/registry/microservices"
	const exists = "/v4/default/registry/existence?type=microservice&appId=a&serviceName=foo&env="
	tests := []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"labels from the body", "POST", ms, `{"service":{"serviceName":"foo","appId":"a"}}`, 200},
		{"labels from the body, refused", "POST", ms, `{"service":{"serviceName":"bar","appId":"a"}}`, 403},
		{"labels from the query", "GET", exists, nil, 200},
		{"no labels", "GET", ms + "/s1", nil, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := engineVerified(t)
			if r := g.do(tc.method, tc.path, fooOnly, tc.body); r.status != tc.status {
				t.Fatalf("gateway: %d %s, want %d", r.status, r.body, tc.status)
			}
			if n := engineVerified(t) - before; n != 1 {
				t.Errorf("gateway: the token was verified %v times, want 1", n)
			}
			before = engineVerified(t)
			r := g.do("GET", gateway.VerifyPath, "", nil,
				"X-Original-Method", tc.method, "X-Original-URI", tc.path, "Authorization", "Bearer "+fooOnly)
			// /auth/verify sees no body: its labels are left to the upstream.
			if r.status != 200 {
				t.Fatalf("/auth/verify: %d %s", r.status, r.body)
			}
			if n := engineVerified(t) - before; n != 1 {
				t.Errorf("/auth/verify: the token was verified %v times, want 1", n)
			}
		})
	}
}

// engineVerified reads gatehouse_tokens_verified_total{kind="engine",result="ok"}.
func engineVerified(t *testing.T) float64 {
	t.Helper()
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "gatehouse_tokens_verified_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["kind"] == metrics.KindEngine && labels["result"] == "ok" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
