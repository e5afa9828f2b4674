package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authz"
)

// access says what an engine-token request needs.
type access int

const (
	// accessAdmin: no resource is mapped to the path; as in Service
	// Center, only an account holding the admin role may call it.
	accessAdmin access = iota
	// accessPermission: the account's roles must grant the verb on the
	// resource.
	accessPermission
	// accessToken: a valid token, no permission (Service Center's
	// permission-check allow list: self-perms, own password).
	accessToken
	// accessPublic: no token at all (Service Center's authentication
	// allow list: token issue, version and health).
	accessPublic
)

// target is what an engine-token request asks for.
type target struct {
	access   access
	resource string
	verb     string
	// labels are the serviceName/appId/environment labels the request
	// names, where Service Center derives them from the request itself
	// (query or body); nil when it names none.
	labels map[string]string
}

// The labels Service Center attaches to service-scoped resources.
const (
	labelEnvironment = "environment"
	labelAppID       = "appId"
	labelServiceName = "serviceName"
)

// labelSource says where a rule finds a request's labels.
type labelSource int

const (
	noLabels labelSource = iota
	queryLabels
	bodyLabels
)

// scRule maps a Service Center API pattern to a resource. Pattern
// segments starting with ':' match any one segment; a prefix rule also
// matches every path below the pattern.
type scRule struct {
	pattern  []string
	prefix   bool
	access   access
	resource string
	verb     string // fixed verb; empty: from the method
	labels   labelSource
}

func rule(pattern string, resource string) scRule {
	return scRule{pattern: segments(pattern), access: accessPermission, resource: resource}
}

func (r scRule) under() scRule            { r.prefix = true; return r }
func (r scRule) withVerb(v string) scRule { r.verb = v; return r }
func (r scRule) withLabels(l labelSource) scRule {
	r.labels = l
	return r
}

func allowList(pattern string, a access) scRule {
	return scRule{pattern: segments(pattern), access: a}
}

// scRules is Service Center's API → resource mapping (its
// server/service/rbac/resource.go): instances, rules, tags, dependencies
// and the legacy /govern API are "service", schemas "service/schema", the
// /v1 governance API "governance", /admin "ops". A path Service Center
// maps to nothing is admin-only (accessAdmin), as there. Exact rules are
// tried before prefix rules.
var scRules = []scRule{
	allowList("/v4/token", accessPublic),
	allowList("/v4/:project/registry/version", accessPublic),
	allowList("/v4/:project/registry/health", accessPublic),
	allowList("/version", accessPublic),
	allowList("/health", accessPublic),
	allowList("/v4/self-perms", accessToken),
	allowList("/v4/accounts/:name/password", accessToken),

	rule("/v4/:project/registry/microservices", authz.ResourceService).withLabels(bodyLabels),
	rule("/v4/:project/registry/microservices/:serviceId", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:serviceId/properties", authz.ResourceService),
	rule("/v4/:project/registry/existence", authz.ResourceService).withLabels(queryLabels),

	rule("/v4/:project/registry/microservices/:serviceId/schemas", authz.ResourceSchema).under(),

	rule("/v4/:project/registry/microservices/:providerId/consumers", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:consumerId/providers", authz.ResourceService),

	// Service Center maps every API whose pattern contains "instances".
	rule("/v4/:project/registry/microservices/:serviceId/instances", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:serviceId/instances/:instanceId", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:serviceId/instances/:instanceId/properties", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:serviceId/instances/:instanceId/status", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:serviceId/instances/:instanceId/heartbeat", authz.ResourceService),
	rule("/v4/:project/registry/instances", authz.ResourceService).withLabels(queryLabels),
	rule("/v4/:project/registry/instances/action", authz.ResourceService).withVerb(authz.VerbGet),
	rule("/v4/:project/registry/microservices/:serviceId/watcher", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:serviceId/listwatcher", authz.ResourceService),
	rule("/v4/:project/registry/heartbeats", authz.ResourceService),

	rule("/v4/:project/registry/microservices/:serviceId/rules", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:serviceId/tags", authz.ResourceService),
	rule("/v4/:project/registry/microservices/:serviceId/tags/:key", authz.ResourceService),

	rule("/v4/accounts", authz.ResourceAccount).under(),
	rule("/v4/account-locks", authz.ResourceAccount).under(),
	rule("/v4/roles", authz.ResourceRole).under(),
	rule("/v4/:project/govern", authz.ResourceService).under(),
	rule("/v1/:project/gov", authz.ResourceGovernance).under(),
	rule("/v4/:project/admin", authz.ResourceOps).under(),
}

// segments splits a path into its segments, ignoring one trailing slash.
func segments(p string) []string {
	p = strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (r scRule) match(segs []string) bool {
	if len(segs) < len(r.pattern) || (!r.prefix && len(segs) != len(r.pattern)) {
		return false
	}
	for i, p := range r.pattern {
		if segs[i] == "" || (p[0] != ':' && p != segs[i]) {
			return false
		}
	}
	return true
}

// lookup finds the rule of a path: an exact rule first, then the longest
// prefix rule.
func lookup(segs []string) (scRule, bool) {
	var best scRule
	found := false
	for _, r := range scRules {
		if !r.match(segs) {
			continue
		}
		if !r.prefix {
			return r, true
		}
		if !found || len(r.pattern) > len(best.pattern) {
			best, found = r, true
		}
	}
	return best, found
}

// mapRequest returns what a request with this method and URL needs under
// Service Center's mapping. body, when not nil, returns the request body,
// read for labels where Service Center reads them there (service
// creation); without it those labels are absent.
func mapRequest(method string, u *url.URL, body func() ([]byte, error)) (target, error) {
	r, ok := lookup(segments(u.Path))
	if !ok {
		return target{access: accessAdmin, verb: authz.VerbForMethod(method)}, nil
	}
	t := target{access: r.access, resource: r.resource, verb: r.verb}
	if t.verb == "" {
		t.verb = authz.VerbForMethod(method)
	}
	switch {
	case r.labels == queryLabels:
		t.labels = labelsFromQuery(u.Query())
	case r.labels == bodyLabels && method == http.MethodPost && body != nil:
		b, err := body()
		if err != nil {
			return t, err
		}
		t.labels = labelsFromService(b)
	}
	return t, nil
}

// labelsFromQuery reads a service key from the query (Service Center's
// ByServiceKey). A request addressing a service by id names no labels:
// Service Center resolves the id against its registry, which the gateway
// cannot see.
func labelsFromQuery(q url.Values) map[string]string {
	if q.Has("serviceId") {
		return nil
	}
	return map[string]string{
		labelEnvironment: q.Get("env"),
		labelAppID:       q.Get(labelAppID),
		labelServiceName: q.Get(labelServiceName),
	}
}

// labelsFromService reads the labels of a service-creation body
// ({"service":{"environment","appId","serviceName",...}}), as Service
// Center does; a body without a service names none (Service Center
// rejects it).
func labelsFromService(body []byte) map[string]string {
	var req struct {
		Service *struct {
			Environment string `json:"environment"`
			AppID       string `json:"appId"`
			ServiceName string `json:"serviceName"`
		} `json:"service"`
	}
	if json.Unmarshal(body, &req) != nil || req.Service == nil {
		return nil
	}
	return map[string]string{
		labelEnvironment: req.Service.Environment,
		labelAppID:       req.Service.AppID,
		labelServiceName: req.Service.ServiceName,
	}
}
