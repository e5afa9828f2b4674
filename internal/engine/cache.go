package engine

import (
	"crypto/sha256"
	"sync"
)

// tokenCache remembers tokens whose signature was verified, so a token
// costs one RSA verification per replica rather than one per request. It
// is keyed by the SHA-256 of the token (a forged token cannot collide with
// a verified one), bounded in size, and never returns an entry past its
// exp: callers check exp on every hit. Revocation is checked separately on
// every request, so a cached entry never outlives a revocation.
type tokenCache struct {
	shards [cacheShards]cacheShard
	per    int
}

const cacheShards = 32

type cacheShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*Claims
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{per: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*Claims)
	}
	return c
}

func (c *tokenCache) shard(k *[sha256.Size]byte) *cacheShard {
	return &c.shards[int(k[0])%cacheShards]
}

func (c *tokenCache) get(k [sha256.Size]byte) (*Claims, bool) {
	s := c.shard(&k)
	s.mu.RLock()
	cl, ok := s.m[k]
	s.mu.RUnlock()
	return cl, ok
}

// put adds an entry. A full shard first drops its expired entries, then,
// if still full, an arbitrary one.
func (c *tokenCache) put(k [sha256.Size]byte, cl *Claims, nowUnix int64) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.per {
		for key, v := range s.m {
			if v.ExpiresAt == nil || v.ExpiresAt.Unix() <= nowUnix {
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

// len returns the number of cached entries.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}
