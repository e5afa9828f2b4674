package bench

import (
	"crypto/rand"
	"crypto/rsa"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/password"
)

// CryptoFloor is what a login costs in cryptography alone: one argon2id
// verification at the configured parameters and one RS512 signature.
// LoginLimitRPS = Cores / (Hash + Sign) is the most logins per second the
// machine could serve with nothing else to do.
//
// Hash is timed while every core runs a verification, as every core does
// under login load: the hashes then share memory bandwidth and the
// last-level cache (19 MiB each at the default cost), and each takes
// longer than one alone (HashAloneMs), so Cores / HashAlone would be a
// rate the machine cannot reach even with nothing else to do.
type CryptoFloor struct {
	HashMs        float64 `json:"hash_ms"`
	HashAloneMs   float64 `json:"hash_alone_ms"`
	SignMs        float64 `json:"sign_ms"`
	Cores         int     `json:"cores"`
	LoginLimitRPS float64 `json:"login_limit_rps"`
}

// measureCrypto times the cryptography of a login, each operation as the
// median of a few runs: a verification on one goroutine and on one
// goroutine per core at once, a signature on one goroutine.
func measureCrypto(params password.Params, rsaBits int) (CryptoFloor, error) {
	h, err := password.NewHasher(params)
	if err != nil {
		return CryptoFloor{}, err
	}
	const pw = "Bench-Password-1!"
	hash, err := h.Hash(pw)
	if err != nil {
		return CryptoFloor{}, err
	}
	verify := func() { _, _, _ = h.Verify(pw, hash) }
	aloneTime := median(1, 7, verify)
	hashTime := median(runtime.NumCPU(), 8, verify)
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return CryptoFloor{}, err
	}
	claims := jwt.MapClaims{"account": "bench", "roles": []string{"developer"},
		"exp": time.Now().Add(12 * time.Hour).Unix(), "iat": time.Now().Unix(), "jti": "0190a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b"}
	var signErr error
	signTime := median(1, 51, func() {
		t := jwt.NewWithClaims(jwt.SigningMethodRS512, claims)
		t.Header["kid"] = "bench"
		_, signErr = t.SignedString(key)
	})
	if signErr != nil {
		return CryptoFloor{}, signErr
	}
	f := CryptoFloor{HashMs: ms(hashTime), HashAloneMs: ms(aloneTime), SignMs: ms(signTime), Cores: runtime.NumCPU()}
	f.LoginLimitRPS = float64(f.Cores) / (hashTime + signTime).Seconds()
	return f, nil
}

// median runs fn n times on each of g goroutines at once and returns the
// median duration.
func median(g, n int, fn func()) time.Duration {
	times := make([][]time.Duration, g)
	var wg sync.WaitGroup
	for i := range times {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				t0 := time.Now()
				fn()
				times[i] = append(times[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	all := slices.Concat(times...)
	slices.Sort(all)
	return all[len(all)/2]
}

// ms converts d to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// us converts d to microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
