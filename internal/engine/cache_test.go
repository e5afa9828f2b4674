package engine

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testclock"
)

func TestVerifyCachedTokenExpires(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Now())
	e := newEngine(t, Options{Now: clk.Now, Leeway: 30 * time.Second})
	tok, err := e.Login(bg, LoginRequest{Name: RootAccount, Password: rootPW, TokenExpirationTime: "15m"}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	other := e.login(t, RootAccount, rootPW)
	if _, err := e.Verify("Bearer " + tok); err != nil {
		t.Fatal(err)
	}
	if e.cache.Len() != 1 {
		t.Fatalf("cache holds %d entries after one verification", e.cache.Len())
	}
	clk.Advance(15*time.Minute + 20*time.Second) // within the leeway
	if _, err := e.Verify("Bearer " + tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	clk.Advance(11 * time.Second)
	_, err = e.Verify("Bearer " + tok)
	wantCode(t, err, "401205")
	if _, err := e.Verify("Bearer " + other); err != nil {
		t.Fatalf("12h token after 15m: %v", err)
	}
	clk.Advance(12 * time.Hour)
	_, err = e.Verify("Bearer " + other)
	wantCode(t, err, "401205")
}
