package keyring

import (
	"bytes"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
)

func TestSharedSecret(t *testing.T) {
	st := newStore(t)
	first, err := SharedSecret(t.Context(), st, "apps")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != SecretSize || bytes.Equal(first, make([]byte, SecretSize)) {
		t.Fatalf("secret = %x", first)
	}
	again, err := SharedSecret(t.Context(), st, "apps")
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("second call = %x, %v; want %x", again, err, first)
	}
	other, err := SharedSecret(t.Context(), st, "sessions")
	if err != nil || bytes.Equal(other, first) {
		t.Fatalf("another name gave %x, %v", other, err)
	}
}

func TestSharedSecretConcurrentCreate(t *testing.T) {
	st := newStore(t)
	secrets := make([][]byte, 4)
	var wg sync.WaitGroup
	for i := range secrets {
		wg.Go(func() {
			s, err := SharedSecret(t.Context(), st, "race")
			if err != nil {
				t.Error(err)
			}
			secrets[i] = s
		})
	}
	wg.Wait()
	for i, s := range secrets {
		if !bytes.Equal(s, secrets[0]) {
			t.Fatalf("caller %d got %x, caller 0 got %x", i, s, secrets[0])
		}
	}
}

func TestSharedSecretRejects(t *testing.T) {
	st := newStore(t)
	if _, err := st.Put(t.Context(), store.Item{Key: "secrets/short", Value: []byte("abc")}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a/b", "short"} {
		if s, err := SharedSecret(t.Context(), st, name); err == nil {
			t.Errorf("SharedSecret(%q) = %x, want an error", name, s)
		}
	}
}
