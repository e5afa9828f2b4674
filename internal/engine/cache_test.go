package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// cacheKey returns a distinct key in shard shard.
func cacheKey(shard byte, n uint64) [sha256.Size]byte {
	var k [sha256.Size]byte
	k[0] = shard
	binary.BigEndian.PutUint64(k[1:], n)
	return k
}

func claimsExpiring(at time.Time) *Claims {
	return &Claims{Account: "a", RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(at)}}
}

func TestTokenCacheBound(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 64, 1000} {
		c := newTokenCache(size)
		live := claimsExpiring(time.Now().Add(time.Hour))
		now := time.Now().Unix()
		for i := range uint64(5000) {
			k := sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
			c.put(k, live, now)
			if _, ok := c.get(k); !ok {
				t.Fatalf("size %d: entry %d not found right after put", size, i)
			}
		}
		if limit := max(size/cacheShards, 1) * cacheShards; c.len() > limit {
			t.Fatalf("size %d: %d entries, bound %d", size, c.len(), limit)
		}
	}
}

func TestTokenCacheEvictsExpiredFirst(t *testing.T) {
	t.Parallel()
	const per = 4
	c := newTokenCache(per * cacheShards)
	now := time.Now()
	live, dead := claimsExpiring(now.Add(time.Hour)), claimsExpiring(now.Add(-time.Second))
	var liveKeys [][sha256.Size]byte
	for i := range uint64(per - 1) {
		k := cacheKey(7, i)
		c.put(k, live, now.Unix())
		liveKeys = append(liveKeys, k)
	}
	c.put(cacheKey(7, 100), dead, now.Unix())
	c.put(cacheKey(8, 0), live, now.Unix()) // another shard is not affected

	// The shard is full: the next entry drops the expired one only.
	c.put(cacheKey(7, 200), live, now.Unix())
	if _, ok := c.get(cacheKey(7, 100)); ok {
		t.Fatal("expired entry kept in a full shard")
	}
	for _, k := range append(liveKeys, cacheKey(7, 200), cacheKey(8, 0)) {
		if _, ok := c.get(k); !ok {
			t.Fatalf("live entry %x evicted while an expired one was there", k[:9])
		}
	}
	// Full of live entries: one is dropped, the shard stays at its bound.
	c.put(cacheKey(7, 300), live, now.Unix())
	if n := len(c.shard(&liveKeys[0]).m); n != per {
		t.Fatalf("shard holds %d entries, bound %d", n, per)
	}
}

func TestVerifyCachedTokenExpires(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := newEngine(t, Options{Now: clk.Now, Leeway: 30 * time.Second})
	tok, err := e.Login(bg, LoginRequest{Name: RootAccount, Password: rootPW, TokenExpirationTime: "15m"}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	other := e.login(t, RootAccount, rootPW)
	if _, err := e.Verify("Bearer " + tok); err != nil {
		t.Fatal(err)
	}
	if e.cache.len() != 1 {
		t.Fatalf("cache holds %d entries after one verification", e.cache.len())
	}
	clk.Add(15*time.Minute + 20*time.Second) // within the leeway
	if _, err := e.Verify("Bearer " + tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	clk.Add(11 * time.Second)
	_, err = e.Verify("Bearer " + tok)
	wantCode(t, err, "401205")
	if _, err := e.Verify("Bearer " + other); err != nil {
		t.Fatalf("12h token after 15m: %v", err)
	}
	clk.Add(12 * time.Hour)
	_, err = e.Verify("Bearer " + other)
	wantCode(t, err, "401205")
}
