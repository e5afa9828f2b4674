package ccmessaging_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/jwtcorpus"
	"github.com/gatehouse/gatehouse/internal/testclock"
)

// A ccmessaging-token re-encoded with other unused bits in its signature
// is refused as invalid, before any look-up of its session.
func TestSessionTokenVariantsRefused(t *testing.T) {
	r := newReplica(t, openStore(t), testclock.New(time.Now()), nil)
	cr, channelID := setup(t, r)
	tok := apply(t, r, cr, channelID, "alice")
	cr.Token = tok
	if _, _, err := r.msg.Verify(context.Background(), cr); err != nil {
		t.Fatal(err)
	}
	for _, v := range jwtcorpus.Variants(tok) {
		cr.Token = v
		_, _, err := r.msg.Verify(context.Background(), cr)
		if ae, ok := apierror.As(err); !ok || ae.Code != apierror.Unauthorized.Code || ae.Detail != "ccmessaging-token is invalid" {
			t.Fatalf("variant: %v, want the token refused as invalid", err)
		}
	}
}
