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

// builtinPerms returns the permissions of a built-in role. They are
// Service Center's (its AdminPerms and DevPerms): admin holds every
// Service Center resource, developer all of them but account and role,
// each in one permission with verb "*". Admin also holds Gatehouse's own
// administrative resources (apps, channels, sessions, keys, audit) in a
// second permission, so Service Center's part stays byte-identical.
func builtinPerms(name string) []authz.Permission {
	var sc []authz.Resource
	for _, t := range authz.SCResourceTypes() {
		if name == AdminRole || (t != authz.ResourceAccount && t != authz.ResourceRole) {
			sc = append(sc, authz.Resource{Type: t})
		}
	}
	perms := []authz.Permission{{Resources: sc, Verbs: []string{authz.VerbAll}}}
	if name == AdminRole {
		var own []authz.Resource
		for _, t := range authz.GatehouseResourceTypes() {
			own = append(own, authz.Resource{Type: t})
		}
		perms = append(perms, authz.Permission{Resources: own, Verbs: []string{authz.VerbAll}})
	}
	return perms
}

// rootOnlyPerm is the permission root holds besides its roles': every
// verb on the resources no built-in role holds.
func rootOnlyPerm() authz.Permission {
	var res []authz.Resource
	for _, t := range authz.RootOnlyTypes() {
		res = append(res, authz.Resource{Type: t})
	}
	return authz.Permission{Resources: res, Verbs: []string{authz.VerbAll}}
}

func isBuiltinRole(name string) bool { return name == AdminRole || name == DeveloperRole }
