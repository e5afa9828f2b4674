package engine

import (
	"github.com/gatehouse/gatehouse/internal/authz"
)

// Built-in names.
const (
	RootAccount   = "root"
	AdminRole     = "admin"
	DeveloperRole = "developer"
)

// builtinPerms returns the permissions of a built-in role: every resource
// type for admin; every type but Gatehouse's administrative ones for
// developer.
func builtinPerms(name string) []authz.Permission {
	var res []authz.Resource
	for _, t := range authz.ResourceTypes() {
		if name == AdminRole || !authz.IsAdministrative(t) {
			res = append(res, authz.Resource{Type: t})
		}
	}
	return []authz.Permission{{Resources: res, Verbs: []string{authz.VerbAll}}}
}

func isBuiltinRole(name string) bool { return name == AdminRole || name == DeveloperRole }
