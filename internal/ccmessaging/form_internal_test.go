package ccmessaging

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwtcorpus"
)

// TestTokenFormCorpus runs the RFC 8725 table against parse.
func TestTokenFormCorpus(t *testing.T) {
	m := minter{key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Now().Unix()
	jwtcorpus.Run(t, jwtcorpus.Family{
		Header: map[string]any{"alg": "HS256", "typ": "JWT"},
		Claims: map[string]any{"ch": "1001", "uid": "alice", "sid": "s", "gen": 1, "iat": now, "exp": now + 3600},
		Sign:   jwtcorpus.HMACSign(m.key),
	}, func(tok string) bool {
		_, ok := m.parse(tok)
		return ok
	})
}
