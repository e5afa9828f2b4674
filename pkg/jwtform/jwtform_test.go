package jwtform_test

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse/internal/jwtcorpus"
	"github.com/gatehouse/gatehouse/pkg/jwtform"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func parse(tok string) error {
	_, err := jwtform.ParseWithClaims(tok, &jwt.RegisteredClaims{}, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	return err
}

func TestCorpus(t *testing.T) {
	now := time.Now().Unix()
	jwtcorpus.Run(t, jwtcorpus.Family{
		Header: map[string]any{"alg": "HS256", "typ": "JWT"},
		Claims: map[string]any{"sub": "app", "iat": now, "exp": now + 600},
		Sign:   jwtcorpus.HMACSign(key),
	}, func(tok string) bool { return parse(tok) == nil })
}

// Every other spelling of a signature's last character, the one that
// carries unused bits, is refused: a token has one encoding.
func TestOneEncoding(t *testing.T) {
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := parse(tok); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, v := range jwtcorpus.Variants(tok) {
		if parse(v) == nil {
			accepted++
		}
	}
	if accepted != 0 {
		t.Fatalf("%d re-encodings of the signature accepted", accepted)
	}
	err = jwtform.Check(tok[:len(tok)-1] + "=")
	if !errors.Is(err, jwt.ErrTokenMalformed) {
		t.Fatalf("Check: %v, want jwt.ErrTokenMalformed", err)
	}
}
