package httpapi

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/gatehouse/gatehouse/internal/httpapi/wire"
)

// versionInfo is Service Center's answer to GET /version: its version
// set and the API version of the path asked.
type versionInfo struct {
	Version    string `json:"version"`
	BuildTag   string `json:"buildTag"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	APIVersion string `json:"apiVersion"`
}

// versionRoutes registers Service Center's GET /version, which needs no
// token there either, with its API version 3.0.0. (Its registry's
// /v4/{project}/registry/version belongs to the registry, the upstream of
// gateway mode.) The build tag is the commit the binary was built from,
// when the build recorded it.
func (s *Server) versionRoutes() {
	info := versionInfo{Version: s.version, BuildTag: "Not provided", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if info.Version == "" {
		info.Version = "dev"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && kv.Value != "" {
				info.BuildTag = kv.Value
			}
		}
	}
	info.APIVersion = "3.0.0"
	s.mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) { wire.WriteJSON(w, http.StatusOK, info) })
}
