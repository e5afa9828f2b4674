package httpapi_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// app is the answer to POST /v4/apps.
type app struct {
	AppKey      string `json:"appKey"`
	AppSecret   string `json:"appSecret"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	CreateTime  string `json:"createTime"`
	UpdateTime  string `json:"updateTime"`
}

var (
	uuidRE   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	secretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`) // 32 bytes, base64url, no padding
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
)

const tokenByAkSk = "/apigovernance/api/oauth/tokenByAkSk"

// mkApp creates an app with an engine token, failing the test otherwise.
func (ts *testServer) mkApp(tok, name string) app {
	ts.t.Helper()
	r := ts.call("POST", "/v4/apps", tok, map[string]string{"name": name})
	if r.status != 200 {
		ts.t.Fatalf("create app: %d %s", r.status, r.body)
	}
	var a app
	r.json(ts.t, &a)
	return a
}

// accessToken exchanges an app's key and secret for an AccessToken.
func (ts *testServer) accessToken(key, secret string, headers ...string) string {
	ts.t.Helper()
	r := ts.call("POST", tokenByAkSk, "", map[string]string{"app_key": key, "app_secret": secret}, headers...)
	if r.status != 200 {
		ts.t.Fatalf("tokenByAkSk: %d %s", r.status, r.body)
	}
	var out struct{ AccessToken string }
	r.json(ts.t, &out)
	return out.AccessToken
}

func wantAppShape(t *testing.T, a app, name string) {
	t.Helper()
	if !uuidRE.MatchString(a.AppKey) || a.Name != name || a.Status != "active" ||
		!digitsRE.MatchString(a.CreateTime) || !digitsRE.MatchString(a.UpdateTime) {
		t.Fatalf("app %+v", a)
	}
}

