package apifabric_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/jwtcorpus"
)

// An AccessToken re-encoded with other unused bits in its signature is
// refused, also once the token itself is cached.
func TestAccessTokenVariantsRefused(t *testing.T) {
	s, _ := newService(t)
	app := createApp(t, s)
	tok := token(t, s, app.AppKey, app.AppSecret)
	if _, err := s.Verify(app.AppKey, "Bearer "+tok); err != nil {
		t.Fatal(err)
	}
	for _, v := range jwtcorpus.Variants(tok) {
		_, err := s.Verify(app.AppKey, "Bearer "+v)
		wantCode(t, err, apierror.AccessTokenInvalid)
	}
}
