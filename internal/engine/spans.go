package engine

import (
	"context"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// hashPassword is the hasher's Hash in a password.hash span of ctx's
// trace (none when tracing is off).
func (e *Engine) hashPassword(ctx context.Context, pw string) (string, error) {
	_, span := telemetry.Start(ctx, telemetry.SpanPasswordHash)
	defer span.End()
	return e.hasher.Hash(pw)
}

// verifyPassword is the hasher's Verify in a password.verify span.
func (e *Engine) verifyPassword(ctx context.Context, pw, encoded string) (ok, rehash bool, err error) {
	_, span := telemetry.Start(ctx, telemetry.SpanPasswordVerify)
	defer span.End()
	return e.hasher.Verify(pw, encoded)
}

// verifyDummy is the hasher's VerifyDummy in a password.verify span, the
// same span a real verification has.
func (e *Engine) verifyDummy(ctx context.Context, pw string) {
	_, span := telemetry.Start(ctx, telemetry.SpanPasswordVerify)
	defer span.End()
	e.hasher.VerifyDummy(pw)
}
