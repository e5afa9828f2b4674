package keyring

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// SecretSize is the length in bytes of a shared secret.
const SecretSize = 32

// SharedSecret returns the server secret called name, shared by every
// replica: 32 random bytes stored once under "secrets/<name>". The first
// caller creates it; everyone else, including replicas racing to create
// it, reads that value. Like the key ring, it is stored in clear and is
// only as safe as the store.
func SharedSecret(ctx context.Context, st store.Store, name string) ([]byte, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("keyring: invalid secret name %q", name)
	}
	key := "secrets/" + name
	secret := make([]byte, SecretSize)
	rand.Read(secret) // never fails: crypto/rand crashes the program instead
	_, err := st.Create(ctx, store.Item{Key: key, Value: secret})
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("keyring: create %s: %w", key, err)
	}
	return LookupSharedSecret(ctx, st, name)
}

// LookupSharedSecret returns the shared secret called name if it exists,
// else an error wrapping store.ErrNotFound. Unlike SharedSecret it never
// writes.
func LookupSharedSecret(ctx context.Context, st store.Store, name string) ([]byte, error) {
	key := "secrets/" + name
	it, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("keyring: read %s: %w", key, err)
	}
	if len(it.Value) != SecretSize {
		return nil, fmt.Errorf("keyring: %s holds %d bytes, want %d", key, len(it.Value), SecretSize)
	}
	return it.Value, nil
}
