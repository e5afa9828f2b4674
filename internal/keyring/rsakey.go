package keyring

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// PEM block types accepted for import and written to the store.
const (
	pemPKCS1 = "RSA PRIVATE KEY"
	pemPKCS8 = "PRIVATE KEY"
)

// checkBits reports whether bits is an RSA modulus size the ring accepts.
func checkBits(bits int) error {
	switch bits {
	case 2048, 3072, 4096:
		return nil
	}
	return fmt.Errorf("keyring: RSA key size %d bits not allowed (2048, 3072 or 4096)", bits)
}

// generateKey makes a fresh RSA key of the given size.
func generateKey(bits int) (*rsa.PrivateKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("keyring: generate RSA key: %w", err)
	}
	return priv, nil
}

// parsePrivateKeyPEM decodes the first PEM block of data, which must be a
// PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY") RSA private key of
// an allowed size.
func parsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("keyring: private key: no PEM block found")
	}
	var priv *rsa.PrivateKey
	switch block.Type {
	case pemPKCS1:
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keyring: private key: %w", err)
		}
		priv = key
	case pemPKCS8:
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keyring: private key: %w", err)
		}
		rsaKey, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("keyring: private key: %T is not an RSA key", key)
		}
		priv = rsaKey
	default:
		return nil, fmt.Errorf("keyring: private key: PEM block %q is neither %q nor %q", block.Type, pemPKCS1, pemPKCS8)
	}
	if err := checkBits(priv.N.BitLen()); err != nil {
		return nil, err
	}
	return priv, nil
}

// encodePrivateKeyPEM returns priv as a PKCS#8 PEM block.
func encodePrivateKeyPEM(priv *rsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("keyring: encode private key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der})), nil
}

// keyID returns the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of pub.
func keyID(pub *rsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keyring: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
