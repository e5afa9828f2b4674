package ccmessaging

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/freetext"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Limits of applyToken's fields.
const (
	MaxUserIDLen   = 32
	MaxUserNameLen = 128
)

// ApplyRequest is the body of POST /apiaccess/ccmessaging/applyToken.
type ApplyRequest struct {
	UserID    string `json:"userId"`
	UserName  string `json:"userName"`
	ChannelID string `json:"channelId"`
	Locale    string `json:"locale"`
}

var (
	ccmIssued        = metrics.TokensIssued.WithLabelValues(metrics.KindCCMessaging)
	ccmRenewed       = metrics.TokensRenewed.WithLabelValues(metrics.KindCCMessaging)
	ccmVerifiedOK    = metrics.TokensVerified.WithLabelValues(metrics.KindCCMessaging, "ok")
	ccmRevokedSupers = metrics.TokensRevoked.WithLabelValues(metrics.KindCCMessaging, "superseded")
)

func (r *ApplyRequest) validate() error {
	switch {
	case !freetext.Valid(r.UserID, 1, MaxUserIDLen):
		return apierror.InvalidParams.Detailf("userId must be 1 to %d characters without control characters", MaxUserIDLen)
	case !freetext.Valid(r.UserName, 1, MaxUserNameLen):
		return apierror.InvalidParams.Detailf("userName must be 1 to %d characters without control characters", MaxUserNameLen)
	case r.ChannelID == "":
		return apierror.InvalidParams.WithDetail("channelId is required")
	case !ValidLocale(r.Locale):
		return apierror.InvalidParams.WithDetail("locale must be an ISO 639-1 language code, optionally with a region (zh, en_US)")
	}
	return nil
}

// ApplyToken opens the session of (req.ChannelID, req.UserID) for the
// verified app and returns its ccmessaging-token. Any earlier session of
// the same user on the channel ends: its tokens stop working at once.
func (s *Service) ApplyToken(ctx context.Context, app App, req ApplyRequest, ip string) (string, error) {
	tok, err := s.applyToken(ctx, app, req)
	r := audit.Record{Actor: app.Key, IP: ip, Action: "session.start", Target: req.ChannelID + "/" + req.UserID, Outcome: audit.Success}
	if err != nil {
		r.Outcome, r.Detail = audit.Failure, "internal error"
		if ae, ok := apierror.As(err); ok {
			r.Detail = ae.Code + " " + ae.Message
		}
	}
	s.audit.Record(r)
	return tok, err
}

func (s *Service) applyToken(ctx context.Context, app App, req ApplyRequest) (string, error) {
	if err := req.validate(); err != nil {
		return "", err
	}
	ch, ok := s.channels.Get(req.ChannelID)
	if !ok {
		return "", apierror.InvalidParams.WithDetail("channel not found")
	}
	grant, ok := ch.grant(app.Key)
	if !ok {
		return "", apierror.InvalidParams.WithDetail("channel is not open to this app")
	}
	now := s.opts.Now()
	iat, exp := s.tokenTimes(now)
	rec := sessionRecord{
		ID: uuid.NewString(), Channel: ch.rec.ID, ChannelUID: ch.rec.UID,
		User: req.UserID, UserName: req.UserName, Locale: req.Locale, AppKey: app.Key, AppEpoch: app.Epoch, Grant: grant,
		Gen: 1, Issued: iat, Exp: exp,
		Created: now.UnixMilli(), LastActivity: now.UnixMilli(), MaxEnd: now.Add(s.opts.SessionMax).UnixMilli(),
	}
	key := sessionKey(rec.Channel, rec.User)
	earlier := s.sessions.get(rec.Channel, rec.User)
	it, err := s.st.Put(ctx, store.Item{Key: key, Value: encodeSession(&rec), Expires: s.storeExpiry(&rec)})
	if err != nil {
		return "", apierror.FromStore(err)
	}
	if err := waitFor(ctx, s.sessFeed, it.Revision); err != nil {
		return "", err
	}
	if earlier != nil {
		ccmRevokedSupers.Inc()
	}
	ccmIssued.Inc()
	_, span := telemetry.Start(ctx, telemetry.SpanTokenSign)
	defer span.End()
	return s.minter.mint(&rec, rec.Gen, rec.Issued, rec.Exp), nil
}

// tokenTimes returns iat and exp (unix s) of a token issued at now. exp is
// rounded up, so a token lives at least the configured TTL.
func (s *Service) tokenTimes(now time.Time) (int64, int64) {
	end := now.Add(s.opts.TokenTTL)
	exp := end.Unix()
	if end.After(time.Unix(exp, 0)) {
		exp++
	}
	return now.Unix(), exp
}

// storeExpiry is when the store may drop a session record: at the
// session's maximum end, or once it has idled past the channel's timeout
// plus two flush intervals (so a last-activity time still held in memory
// is written before). Idleness itself is enforced from memory.
func (s *Service) storeExpiry(rec *sessionRecord) time.Time {
	var idle time.Duration
	if ch, ok := s.channels.Get(rec.Channel); ok {
		idle = ch.idle
	}
	end := min(rec.LastActivity+(idle+2*s.opts.FlushInterval).Milliseconds(), rec.MaxEnd)
	return time.UnixMilli(end)
}

// VerifyApp checks the AccessToken an applyToken request carries for
// appKey and returns the app to open the session for.
func (s *Service) VerifyApp(appKey, authorization string) (App, error) {
	epoch, err := s.apps.AccessEpoch(appKey, authorization)
	if err != nil {
		return App{}, err
	}
	return App{Key: appKey, Epoch: epoch}, nil
}
