package engine

import "testing"

// TestVerifyToken: a bare token verifies as its Bearer header does, and
// the header's form is checked by Verify only: VerifyToken takes no
// scheme.
func TestVerifyToken(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	tok := e.login(t, RootAccount, rootPW)
	p, err := e.VerifyToken(tok)
	if err != nil || p.Account != RootAccount || p.JTI == "" {
		t.Fatalf("VerifyToken: %+v %v", p, err)
	}
	if h, err := e.Verify("Bearer " + tok); err != nil || h.JTI != p.JTI {
		t.Fatalf("Verify of the same token: %+v %v", h, err)
	}
	for i, bad := range []string{"", "Bearer " + tok, tok + "x"} {
		if _, err := e.VerifyToken(bad); err == nil {
			t.Errorf("bad token %d accepted", i)
		}
	}
	if err := e.Logout(bg, p, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.VerifyToken(tok); err == nil {
		t.Fatal("a revoked token verifies")
	}
}
