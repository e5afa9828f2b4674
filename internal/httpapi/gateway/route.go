package gateway

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
)

// Token kinds a route checks.
const (
	// KindEngine: an engine token in Authorization, RBAC per Service
	// Center's path mapping (or the route's resource).
	KindEngine = "engine"
	// KindCCMessaging: x-app-key, an AccessToken in Authorization and a
	// ccmessaging-token (SPEC §5.4).
	KindCCMessaging = "ccmessaging"
)

// DefaultTimeout is how long an upstream may take to answer with its
// response headers when neither the route nor the gateway says otherwise.
const DefaultTimeout = 30 * time.Second

// Route sends requests under Prefix to Upstream after checking them. The
// YAML keys are those of the `routes:` list of the config file.
type Route struct {
	// Prefix is the path prefix the route takes ("/v4/"). The path is
	// forwarded unchanged unless StripPrefix or Rewrite says otherwise.
	Prefix string `yaml:"prefix"`
	// Upstream is the base URL requests go to (http or https); a path in
	// it is prepended to the forwarded path.
	Upstream string `yaml:"upstream"`
	// StripPrefix removes the prefix's segments from the forwarded path:
	// with prefix /api/ (or /api), /api/x goes upstream as /x, and /api/
	// (or /api) as /.
	StripPrefix bool `yaml:"strip-prefix"`
	// Rewrite replaces the prefix's segments of the forwarded path with
	// this canonical path: with prefix /api/ and rewrite /v2, /api/x goes
	// upstream as /v2/x. The decision is always made on the original path.
	Rewrite string `yaml:"rewrite"`
	// Token is KindEngine or KindCCMessaging; empty picks ccmessaging for
	// prefixes under /apiaccess/ccmessaging/ and engine otherwise.
	Token string `yaml:"token"`
	// Resource, when set, replaces the Service Center mapping: every
	// request needs Verb (or the method's verb) on this resource. Engine
	// routes only.
	Resource string `yaml:"resource"`
	// Verb, when set, replaces the method's verb. Engine routes only.
	Verb string `yaml:"verb"`
	// StripAuthorization removes the engine token before forwarding. Nil
	// keeps it, so a Service Center upstream with RBAC enabled can verify
	// the token itself. ccmessaging routes always strip the credentials
	// they consume.
	StripAuthorization *bool `yaml:"strip-authorization"`
	// Timeout bounds the wait for the upstream's response headers
	// (connecting included); zero takes the gateway's default.
	Timeout time.Duration `yaml:"timeout"`
}

// ParseUpstream reads a --upstream value, PREFIX=URL.
func ParseUpstream(s string) (Route, error) {
	prefix, upstream, ok := strings.Cut(s, "=")
	if !ok {
		return Route{}, fmt.Errorf("upstream %q: want PREFIX=URL", s)
	}
	r := Route{Prefix: strings.TrimSpace(prefix), Upstream: strings.TrimSpace(upstream)}
	return r, r.validate()
}

// kind returns the route's token kind, defaulted from its prefix.
func (r Route) kind() string {
	if r.Token != "" {
		return r.Token
	}
	if strings.HasPrefix(r.Prefix, wire.CCMessagingPrefix) || r.Prefix+"/" == wire.CCMessagingPrefix {
		return KindCCMessaging
	}
	return KindEngine
}

// stripAuthorization reports whether the engine token is removed.
func (r Route) stripAuthorization() bool {
	return r.StripAuthorization != nil && *r.StripAuthorization
}

// validate checks a route and returns a message naming it on error.
func (r Route) validate() error {
	err := r.check()
	if err != nil {
		return fmt.Errorf("route %q: %w", r.Prefix, err)
	}
	return nil
}

