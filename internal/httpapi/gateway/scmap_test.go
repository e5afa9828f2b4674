package gateway

import (
	"errors"
	"maps"
	"net/url"
	"testing"
)

func TestMapRequest(t *testing.T) {
	const ms = "/v4/default/registry/microservices"
	svc := func(name string) map[string]string {
		return map[string]string{"environment": "", "appId": "a", "serviceName": name}
	}
	tests := []struct {
		method, uri string
		body        string
		want        target
	}{
		{"POST", "/v4/token", "", target{access: accessPublic, verb: "create"}},
		{"GET", "/v4/p1/registry/health", "", target{access: accessPublic, verb: "get"}},
		{"GET", "/v4/p1/registry/version", "", target{access: accessPublic, verb: "get"}},
		{"GET", "/v4/self-perms", "", target{access: accessToken, verb: "get"}},
		{"POST", "/v4/accounts/bob/password", "", target{access: accessToken, verb: "create"}},
		{"GET", "/v4/accounts/bob", "", target{access: accessPermission, resource: "account", verb: "get"}},
		{"DELETE", "/v4/account-locks/bob", "", target{access: accessPermission, resource: "account", verb: "delete"}},
		{"PUT", "/v4/roles/r", "", target{access: accessPermission, resource: "role", verb: "update"}},

		{"GET", ms, "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"GET", ms + "/", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"POST", ms, `{"service":{"appId":"a","serviceName":"x"}}`, target{access: accessPermission, resource: "service", verb: "create", labels: svc("x")}},
		{"POST", ms, `not json`, target{access: accessPermission, resource: "service", verb: "create"}},
		{"DELETE", ms, `{"serviceIds":["1"]}`, target{access: accessPermission, resource: "service", verb: "delete"}},
		{"GET", ms + "/s1", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"PUT", ms + "/s1/properties", "", target{access: accessPermission, resource: "service", verb: "update"}},
		{"GET", "/v4/default/registry/existence?type=microservice&appId=a&serviceName=x", "", target{access: accessPermission, resource: "service", verb: "get", labels: svc("x")}},
		{"GET", "/v4/default/registry/existence?type=schema&serviceId=1&schemaId=s", "", target{access: accessPermission, resource: "service", verb: "get"}},

		{"GET", ms + "/s1/schemas", "", target{access: accessPermission, resource: "service/schema", verb: "get"}},
		{"PUT", ms + "/s1/schemas/x", "", target{access: accessPermission, resource: "service/schema", verb: "update"}},
		{"GET", ms + "/s1/consumers", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"GET", ms + "/s1/providers", "", target{access: accessPermission, resource: "service", verb: "get"}},

		{"POST", ms + "/s1/instances", "", target{access: accessPermission, resource: "service", verb: "create"}},
		{"GET", ms + "/s1/instances/i1", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"PUT", ms + "/s1/instances/i1/properties", "", target{access: accessPermission, resource: "service", verb: "update"}},
		{"PUT", ms + "/s1/instances/i1/status", "", target{access: accessPermission, resource: "service", verb: "update"}},
		{"PUT", ms + "/s1/instances/i1/heartbeat", "", target{access: accessPermission, resource: "service", verb: "update"}},
		{"GET", ms + "/s1/watcher", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"GET", ms + "/s1/listwatcher", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"PUT", "/v4/default/registry/heartbeats", "", target{access: accessPermission, resource: "service", verb: "update"}},
		{"GET", "/v4/default/registry/instances?appId=a&serviceName=x", "", target{access: accessPermission, resource: "service", verb: "get", labels: svc("x")}},
		{"POST", "/v4/default/registry/instances/action?type=query", "", target{access: accessPermission, resource: "service", verb: "get"}},

		{"POST", ms + "/s1/rules", "", target{access: accessPermission, resource: "service", verb: "create"}},
		{"GET", ms + "/s1/tags", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"DELETE", ms + "/s1/tags/k", "", target{access: accessPermission, resource: "service", verb: "delete"}},

		{"GET", "/v4/default/govern/microservices", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"GET", "/v4/default/govern/microservices/s1", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"GET", "/v4/default/govern/apps", "", target{access: accessPermission, resource: "service", verb: "get"}},
		{"POST", "/v1/default/gov/match-group", "", target{access: accessPermission, resource: "governance", verb: "create"}},
		{"GET", "/v4/default/admin/dump", "", target{access: accessPermission, resource: "ops", verb: "get"}},
		{"POST", "/v4/default/admin/alarms/clear", "", target{access: accessPermission, resource: "ops", verb: "create"}},

		{"GET", ms + "/s1/schemas/x/deeper", "", target{access: accessPermission, resource: "service/schema", verb: "get"}},
		// Service Center maps neither dependencies nor one rule (its map
		// names ".../rules/rule_id" literally): admin only, as there.
		{"PUT", "/v4/default/registry/dependencies", "", target{access: accessAdmin, verb: "update"}},
		{"DELETE", ms + "/s1/rules/r1", "", target{access: accessAdmin, verb: "delete"}},
		{"GET", "/v4/default/registry/unknown", "", target{access: accessAdmin, verb: "get"}},
		{"GET", "/v4//registry/microservices", "", target{access: accessAdmin, verb: "get"}},
		{"GET", ms + "/s1/instances/i1/extra/deep", "", target{access: accessAdmin, verb: "get"}},
		{"GET", "/elsewhere", "", target{access: accessAdmin, verb: "get"}},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.uri, func(t *testing.T) {
			u, err := url.ParseRequestURI(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			body := func() ([]byte, error) { return []byte(tc.body), nil }
			got, err := mapRequest(tc.method, u, body)
			if err != nil {
				t.Fatal(err)
			}
			if got.access != tc.want.access || got.resource != tc.want.resource || got.verb != tc.want.verb || !maps.Equal(got.labels, tc.want.labels) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMapRequestBodyError(t *testing.T) {
	u, _ := url.Parse("/v4/default/registry/microservices")
	boom := errors.New("boom")
	if _, err := mapRequest("POST", u, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("want the body's error, got %v", err)
	}
	// Without a body, and for other methods, the body is not read.
	for _, m := range []string{"GET", "DELETE"} {
		if _, err := mapRequest(m, u, func() ([]byte, error) { return nil, boom }); err != nil {
			t.Fatalf("%s read the body: %v", m, err)
		}
	}
	if tg, err := mapRequest("POST", u, nil); err != nil || tg.labels != nil {
		t.Fatalf("no body: %+v %v", tg, err)
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"/v4/a/registry/microservices", true},
		{"/v4/a/registry/microservices/", true},
		{"/v4/a/registry/micro%20services", true},
		{"/v4/a/../b", false},
		{"/v4/a/./b", false},
		{"/v4//b", false},
		{"/v4/a%2Fb", false},
		{"/v4/a%2fb", false},
		{"/v4/a%5Cb", false},
		{"/v4/a/%2e%2e/b", false},
	} {
		u, err := url.ParseRequestURI(tc.uri)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPath(u); (err == nil) != tc.ok {
			t.Errorf("%s: ok=%v, got %v", tc.uri, tc.ok, err)
		}
	}
}
