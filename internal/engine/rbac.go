package engine

import (
	"slices"

	"github.com/gatehouse/gatehouse/internal/apierror"
)

// Resource types. The first group is Service Center's; the second is
// Gatehouse's own administrative resources.
const (
	ResourceService    = "service"
	ResourceInstance   = "instance"
	ResourceSchema     = "schema"
	ResourceRule       = "rule"
	ResourceTag        = "tag"
	ResourceDep        = "dep"
	ResourceGovernance = "governance"
	ResourceOps        = "ops"
	ResourceAccount    = "account"
	ResourceRole       = "role"

	ResourceApp     = "app"
	ResourceChannel = "channel"
	ResourceSession = "session"
	ResourceKey     = "key"
	ResourceAudit   = "audit"
)

// Verbs. VerbAll grants every verb.
const (
	VerbGet    = "get"
	VerbCreate = "create"
	VerbUpdate = "update"
	VerbDelete = "delete"
	VerbAll    = "*"
)

// Built-in names.
const (
	RootAccount   = "root"
	AdminRole     = "admin"
	DeveloperRole = "developer"
)

var (
	allResources = []string{
		ResourceService, ResourceInstance, ResourceSchema, ResourceRule, ResourceTag,
		ResourceDep, ResourceGovernance, ResourceOps, ResourceAccount, ResourceRole,
		ResourceApp, ResourceChannel, ResourceSession, ResourceKey, ResourceAudit,
	}
	// adminOnly are the resources the developer role does not get.
	adminOnly = []string{ResourceAccount, ResourceRole, ResourceApp, ResourceChannel,
		ResourceSession, ResourceKey, ResourceAudit}
	allVerbs = []string{VerbGet, VerbCreate, VerbUpdate, VerbDelete, VerbAll}
)

// VerbForMethod maps an HTTP method to an RBAC verb as Service Center does.
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

// IsResourceType reports whether t is a resource type permissions can name.
func IsResourceType(t string) bool { return slices.Contains(allResources, t) }

func builtinPerms(name string) []Permission {
	var types []string
	for _, r := range allResources {
		if name == AdminRole || !slices.Contains(adminOnly, r) {
			types = append(types, r)
		}
	}
	res := make([]Resource, len(types))
	for i, t := range types {
		res[i] = Resource{Type: t}
	}
	return []Permission{{Resources: res, Verbs: []string{VerbAll}}}
}

func isBuiltinRole(name string) bool { return name == AdminRole || name == DeveloperRole }

// validatePerms refuses unknown resource types and verbs (unlike Service
// Center, which stores anything).
func validatePerms(perms []Permission) error {
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
			if !slices.Contains(allVerbs, v) {
				return apierror.InvalidParams.Detailf("unknown verb %q", v)
			}
		}
	}
	return nil
}

// allows reports whether perms grant verb on resource. Labels narrow a
// permission only when the request carries labels for the same keys
// (Service Center's rule); Gatehouse's own resources carry none.
func allows(perms []Permission, resource, verb string, labels map[string]string) bool {
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
