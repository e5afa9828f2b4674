package apifabric

import (
	"encoding/hex"
	"sync"
	"testing"
	"time"
)

// TestIssueIsStable pins AccessTokens issued from fixed inputs and key:
// a change of the claims' encoding would issue other strings for the same
// inputs, and could refuse the tokens already issued.
func TestIssueIsStable(t *testing.T) {
	s := &Service{signKey: []byte("0123456789abcdef0123456789abcdef")}
	for _, tc := range []struct {
		name, app, jti string
		gen            int64
		now            time.Time
		ttl            time.Duration
		want           string
	}{
		{"whole seconds", "6f1c2a9e-0d4b-4a57-9a43-2f7f1f0b1c3d", "0b5e8f1a-3c2d-4e6f-8a9b-1c2d3e4f5a6b", 7,
			time.Unix(1700000000, 0), 600 * time.Second, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
				"eyJnZW4iOjcsInN1YiI6IjZmMWMyYTllLTBkNGItNGE1Ny05YTQzLTJmN2YxZjBiMWMzZCIsImV4cCI6MTcwMDAwMDYwMCwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiIwYjVlOGYxYS0zYzJkLTRlNmYtOGE5Yi0xYzJkM2U0ZjVhNmIifQ." +
				"zjUHY-2ePXqPhBB2KSX_4pIGiyuJXJZRYATlR5jTc_o"},
		{"escaped strings, fractional now", "a\"<é>\u2028/&\\x", "j&<>", 1,
			time.Unix(1700000000, 250_000_000), time.Second, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
				"eyJnZW4iOjEsInN1YiI6ImFcIlx1MDAzY8OpXHUwMDNlXHUyMDI4L1x1MDAyNlxceCIsImV4cCI6MTcwMDAwMDAwMiwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiJqXHUwMDI2XHUwMDNjXHUwMDNlIn0." +
				"twOceOdVEiyzljNKwJpN4g4rCt1hfcmzjfsqfVn1bGc"},
	} {
		got, err := s.issue(tc.app, tc.gen, tc.now, tc.ttl, tc.jti)
		if err != nil || got != tc.want {
			t.Errorf("%s: issued\n%s (%v)\nwant\n%s", tc.name, got, err, tc.want)
		}
	}
}

// TestHashSecretIsStable pins the stored form of secrets, also when the
// pooled hashes are reused from several goroutines: a change would make
// every stored app secret fail.
func TestHashSecretIsStable(t *testing.T) {
	s := &Service{hashers: newHashers([]byte("fedcba9876543210fedcba9876543210"))}
	want := map[string]string{
		"s3cr3t": "8a768fbb1e0b146eb49d6a718bc115e86630f56aba283463d1cf3fa8520912e4",
		"x":      "3f772046de07f21ca4730f5ed8bb043940308e8008d9bbf5fd034a71eb7aec43",
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				for secret, hash := range want {
					if got := hex.EncodeToString(s.hashSecret(secret)); got != hash {
						t.Errorf("hashSecret(%q) = %s, want %s", secret, got, hash)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