func (r Route) check() error {
	if !strings.HasPrefix(r.Prefix, "/") {
		return fmt.Errorf("prefix must start with /")
	}
	u, err := url.Parse(r.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("upstream %q must be an http or https URL", r.Upstream)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("upstream %q must not have a query or fragment", r.Upstream)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("timeout must not be negative")
	}
	if r.Rewrite != "" {
		if r.StripPrefix {
			return fmt.Errorf("strip-prefix and rewrite exclude each other")
		}
		if !canonicalPath(r.Rewrite) {
			return fmt.Errorf("rewrite %q must be a canonical path: /, no dot segments, repeated slashes, query or characters that need escaping", r.Rewrite)
		}
	}
	switch r.kind() {
	case KindEngine:
		if r.Resource != "" && !authz.IsResourceType(r.Resource) {
			return fmt.Errorf("unknown resource %q", r.Resource)
		}
		if r.Verb != "" && !slices.Contains([]string{authz.VerbGet, authz.VerbCreate, authz.VerbUpdate, authz.VerbDelete}, r.Verb) {
			return fmt.Errorf("unknown verb %q", r.Verb)
		}
		if r.Verb != "" && r.Resource == "" {
			return fmt.Errorf("verb needs a resource")
		}
	case KindCCMessaging:
		if r.Resource != "" || r.Verb != "" {
			return fmt.Errorf("resource and verb apply to engine routes only")
		}
		if r.StripAuthorization != nil && !*r.StripAuthorization {
			return fmt.Errorf("ccmessaging routes always strip the credentials they consume")
		}
	default:
		return fmt.Errorf("token must be %s or %s, not %q", KindEngine, KindCCMessaging, r.Token)
	}
	return nil
}

// matches reports whether path falls under the route's prefix. A prefix
// without a trailing slash takes the path itself and everything below it.
func (r Route) matches(path string) bool {
	if strings.HasSuffix(r.Prefix, "/") {
		return strings.HasPrefix(path, r.Prefix)
	}
	return path == r.Prefix || strings.HasPrefix(path, r.Prefix+"/")
}

// MergeRoutes returns base with every route of over added; a route of
// over replaces the route of base with the same prefix. The command uses
// it to let --upstream flags override routes of the config file.
func MergeRoutes(base, over []Route) []Route {
	out := slices.Clone(base)
	for _, o := range over {
		i := slices.IndexFunc(out, func(r Route) bool { return r.Prefix == o.Prefix })
		if i >= 0 {
			out[i] = o
		} else {
			out = append(out, o)
		}
	}
	return out
}

// canonicalPath reports whether p is an absolute path that path cleaning
// leaves alone (a trailing slash aside) and that needs no escaping.
func canonicalPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	if c := path.Clean(p); c != p && c+"/" != p {
		return false
	}
	return (&url.URL{Path: p}).EscapedPath() == p
}

// rewritePath applies the route's strip-prefix or rewrite to out, the
// URL of a request the route takes whose path passed checkPath: the
// prefix's segments are replaced, the rest of the path keeps its
// encoding, the query is left alone, and an empty path becomes "/". The
// rest is a canonical path of whole segments and the replacement is
// canonical too, so the result is canonical: no dot segment can climb
// above the replacement.
func (r Route) rewritePath(out *url.URL) {
	var repl string
	switch {
	case r.StripPrefix:
	case r.Rewrite != "":
		repl = strings.TrimSuffix(r.Rewrite, "/")
	default:
		return
	}
	n := strings.Count(strings.TrimSuffix(r.Prefix, "/"), "/")
	escaped := out.EscapedPath()
	p, raw := repl+dropSegments(out.Path, n), repl+dropSegments(escaped, n)
	if p == "" {
		p, raw = "/", "/"
	}
	out.Path, out.RawPath = p, ""
	if out.EscapedPath() != raw {
		out.RawPath = raw
	}
}

// dropSegments removes the first n segments of the absolute path p and
// returns the rest: "" or a path starting with "/". An encoded slash is
// not a separator here; checkPath refuses paths that hold one, so the
// segments of a path and of its escaped form are the same.
func dropSegments(p string, n int) string {
	for range n {
		i := strings.IndexByte(p[1:], '/')
		if i < 0 {
			return ""
		}
		p = p[1+i:]
	}
	return p
}
