package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apifabric"
	"github.com/gatehouse/gatehouse/internal/ccmessaging"
	"github.com/gatehouse/gatehouse/internal/engine"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// fuzzEndpoint is an endpoint with a JSON body and the type its handler
// decodes the body into.
type fuzzEndpoint struct {
	method, path string
	token        string   // engine token sent, if any
	headers      []string // other headers, name and value pairs
	body         any      // a zero value of the request type
	ccm          bool     // errors in the ccmessaging model
}

// decodeErrorRE matches every detail of a body that does not decode:
// fixed words and the names of fields, never the body's own text.
var decodeErrorRE = regexp.MustCompile(`^(?:the body is empty|the body is not valid JSON|` +
	`(?:the body|field ((?:[A-Za-z_]+\.)*[A-Za-z_]+)) must be (?:a string|an array|an object|a boolean|a valid value|a number))$`)

// jsonNames adds the JSON names of the fields of t, and of the types it
// holds, to names.
func jsonNames(t reflect.Type, names map[string]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		jsonNames(t.Elem(), names)
	case reflect.Struct:
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				names[name] = true
			}
			jsonNames(t.Field(i).Type, names)
		}
	}
}

// secretFields are the request fields whose values must never be echoed
// or logged.
var secretFields = map[string]bool{"password": true, "currentpassword": true, "app_secret": true}

// collectStrings collects the strings of v: the secrets (values of secretFields) and every other
// string, keys included.
func collectStrings(v any, key string, secrets, others *[]string) {
	switch x := v.(type) {
	case string:
		if secretFields[strings.ToLower(key)] {
			*secrets = append(*secrets, x)
		} else {
			*others = append(*others, x)
		}
	case []any:
		for _, e := range x {
			collectStrings(e, key, secrets, others)
		}
	case map[string]any:
		for k, e := range x {
			*others = append(*others, k)
			collectStrings(e, k, secrets, others)
		}
	}
}

