// Package tokencache remembers tokens whose signature was verified, so a
// token costs one signature check per replica rather than one per
// request. Entries are keyed by the SHA-256 of the token (a forged token
// cannot collide with a verified one) and the cache is bounded in size.
// Callers check the value's expiry on every hit (so an expired token is
// refused without a signature check) and revocation on every request, hit
// or miss.
package tokencache

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Key is the cache key of a token.
type Key = [sha256.Size]byte

// KeyOf returns the cache key of token.
func KeyOf(token string) Key { return sha256.Sum256([]byte(token)) }

const shards = 32

// Cache maps token keys to verified values of type V.
type Cache[V any] struct {
	shards  [shards]shard[V]
	per     int
	expires func(V) time.Time
}

type shard[V any] struct {
	mu sync.RWMutex
	m  map[Key]V
}

// New returns a cache of about size entries (rounded to a multiple of its
// shard count, at least one per shard); expires says when a value stops
// being valid.
func New[V any](size int, expires func(V) time.Time) *Cache[V] {
	c := &Cache[V]{per: max(size/shards, 1), expires: expires}
	for i := range c.shards {
		c.shards[i].m = make(map[Key]V)
	}
	return c
}

func (c *Cache[V]) shard(k *Key) *shard[V] { return &c.shards[int(k[0])%shards] }

// Get returns the value under k, expired or not.
func (c *Cache[V]) Get(k Key) (V, bool) {
	s := c.shard(&k)
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}

// Put adds an entry. A full shard first drops its expired entries, then,
// if still full, arbitrary ones.
func (c *Cache[V]) Put(k Key, v V, now time.Time) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.per {
		for key, old := range s.m {
			if !now.Before(c.expires(old)) {
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
	s.m[k] = v
}

// Len returns the number of entries, expired ones included.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}
