package verifier

import (
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkRevocationCheck is what the revocation feed adds to a
// verification: the lookups of the token id and the account, here among
// 100 000 revoked ids and 10 000 accounts.
func BenchmarkRevocationCheck(b *testing.B) {
	rv := &revocations{tokens: map[string]int64{}, accounts: map[string]accountRevocation{}}
	exp := time.Now().Add(time.Hour).Unix()
	for i := range 100000 {
		rv.tokens[fmt.Sprintf("jti-%d", i)] = exp
	}
	for i := range 10000 {
		name := fmt.Sprintf("account-%d", i)
		rv.accounts[name] = accountRevocation{Account: name, ID: "id-" + name, RevokedBefore: 1000}
	}
	c := &claims{Account: "account-42", RegisteredClaims: jwt.RegisteredClaims{ID: "not-revoked"}}
	c.Cred = &struct {
		ID      string `json:"id"`
		Version int64  `json:"ver"`
	}{"id-account-42", 1000}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := rv.check(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
