package apifabric

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCache remembers AccessTokens whose signature was verified, so the
// hot path does not parse a JWT and compute an HMAC per request. It is
// keyed by the SHA-256 of the token (a forged token cannot collide with a
// verified one), bounded in size, and callers check exp on every hit.
// The app's state is checked separately on every request, so a cached
// entry never outlives a deactivation, deletion or rotation.
type tokenCache struct {
	shards [cacheShards]cacheShard
	per    int
}

const cacheShards = 32

type cacheShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*accessClaims
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{per: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*accessClaims)
	}
	return c
}

func (c *tokenCache) shard(k *[sha256.Size]byte) *cacheShard {
	return &c.shards[int(k[0])%cacheShards]
}

func (c *tokenCache) get(k [sha256.Size]byte) (*accessClaims, bool) {
	s := c.shard(&k)
	s.mu.RLock()
	cl, ok := s.m[k]
	s.mu.RUnlock()
	return cl, ok
}

// put adds an entry. A full shard first drops its expired entries, then,
// if still full, arbitrary ones.
func (c *tokenCache) put(k [sha256.Size]byte, cl *accessClaims, now time.Time) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.per {
		for key, v := range s.m {
			if !now.Before(v.ExpiresAt.Time) {
				delete(s.m, key)
			}
		}
		for key := range s.m {
			if len(s.m) < c.per {
				break
			}
			delete(s.m, key)
		}
	}
	s.m[k] = cl
}