func TestFabricApps(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()

	r := ts.call("POST", "/v4/apps", root, map[string]string{"name": "crm", "description": "customer care"})
	wantStatus(t, r, 200)
	var created app
	r.json(t, &created)
	wantAppShape(t, created, "crm")
	if created.Description != "customer care" || !secretRE.MatchString(created.AppSecret) {
		t.Fatalf("created %+v", created)
	}

	t.Run("list and get never show secrets", func(t *testing.T) {
		ts := ts.as(t)
		list := ts.call("GET", "/v4/apps", root, nil)
		wantStatus(t, list, 200)
		var l struct {
			Total int   `json:"total"`
			Data  []app `json:"data"`
		}
		list.json(t, &l)
		if l.Total != 1 || len(l.Data) != 1 || l.Data[0].AppKey != created.AppKey {
			t.Fatalf("list %s", list.body)
		}
		get := ts.call("GET", "/v4/apps/"+created.AppKey, root, nil)
		wantStatus(t, get, 200)
		for _, body := range [][]byte{list.body, get.body} {
			if strings.Contains(string(body), created.AppSecret) || strings.Contains(strings.ToLower(string(body)), "secret") {
				t.Fatalf("secret material in %s", body)
			}
		}
	})

	t.Run("update", func(t *testing.T) {
		ts := ts.as(t)
		r := ts.call("PUT", "/v4/apps/"+created.AppKey, root, map[string]string{"name": "crm2", "description": ""})
		wantStatus(t, r, 200)
		var a app
		r.json(t, &a)
		wantAppShape(t, a, "crm2")
		if a.Description != "" || a.AppSecret != "" {
			t.Fatalf("updated %s", r.body)
		}
	})

	t.Run("rotate secret", func(t *testing.T) {
		ts := ts.as(t)
		r := ts.call("POST", "/v4/apps/"+created.AppKey+"/secret", root, nil)
		wantStatus(t, r, 200)
		var sec map[string]string
		r.json(t, &sec)
		if len(sec) != 2 || sec["appKey"] != created.AppKey || !secretRE.MatchString(sec["appSecret"]) || sec["appSecret"] == created.AppSecret {
			t.Fatalf("rotation answer %s", r.body)
		}
		ts.accessToken(created.AppKey, sec["appSecret"])
		wantErr(t, ts.call("POST", tokenByAkSk, "", map[string]string{"app_key": created.AppKey, "app_secret": created.AppSecret}),
			401, "401501", "Invalid app key or secret")
	})

	t.Run("delete", func(t *testing.T) {
		ts := ts.as(t)
		a := ts.mkApp(root, "doomed")
		wantOK(t, ts.call("DELETE", "/v4/apps/"+a.AppKey, root, nil))
		wantErr(t, ts.call("GET", "/v4/apps/"+a.AppKey, root, nil), 404, "404001", "Not found")
		wantErr(t, ts.call("DELETE", "/v4/apps/"+a.AppKey, root, nil), 404, "404001", "Not found")
		wantErr(t, ts.call("POST", tokenByAkSk, "", map[string]string{"app_key": a.AppKey, "app_secret": a.AppSecret}),
			401, "401501", "Invalid app key or secret")
	})

	t.Run("bad input", func(t *testing.T) {
		ts := ts.as(t)
		key := "/v4/apps/" + created.AppKey
		for _, tc := range []struct {
			name, method, path string
			body               any
			status             int
			code               string
		}{
			{"malformed JSON", "POST", "/v4/apps", `{"name":`, 400, "400001"},
			{"wrong type", "POST", "/v4/apps", `{"name":1}`, 400, "400001"},
			{"missing name", "POST", "/v4/apps", `{}`, 400, "400001"},
			{"empty body", "POST", "/v4/apps", "", 400, "400001"},
			{"name too long", "POST", "/v4/apps", map[string]string{"name": strings.Repeat("a", 65)}, 400, "400001"},
			{"control character", "POST", "/v4/apps", map[string]string{"name": "a\nb"}, 400, "400001"},
			{"oversize", "POST", "/v4/apps", `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "413001"},
			{"update nothing", "PUT", key, `{}`, 400, "400001"},
			{"update bad status", "PUT", key, `{"status":"paused"}`, 400, "400001"},
			{"update wrong type", "PUT", key, `{"status":true}`, 400, "400001"},
			{"update unknown app", "PUT", "/v4/apps/nope", `{"name":"x"}`, 404, "404001"},
			{"get unknown app", "GET", "/v4/apps/nope", nil, 404, "404001"},
			{"negative grace", "POST", key + "/secret", `{"graceSeconds":-1}`, 400, "400001"},
			{"grace too long", "POST", key + "/secret", `{"graceSeconds":86401}`, 400, "400001"},
			{"grace not a number", "POST", key + "/secret", `{"graceSeconds":"60"}`, 400, "400001"},
			{"rotate unknown app", "POST", "/v4/apps/nope/secret", nil, 404, "404001"},
			{"wrong method", "PATCH", key, nil, 405, "405001"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, ts.as(t).call(tc.method, tc.path, root, tc.body), tc.status, tc.code)
			})
		}
	})

	t.Run("needs the app permission", func(t *testing.T) {
		ts := ts.as(t)
		wantErr(t, ts.call("GET", "/v4/apps", "", nil), 401, "401204", "No authorization header")
		ts.mkAccount(root, "dev", pw("dev"), "developer")
		dev := ts.login("dev", pw("dev"))
		wantErr(t, ts.call("POST", "/v4/apps", dev, map[string]string{"name": "x"}), 403, "403205", "No permission(s)")
	})
}

func TestFabricTokenByAkSk(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	a := ts.mkApp(root, "crm")
	creds := map[string]string{"app_key": a.AppKey, "app_secret": a.AppSecret}

	t.Run("answer", func(t *testing.T) {
		ts := ts.as(t)
		before := time.Now().Unix()
		r := ts.call("POST", tokenByAkSk, "", creds)
		wantStatus(t, r, 200)
		var m map[string]any
		r.json(t, &m)
		want := []string{"AccessToken", "AppKey", "ApplyType", "CreateTime", "Expires", "Scope", "UserID"}
		keys := make([]string, 0, len(m))
		for k, v := range m {
			keys = append(keys, k)
			if _, ok := v.(string); !ok {
				t.Fatalf("%s is %T, want a string", k, v)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("fields %v, want %v", keys, want)
		}
		if m["ApplyType"] != "Bearer" || m["Expires"] != "600" || m["Scope"] != "" || m["AppKey"] != a.AppKey || m["UserID"] != "Anonymous" {
			t.Fatalf("answer %s", r.body)
		}
		var created int64
		if err := json.Unmarshal([]byte(m["CreateTime"].(string)), &created); err != nil || created < before || created > time.Now().Unix() {
			t.Fatalf("CreateTime %v", m["CreateTime"])
		}
		header, claims := tokenParts(t, m["AccessToken"].(string))
		if header["alg"] != "HS256" || claims["sub"] != a.AppKey || claims["jti"] == nil {
			t.Fatalf("token header %v claims %v", header, claims)
		}
		if exp := unixClaim(t, claims, "exp"); exp.Unix()-created < 600 || exp.Unix()-created > 601 {
			t.Fatalf("exp %v for CreateTime %d", exp, created)
		}
	})

	t.Run("X-Token-Expire", func(t *testing.T) {
		for _, tc := range []struct {
			value string
			want  int
		}{{"1", 200}, {"3600", 200}, {"600", 200}, {"0", 400}, {"3601", 400}, {"abc", 400}, {"-5", 400}, {"1.5", 400}} {
			t.Run(tc.value, func(t *testing.T) {
				r := ts.as(t).call("POST", tokenByAkSk, "", creds, "X-Token-Expire", tc.value)
				if tc.want == 400 {
					wantErr(t, r, 400, "400001", "Invalid parameter(s)")
					return
				}
				wantStatus(t, r, 200)
				var out struct{ Expires string }
				r.json(t, &out)
				if out.Expires != tc.value {
					t.Fatalf("Expires %q, want %q", out.Expires, tc.value)
				}
			})
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for name, body := range map[string]any{
			"malformed":      `{"app_key":`,
			"wrong type":     `{"app_key":1,"app_secret":"x"}`,
			"missing key":    map[string]string{"app_secret": a.AppSecret},
			"missing secret": map[string]string{"app_key": a.AppKey},
			"empty":          "",
		} {
			t.Run(name, func(t *testing.T) {
				wantErr(t, ts.as(t).call("POST", tokenByAkSk, "", body), 400, "400001", "Invalid parameter(s)")
			})
		}
		wantErr(t, ts.call("GET", tokenByAkSk, "", nil), 405, "405001", "Method not allowed")
	})

	t.Run("one answer for every credential failure", func(t *testing.T) {
		ts := ts.as(t)
		off := ts.mkApp(root, "off")
		wantStatus(t, ts.call("PUT", "/v4/apps/"+off.AppKey, root, map[string]string{"status": "inactive"}), 200)
		var bodies []string
		for _, c := range []map[string]string{
			{"app_key": "00000000-0000-0000-0000-000000000000", "app_secret": a.AppSecret},
			{"app_key": a.AppKey, "app_secret": a.AppSecret + "x"},
			{"app_key": off.AppKey, "app_secret": off.AppSecret},
		} {
			r := ts.call("POST", tokenByAkSk, "", c)
			wantErr(t, r, 401, "401501", "Invalid app key or secret")
			bodies = append(bodies, string(r.body))
		}
		if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
			t.Fatalf("credential failures differ: %q", bodies)
		}
	})
}
