// Package jwtcorpus is test support: the accept/reject table of RFC 8725
// for Gatehouse's token parsers, kept in testdata/rfc8725.json. Each case
// describes a change to a token as its family issues it (header
// parameters, claims, a segment's encoding, the signing key); Token builds
// the case's token for one family, signed with that family's key, so one
// table drives every parser.
package jwtcorpus

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

//go:embed testdata/rfc8725.json
var corpus []byte

// Case is one row of the table.
type Case struct {
	Name string `json:"name"`
	Ref  string `json:"ref"`
	// Expect is "accept" or "reject".
	Expect string `json:"expect"`
	// Header and Claims are set over the family's as issued. A claim
	// value "@exp" or "@iat" is the family's exp or iat as a JSON string.
	Header map[string]json.RawMessage `json:"header"`
	Claims map[string]json.RawMessage `json:"claims"`
	// Spaced lays the claims JSON out with indentation.
	Spaced bool `json:"spaced"`
	// Segment ("header", "payload" or "signature") is re-encoded by
	// Mutation: trailing-bits, padding, line-feed, carriage-return,
	// standard-alphabet, empty or drop. Header and payload are changed
	// before signing, so the signature is valid over them.
	Segment  string `json:"segment"`
	Mutation string `json:"mutation"`
	// Key "other" signs with a key the family does not trust.
	Key string `json:"key"`
}

// Run checks every case of the table against one family: accept reports
// whether the parser under test accepts a token.
func Run(t *testing.T, f Family, accept func(tok string) bool) {
	t.Helper()
	cs, err := cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		tok, err := c.Token(f)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if got := accept(tok); got != c.Accept() {
			t.Errorf("%s (%s): accepted %v, want %v", c.Name, c.Ref, got, c.Accept())
		}
	}
}

// Variants returns tok with its last character, which carries the
// signature's unused bits, spelled every other way: none of them is the
// canonical encoding of any signature.
func Variants(tok string) []string {
	var out []string
	for i := range len(alphabet) {
		if c := alphabet[i]; c != tok[len(tok)-1] {
			out = append(out, tok[:len(tok)-1]+string(c))
		}
	}
	return out
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// HMACSign is Family.Sign for HMAC-signed tokens under key.
func HMACSign(key []byte) func(alg, input string, other bool) ([]byte, error) {
	return func(alg, input string, other bool) ([]byte, error) {
		k := key
		if other {
			k = []byte("a key the family does not trust")
		}
		return sign(alg, input, k)
	}
}

// RSASign is Family.Sign for RSA-signed tokens under priv. Another
// algorithm is keyed with the PEM of priv's public key, the classic
// confusion of a public key with an HMAC secret.
func RSASign(priv *rsa.PrivateKey) func(alg, input string, other bool) ([]byte, error) {
	return func(alg, input string, other bool) ([]byte, error) {
		if other {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return nil, err
			}
			return sign(alg, input, k)
		}
		if strings.HasPrefix(alg, "RS") {
			return sign(alg, input, priv)
		}
		der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			return nil, err
		}
		return sign(alg, input, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
}

func sign(alg, input string, key any) ([]byte, error) {
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		return nil, fmt.Errorf("jwtcorpus: no signing method %q", alg)
	}
	return m.Sign(input, key)
}

// Accept reports whether the case's token must be accepted.
func (c Case) Accept() bool { return c.Expect == "accept" }

// cases returns the table.
func cases() ([]Case, error) {
	var cs []Case
	if err := json.Unmarshal(corpus, &cs); err != nil {
		return nil, fmt.Errorf("jwtcorpus: %w", err)
	}
	for _, c := range cs {
		if c.Expect != "accept" && c.Expect != "reject" {
			return nil, fmt.Errorf("jwtcorpus: case %q expects %q", c.Name, c.Expect)
		}
	}
	return cs, nil
}

// Family is a token family as its issuer writes it.
type Family struct {
	// Header and Claims are those of a valid token; exp and iat are
	// numbers.
	Header map[string]any
	Claims map[string]any
	// Sign signs input with alg, under the family's key, or under a key
	// the family does not trust when other is set. For an algorithm the
	// family does not use, it keys that algorithm with the family's own
	// key material (e.g. an RSA public key as an HMAC secret).
	Sign func(alg, input string, other bool) ([]byte, error)
}

var enc = base64.RawURLEncoding

// Token builds the token of c for f.
func (c Case) Token(f Family) (string, error) {
	header := maps.Clone(f.Header)
	for k, v := range c.Header {
		header[k] = v
	}
	claims := maps.Clone(f.Claims)
	for k, v := range c.Claims {
		var s string
		if json.Unmarshal(v, &s) == nil && strings.HasPrefix(s, "@") {
			base, err := json.Marshal(f.Claims[s[1:]])
			if err != nil {
				return "", err
			}
			v, _ = json.Marshal(string(base))
		}
		claims[k] = v
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	var cb []byte
	if c.Spaced {
		cb, err = json.MarshalIndent(claims, "", "  ")
	} else {
		cb, err = json.Marshal(claims)
	}
	if err != nil {
		return "", err
	}
	h, p := c.segment("header", hb), c.segment("payload", cb)
	alg, _ := header["alg"].(string)
	if raw, ok := header["alg"].(json.RawMessage); ok {
		_ = json.Unmarshal(raw, &alg)
	}
	var sig []byte
	if alg != "none" {
		if sig, err = f.Sign(alg, h+"."+p, c.Key == "other"); err != nil {
			return "", err
		}
	}
	s := enc.EncodeToString(sig)
	if c.Segment == "signature" {
		switch c.Mutation {
		case "drop":
			return h + "." + p, nil
		case "empty":
			s = ""
		default:
			s = mutate(sig, c.Mutation)
		}
	}
	return h + "." + p + "." + s, nil
}

// segment encodes b, the JSON of segment name, applying c's mutation if
// it is for that segment. A mutation that needs trailing bits (or
// padding) first adds trailing spaces to the JSON until its length is not
// a multiple of three.
func (c Case) segment(name string, b []byte) string {
	if c.Segment != name {
		return enc.EncodeToString(b)
	}
	if c.Mutation == "trailing-bits" || c.Mutation == "padding" {
		for len(b)%3 == 0 {
			b = append(b, ' ')
		}
	}
	return mutate(b, c.Mutation)
}

// mutate encodes b and re-encodes the result by mutation.
func mutate(b []byte, mutation string) string {
	s := enc.EncodeToString(b)
	switch mutation {
	case "trailing-bits":
		if len(b)%3 == 0 {
			panic("jwtcorpus: no trailing bits to set")
		}
		last := strings.IndexByte(alphabet, s[len(s)-1])
		return s[:len(s)-1] + string(alphabet[last|1])
	case "padding":
		return base64.URLEncoding.EncodeToString(b)
	case "line-feed":
		return s[:len(s)/2] + "\n" + s[len(s)/2:]
	case "carriage-return":
		return s[:len(s)/2] + "\r" + s[len(s)/2:]
	case "standard-alphabet":
		out := base64.RawStdEncoding.EncodeToString(b)
		if out == s {
			panic("jwtcorpus: the segment reads the same in both alphabets")
		}
		return out
	}
	panic("jwtcorpus: unknown mutation " + mutation)
}
