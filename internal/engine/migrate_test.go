package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// TestLegacyHashesRehashedOnLogin stores accounts whose hashes are in
// Service Center's scrypt format and in bcrypt, as after a migration from
// SC, and checks that they log in and are re-hashed to argon2id.
func TestLegacyHashesRehashedOnLogin(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	const pw = "Legacy-Passw0rd!"
	salt := []byte("8bytes!!")
	dk, err := scrypt.Key([]byte(pw), salt, 1024, 8, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for name, hash := range map[string]string{
		"fromscrypt": fmt.Sprintf("%d$%d$%d$%x$%x", 1024, 8, 1, salt, dk),
		"frombcrypt": string(bc), // $2a$
	} {
		t.Run(name, func(t *testing.T) {
			e.mkAccount(t, name, "Initial-Passw0rd!")
			if _, err := e.updateAccount(bg, name, func(r *accountRecord) error {
				r.PasswordHash = hash
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Login(bg, LoginRequest{Name: name, Password: "Wrong-Passw0rd!"}, "10.0.0.1"); err == nil {
				t.Fatal("wrong password accepted against a legacy hash")
			}
			e.login(t, name, pw)
			it, err := e.st.Get(bg, accountPrefix+name)
			if err != nil {
				t.Fatal(err)
			}
			var rec accountRecord
			if err := json.Unmarshal(it.Value, &rec); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(rec.PasswordHash, "$argon2id$") {
				t.Fatalf("hash after login %q, want argon2id", rec.PasswordHash[:min(12, len(rec.PasswordHash))])
			}
			e.login(t, name, pw) // and the new hash verifies
		})
	}
}