// FuzzEndpointBodies sends fuzzed bodies to every endpoint that takes a
// JSON body, on a real server. No body gets a 5xx; every answer with a
// body is JSON, errors in their endpoint's model; a body that does not
// decode into the endpoint's request type is a 400 whose detail names at
// most a field, never the body's text; and no password or app secret of
// a request is echoed in the answer or written to the log.
func FuzzEndpointBodies(f *testing.F) {
	logs := &servertest.LogBuffer{}
	srv := servertest.Start(f, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	call := func(method, path, tok string, body any, headers ...string) servertest.Reply {
		f.Helper()
		r := srv.Call(method, path, tok, body, headers...)
		if r.Status != http.StatusOK {
			f.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		return r
	}
	root := srv.Root()
	call("POST", "/v4/accounts", root, map[string]any{"name": "fuzz-user", "password": "Passw0rd!fuzz", "roles": []string{engine.DeveloperRole}})
	call("POST", "/v4/roles", root, map[string]any{"name": "fuzz-role", "perms": []any{}})
	var apps [2]struct{ AppKey, AppSecret string }
	for i := range apps {
		call("POST", "/v4/apps", root, map[string]string{"name": "fuzz"}).JSON(f, &apps[i])
	}
	var channels [2]struct{ ID string }
	for i := range channels {
		call("POST", "/v4/channels", root, map[string]any{"name": "fuzz", "appKeys": []string{apps[0].AppKey}}).JSON(f, &channels[i])
	}
	var access struct{ AccessToken string }
	call("POST", "/apigovernance/api/oauth/tokenByAkSk", "", map[string]string{"app_key": apps[0].AppKey, "app_secret": apps[0].AppSecret},
		"X-Token-Expire", "3600").JSON(f, &access)
	// The endpoints write to what setup made for them alone, so that no
	// fuzzed body takes away what another endpoint needs (root's token,
	// the first app's AccessToken, the first channel).
	endpoints := []fuzzEndpoint{
		{method: "POST", path: "/v4/token", body: engine.LoginRequest{}},
		{method: "POST", path: "/v4/accounts", token: root, body: engine.CreateAccountRequest{}},
		{method: "POST", path: "/v4/accounts/batch-create", token: root, body: struct {
			Accounts []engine.CreateAccountRequest `json:"accounts"`
		}{}},
		{method: "PUT", path: "/v4/accounts/fuzz-user", token: root, body: engine.UpdateAccountRequest{}},
		{method: "POST", path: "/v4/accounts/fuzz-user/password", token: root, body: engine.ChangePasswordRequest{}},
		{method: "POST", path: "/v4/roles", token: root, body: engine.RoleRequest{}},
		{method: "PUT", path: "/v4/roles/fuzz-role", token: root, body: engine.RoleRequest{}},
		{method: "POST", path: "/v4/apps", token: root, body: apifabric.CreateAppRequest{}},
		{method: "PUT", path: "/v4/apps/" + apps[1].AppKey, token: root, body: apifabric.UpdateAppRequest{}},
		{method: "POST", path: "/v4/apps/" + apps[1].AppKey + "/secret", token: root, body: apifabric.RotateSecretRequest{}},
		{method: "POST", path: "/v4/channels", token: root, body: ccmessaging.ChannelRequest{}},
		{method: "PUT", path: "/v4/channels/" + channels[1].ID, token: root, body: ccmessaging.UpdateChannelRequest{}},
		{method: "POST", path: "/apigovernance/api/oauth/tokenByAkSk", body: apifabric.TokenRequest{}},
		{method: "POST", path: "/apiaccess/ccmessaging/applyToken", body: ccmessaging.ApplyRequest{}, ccm: true,
			headers: []string{"x-app-key", apps[0].AppKey, "Authorization", "Bearer " + access.AccessToken}},
	}
	fields := map[string]bool{}
	for _, ep := range endpoints {
		jsonNames(reflect.TypeOf(ep.body), fields)
	}
	known := strings.Join([]string{"fuzz-user", "fuzz-role", "127.0.0.1", apps[0].AppKey, apps[1].AppKey, channels[0].ID, channels[1].ID}, " ")

	seeds := []struct {
		ep   int
		body string
	}{
		{0, `{"name":"fuzz-user","password":"Passw0rd!fuzz","tokenExpirationTime":"30m"}`},
		{0, `{"name":"nobody","password":"not-the-password"}`},
		{1, `{"name":"eve","password":"Passw0rd!eve","roles":["developer"]}`},
		{2, `{"accounts":[{"name":"f1","password":"Passw0rd!f1"},{"name":"f2","password":"weak"}]}`},
		{3, `{"roles":["developer","fuzz-role"],"status":"inactive"}`},
		{4, `{"password":"Passw0rd!next"}`},
		{5, `{"name":"r1","perms":[{"resources":[{"type":"service","labels":{"appId":"shop"}}],"verbs":["get"]}]}`},
		{6, `{"name":"fuzz-role","perms":[{"resources":[{"type":"account"}],"verbs":["*"]}]}`},
		{7, `{"name":"crm","description":"the CRM"}`},
		{8, `{"status":"inactive"}`},
		{9, `{"graceSeconds":60}`},
		{10, `{"id":"123","name":"web","appKeys":[],"sessionIdleTimeout":"5m"}`},
		{11, `{"name":"chat","sessionIdleTimeout":"1h"}`},
		{12, `{"app_key":"` + apps[0].AppKey + `","app_secret":"` + apps[0].AppSecret + `"}`},
		{13, `{"userId":"u1","userName":"U One","channelId":"` + channels[0].ID + `","locale":"en_US"}`},
		{1, `{"name":1}`},
		{5, `{"perms":[{"resources":[{"type":[]}]}]}`},
		{13, `{"userId":`},
		{0, ` `},
	}
	for _, s := range seeds {
		f.Add(uint8(s.ep), []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := endpoints[int(which)%len(endpoints)]
		logged := len(logs.String())
		r := servertest.Send(t, ep.method, srv.Base+ep.path, ep.token, body, ep.headers...)
		if r.Status >= 500 {
			t.Fatalf("%s %s: %d %s", ep.method, ep.path, r.Status, r.Body)
		}
		if len(r.Body) > 0 && r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s: %d with Content-Type %q", ep.method, ep.path, r.Status, r.Header.Get("Content-Type"))
		}
		detail := ""
		if r.Status >= 400 {
			var e struct{ ErrorCode, ErrorMessage, Detail, ResultCode, ResultDesc string }
			if err := json.Unmarshal(r.Body, &e); err != nil {
				t.Fatalf("%s %s: %d %q is not JSON", ep.method, ep.path, r.Status, r.Body)
			}
			switch {
			case ep.ccm && (e.ResultCode != "1" || e.ResultDesc == ""):
				t.Fatalf("%s %s: %d %s is not in the ccmessaging model", ep.method, ep.path, r.Status, r.Body)
			case !ep.ccm && (len(e.ErrorCode) != 6 || e.ErrorCode[:3] != strconv.Itoa(r.Status) || e.ErrorMessage == ""):
				t.Fatalf("%s %s: %d %s is not in the error model", ep.method, ep.path, r.Status, r.Body)
			}
			detail = e.Detail + e.ResultDesc
		}
		if len(body) > httpapi.MaxBody {
			if r.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("%s %s: a body of %d bytes answered %d %s", ep.method, ep.path, len(body), r.Status, r.Body)
			}
			return
		}
		req := reflect.New(reflect.TypeOf(ep.body)).Interface()
		if json.Unmarshal(body, req) != nil && len(body) > 0 {
			if r.Status != http.StatusBadRequest || !decodeErrorRE.MatchString(detail) {
				t.Fatalf("%s %s: undecodable body answered %d %s", ep.method, ep.path, r.Status, r.Body)
			}
			if m := decodeErrorRE.FindStringSubmatch(detail); m[1] != "" {
				for _, name := range strings.Split(m[1], ".") {
					if !fields[name] {
						t.Fatalf("%s %s: detail %q names %q, no field of a request", ep.method, ep.path, detail, name)
					}
				}
			}
			return
		}
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		var secrets, others []string
		collectStrings(v, "", &secrets, &others)
		around := known + " " + strings.Join(others, " ")
		newLogs := logs.String()[logged:]
		for _, s := range secrets {
			// Shorter secrets may be words of messages ("password").
			if len(s) < 12 || strings.Contains(around, s) {
				continue
			}
			if strings.Contains(string(r.Body), s) {
				t.Fatalf("%s %s: the answer %s echoes a secret of the request", ep.method, ep.path, r.Body)
			}
			if strings.Contains(newLogs, s) {
				t.Fatalf("%s %s: the log holds a secret of the request: %s", ep.method, ep.path, newLogs)
			}
		}
	})
}
