package apifabric

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwtcorpus"
	"github.com/gatehouse/gatehouse/internal/tokencache"
)

// TestTokenFormCorpus runs the RFC 8725 table against parse.
func TestTokenFormCorpus(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	s := &Service{signKey: key, cache: tokencache.New(64, func(c *accessClaims) time.Time { return c.ExpiresAt.Time })}
	now := time.Now()
	jwtcorpus.Run(t, jwtcorpus.Family{
		Header: map[string]any{"alg": "HS256", "typ": "JWT"},
		Claims: map[string]any{"gen": 1, "sub": "app", "iat": now.Unix(), "exp": now.Unix() + 600, "jti": "j"},
		Sign:   jwtcorpus.HMACSign(key),
	}, func(tok string) bool {
		_, err := s.parse(tok, now)
		return err == nil
	})
}
