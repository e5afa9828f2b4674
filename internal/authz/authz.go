// Package authz is Gatehouse's authorization vocabulary, owned by no
// domain: who is calling (Caller), what a permission names (resource types,
// verbs, labels) and whether a set of permissions grants a request
// (Allows). The engine stores roles made of these permissions; every
// domain and the wire authorize with them.
package authz

import (
	"net/netip"
	"slices"

	"github.com/gatehouse/gatehouse/internal/apierror"
)

// Caller identifies who asks for an operation, for permission decisions
// and audit.
type Caller struct {
	Account string
	Roles   []string
	IP      string
}

// Resource types. The first group is exactly Service Center's (its
// server/service/rbac/resource.go): the names its built-in roles hold and
// its API → resource mapping produces. The second is Gatehouse's own
// administrative resources.
const (
	ResourceAccount    = "account"
	ResourceConfig     = "config"
	ResourceRole       = "role"
	ResourceService    = "service"
	ResourceGovernance = "governance"
	ResourceOps        = "ops"
	ResourceSchema     = "service/schema"

	ResourceApp     = "app"
	ResourceChannel = "channel"
	ResourceSession = "session"
	ResourceKey     = "key"
	ResourceAudit   = "audit"

	// ResourceBackup is a copy of the whole store (GET /v4/backup): it
	// holds the signing keys, password hashes and secrets, so it is in no
	// built-in role; root may always take one, other accounts need a role
	// naming it.
	ResourceBackup = "backup"

	// ResourceRevocation with verb get subscribes to the revocation feed
	// (GET /v4/revocations): grant it to the accounts of services that
	// verify engine tokens themselves.
	ResourceRevocation = "revocation"
)

// Verbs. VerbAll grants every verb.
const (
	VerbGet    = "get"
	VerbCreate = "create"
	VerbUpdate = "update"
	VerbDelete = "delete"
	VerbAll    = "*"
)

// Resource names a resource type, narrowed by labels.
type Resource struct {
	Type   string            `json:"type"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Permission grants verbs on resources.
type Permission struct {
	Resources []Resource `json:"resources"`
	Verbs     []string   `json:"verbs"`
}

var (
	// scResourceTypes are Service Center's, in the order of its admin role.
	scResourceTypes = []string{ResourceAccount, ResourceConfig, ResourceRole,
		ResourceService, ResourceGovernance, ResourceOps, ResourceSchema}
	// scRoleOnlyTypes are further types Service Center stores in roles
	// (its role API checks no type) and its documentation and older
	// versions use, though its request mapping produces none of them: a
	// permission may name them, as Service Center's roles do (its stores
	// hold roles naming instance and rule), and they grant what they
	// grant there, nothing.
	scRoleOnlyTypes = []string{"instance", "rule", "tag", "dep", "schema"}
	// gatehouseResourceTypes are Gatehouse's own administrative resources.
	gatehouseResourceTypes = []string{ResourceApp, ResourceChannel, ResourceSession, ResourceKey, ResourceAudit, ResourceRevocation}
	// rootOnlyTypes are Gatehouse's resources no built-in role holds.
	rootOnlyTypes = []string{ResourceBackup}
	resourceTypes = slices.Concat(scResourceTypes, scRoleOnlyTypes, gatehouseResourceTypes, rootOnlyTypes)
	verbs         = []string{VerbGet, VerbCreate, VerbUpdate, VerbDelete, VerbAll}
)

// ResourceTypes returns every resource type a permission can name.
func ResourceTypes() []string { return slices.Clone(resourceTypes) }

// IsResourceType reports whether t is a resource type permissions can name.
func IsResourceType(t string) bool { return slices.Contains(resourceTypes, t) }

// RootOnly reports whether t is a resource type no built-in role holds
// and root is granted always (backup).
func RootOnly(t string) bool { return slices.Contains(rootOnlyTypes, t) }

// RootOnlyTypes returns the resource types no built-in role holds and
// root is granted always (backup).
func RootOnlyTypes() []string { return slices.Clone(rootOnlyTypes) }

// SCResourceTypes returns Service Center's resource types, in the order
// of Service Center's admin role.
func SCResourceTypes() []string { return slices.Clone(scResourceTypes) }

// GatehouseResourceTypes returns the resource types of Gatehouse's own
// administrative API (apps, channels, sessions, keys, audit), which
// Service Center does not have.
func GatehouseResourceTypes() []string { return slices.Clone(gatehouseResourceTypes) }

// VerbForMethod maps an HTTP method to a verb as Service Center does.
func VerbForMethod(method string) string {
	switch method {
	case "GET", "HEAD":
		return VerbGet
	case "POST":
		return VerbCreate
	case "PUT", "PATCH":
		return VerbUpdate
	case "DELETE":
		return VerbDelete
	}
	return method
}

// ValidatePerms refuses permissions without resources or verbs, unknown
// resource types and unknown verbs (unlike Service Center, which stores
// anything).
func ValidatePerms(perms []Permission) error {
	for _, p := range perms {
		if len(p.Resources) == 0 || len(p.Verbs) == 0 {
			return apierror.InvalidParams.WithDetail("a permission needs resources and verbs")
		}
		for _, r := range p.Resources {
			if !IsResourceType(r.Type) {
				return apierror.InvalidParams.Detailf("unknown resource type %q", r.Type)
			}
		}
		for _, v := range p.Verbs {
			if !slices.Contains(verbs, v) {
				return apierror.InvalidParams.Detailf("unknown verb %q", v)
			}
		}
	}
	return nil
}

// Allows reports whether perms grant verb on resource. Labels narrow a
// permission only when the request carries labels for the same keys
// (Service Center's rule); Gatehouse's own resources carry none.
func Allows(perms []Permission, resource, verb string, labels map[string]string) bool {
	for _, p := range perms {
		if !slices.Contains(p.Verbs, verb) && !slices.Contains(p.Verbs, VerbAll) {
			continue
		}
		for _, r := range p.Resources {
			if r.Type == resource && labelsMatch(r.Labels, labels) {
				return true
			}
		}
	}
	return false
}

func labelsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; ok && hv != v {
			return false
		}
	}
	return true
}

// ClientKey is the address a client is counted under by lockout and rate
// limits: an IPv4 address as is, an IPv6 address by its /64, the block
// one subscriber usually holds, so that rotating addresses within it does
// not buy fresh attempts.
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}
