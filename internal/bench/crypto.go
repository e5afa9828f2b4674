package bench

import (
	"crypto/rand"
	"crypto/rsa"
	"runtime"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/password"
)

// CryptoFloor is what a login costs in cryptography alone: one argon2id
// verification at the configured parameters and one RS512 signature.
// LoginLimitRPS = Cores / (Hash + Sign) is the most logins per second the
// machine could serve with nothing else to do.
type CryptoFloor struct {
	HashMs        float64 `json:"hash_ms"`
	SignMs        float64 `json:"sign_ms"`
	Cores         int     `json:"cores"`
	LoginLimitRPS float64 `json:"login_limit_rps"`
}

// measureCrypto times the cryptography of a login, each operation as the
// median of a few runs on one goroutine.
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
	hashTime := median(7, func() { _, _, _ = h.Verify(pw, hash) })
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return CryptoFloor{}, err
	}
	claims := jwt.MapClaims{"account": "bench", "roles": []string{"developer"},
		"exp": time.Now().Add(12 * time.Hour).Unix(), "iat": time.Now().Unix(), "jti": "0190a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b"}
	var signErr error
	signTime := median(51, func() {
		t := jwt.NewWithClaims(jwt.SigningMethodRS512, claims)
		t.Header["kid"] = "bench"
		_, signErr = t.SignedString(key)
	})
	if signErr != nil {
		return CryptoFloor{}, signErr
	}
	f := CryptoFloor{HashMs: ms(hashTime), SignMs: ms(signTime), Cores: runtime.NumCPU()}
	f.LoginLimitRPS = float64(f.Cores) / (hashTime + signTime).Seconds()
	return f, nil
}

// median runs fn n times and returns the median duration.
func median(n int, fn func()) time.Duration {
	times := make([]time.Duration, n)
	for i := range times {
		t0 := time.Now()
		fn()
		times[i] = time.Since(t0)
	}
	slices.Sort(times)
	return times[n/2]
}

// ms converts d to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// us converts d to microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
