package httpapi_test

import (
	"slices"
	"testing"
	"time"
)

// keyInfo is one entry of GET /v4/keys.
type keyInfo struct {
	ID, Algorithm, Status string
	Bits                  int
	Created, Expires      time.Time
}

func (ts *testServer) keys(tok string) []keyInfo {
	ts.t.Helper()
	r := ts.call("GET", "/v4/keys", tok, nil)
	wantStatus(ts.t, r, 200)
	var list struct {
		Total int
		Data  []keyInfo
	}
	r.json(ts.t, &list)
	if list.Total != len(list.Data) {
		ts.t.Fatalf("keys %s", r.body)
	}
	return list.Data
}

func TestEngineKeys(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	root := ts.root()
	ts.mkAccount(root, "keydev", pw("kd"), "developer")
	dev := ts.login("keydev", pw("kd"))

	keys := ts.keys(root)
	oldKID := activeKID(t, ts)
	if len(keys) != 1 || keys[0].ID != oldKID || keys[0].Algorithm != "RS512" || keys[0].Status != "active" ||
		keys[0].Bits != 2048 || time.Since(keys[0].Created).Abs() > time.Minute {
		t.Fatalf("keys %+v, kid %s", keys, oldKID)
	}
	if h, _ := tokenParts(t, root); h["kid"] != oldKID {
		t.Fatalf("token kid %v, key %s", h["kid"], oldKID)
	}
	wantDetail(t, ts.call("GET", "/v4/keys", dev, nil), 403, "403205", noPermission, "role has no permissions[key:get]")
	wantDetail(t, ts.call("POST", "/v4/keys/rotate", dev, nil), 403, "403205", noPermission, "role has no permissions[key:create]")
	wantErr(t, ts.call("POST", "/v4/keys/rotate", "", nil), 401, "401204", "No authorization header")

	r := ts.call("POST", "/v4/keys/rotate", root, nil)
	wantStatus(t, r, 200)
	var rotated keyInfo
	r.json(t, &rotated)
	if rotated.ID == "" || rotated.ID == oldKID || rotated.Status != "active" || rotated.Algorithm != "RS512" {
		t.Fatalf("rotate answered %s", r.body)
	}

	// Tokens signed by the retired key keep working.
	wantStatus(t, ts.call("GET", "/v4/keys", root, nil), 200)
	wantValid(t, ts, dev)
	fresh := ts.root()
	if h, _ := tokenParts(t, fresh); h["kid"] != rotated.ID {
		t.Fatalf("new token kid %v, want %s", h["kid"], rotated.ID)
	}
	wantValid(t, ts, fresh)

	var kids []string
	for _, k := range jwks(t, ts) {
		kids = append(kids, k.Kid)
	}
	if !slices.Equal(kids, []string{rotated.ID, oldKID}) {
		t.Fatalf("JWKS kids %v, want new %s then old %s", kids, rotated.ID, oldKID)
	}
	keys = ts.keys(root)
	if len(keys) != 2 || keys[0].ID != rotated.ID || keys[0].Status != "active" || keys[1].ID != oldKID || keys[1].Status != "retired" {
		t.Fatalf("keys after rotation %+v", keys)
	}
	if d := time.Until(keys[1].Expires) - 24*time.Hour; d < -time.Minute || d > time.Minute {
		t.Fatalf("retired key expires %v, want about 24h from now", keys[1].Expires)
	}
}
