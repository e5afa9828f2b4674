package ccmessaging

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Credentials are what a protected ccmessaging request presents.
type Credentials struct {
	AppKey        string // x-app-key
	Authorization string // Authorization: Bearer <AccessToken>
	Token         string // ccmessaging-token
	IP            string // client address, for audit
}

// Identity is the verified end user behind a request.
type Identity struct {
	AppKey    string
	ChannelID string
	UserID    string
	UserName  string
	Locale    string
	SessionID string
	// Expires is the exp of the session's current token.
	Expires time.Time
	// SessionExpires is when the session ends unless another request comes.
	SessionExpires time.Time
}

var (
	errNoToken      = apierror.Unauthorized.WithDetail("ccmessaging-token is missing")
	errInvalidToken = apierror.Unauthorized.WithDetail("ccmessaging-token is invalid")
	errDeadToken    = apierror.Unauthorized.WithDetail("ccmessaging-token was superseded")
	errOtherApp     = apierror.Unauthorized.WithDetail("ccmessaging-token belongs to another app")
	// errNoWrite aborts a store update that finds nothing to change.
	errNoWrite = errors.New("no change")
	// errBadRecord is the failure to decode a stored session.
	errBadRecord = errors.New("ccmessaging: unreadable session record")
)

// errEnded is the answer for a token whose session has ended.
func errEnded(why string) error { return apierror.Unauthorized.WithDetail("session ended: " + why) }

// verdict is what a token of a session's generation gen is worth at a time.
type verdict int

const (
	tokenDead       verdict = iota
	tokenValid              // current generation, not expired
	tokenExpired            // current generation, expired: renew it
	tokenSuperseded         // previous generation in its grace: answer the current token
)

func classify(rec *sessionRecord, sid string, gen int64, now time.Time) verdict {
	switch {
	case sid != rec.ID:
		return tokenDead
	case gen == rec.Gen && now.Unix() < rec.Exp:
		return tokenValid
	case gen == rec.Gen:
		return tokenExpired
	case gen == rec.Gen-1 && now.UnixMilli() < rec.PrevUntil:
		return tokenSuperseded
	}
	return tokenDead
}

// Verify checks the three credentials of a protected ccmessaging request:
// the app's AccessToken, and a ccmessaging-token of a live session of that
// app. When the session's current token has expired it is renewed, and
// the new token is returned as renewed; renewed is also set when the
// request carried a token superseded within the grace period. The client
// must use renewed from then on. A request with a valid token touches
// memory only; renewal writes the session once.
func (s *Service) Verify(ctx context.Context, cr Credentials) (id *Identity, renewed string, err error) {
	id, renewed, err = s.verify(ctx, cr)
	if err != nil {
		code := "error"
		if ae, ok := apierror.As(err); ok {
			code = ae.Code
		}
		metrics.TokensVerified.WithLabelValues(metrics.KindCCMessaging, code).Inc()
		return nil, "", err
	}
	ccmVerifiedOK.Inc()
	return id, renewed, nil
}

func (s *Service) verify(ctx context.Context, cr Credentials) (*Identity, string, error) {
	app, err := s.VerifyApp(cr.AppKey, cr.Authorization)
	if err != nil {
		return nil, "", err
	}
	if cr.Token == "" {
		return nil, "", errNoToken
	}
	now := s.opts.Now()
	sess, rec, gen, err := s.find(ctx, cr.Token, now)
	if err != nil {
		return nil, "", err
	}
	if rec.AppKey != app.Key {
		return nil, "", errOtherApp
	}
	ch, err := s.checkLive(sess, &rec, app.Epoch, now.UnixMilli())
	if err != nil {
		return nil, "", err
	}
	sid := rec.ID
	v := classify(&rec, sid, gen, now)
	minted := ""
	if v == tokenExpired {
		if sess, rec, minted, err = s.renew(ctx, sess, &rec, now, cr.IP); err != nil {
			return nil, "", err
		}
		v = classify(&rec, sid, gen, now)
	}
	renewed := ""
	switch v {
	case tokenValid:
	case tokenSuperseded:
		renewed = minted
		if renewed == "" {
			renewed = s.minter.mint(&rec, rec.Gen, rec.Issued, rec.Exp)
		}
	default:
		return nil, "", errDeadToken
	}
	s.sessions.touch(sess, now.UnixMilli())
	return s.identity(&rec, ch, now), renewed, nil
}

// find returns the session a token belongs to and the token's generation.
func (s *Service) find(ctx context.Context, tok string, now time.Time) (*session, sessionRecord, int64, error) {
	h := tokenHash(tok)
	if sess, rec, gen, ok := s.sessions.lookup(h); ok {
		return sess, rec, gen, nil
	}
	return s.findUnknown(ctx, tok, h, now)
}

// findUnknown finds a token, of hash h, that the session table did not
// know a moment ago. The token is looked up in the store only when it is
// validly signed and could belong to a change not yet delivered by the
// change feed (a session opened or renewed on another replica). The feed
// may deliver the token's own record at any time, so mayBeNewer may judge
// a table newer than the one that missed: the token is looked up again in
// the table it judged before being refused.
func (s *Service) findUnknown(ctx context.Context, tok string, h [sha256.Size]byte, now time.Time) (*session, sessionRecord, int64, error) {
	c, ok := s.minter.parse(tok)
	if !ok {
		return nil, sessionRecord{}, 0, errInvalidToken
	}
	if s.mayBeNewer(c, now) {
		it, err := s.st.Get(ctx, sessionKey(c.Channel, c.User))
		if errors.Is(err, store.ErrNotFound) {
			return nil, sessionRecord{}, 0, errEnded("no such session")
		}
		if err != nil {
			return nil, sessionRecord{}, 0, apierror.FromStore(err)
		}
		if err := waitFor(ctx, s.sessFeed, it.Revision); err != nil {
			return nil, sessionRecord{}, 0, err
		}
	}
	if sess, rec, gen, ok := s.sessions.resolve(c, h); ok {
		return sess, rec, gen, nil
	}
	return nil, sessionRecord{}, 0, errDeadToken
}

// mayBeNewer reports whether a validly signed token unknown to the session
// table could belong to a session state this replica has not seen yet.
func (s *Service) mayBeNewer(c *claims, now time.Time) bool {
	if now.Sub(c.IssuedAt.Time) >= s.opts.SessionMax {
		return false // its session has reached its maximum lifetime
	}
	sess := s.sessions.get(c.Channel, c.User)
	if sess == nil {
		return true
	}
	local := sess.record()
	if local.ID == c.Session {
		return c.Gen > local.Gen
	}
	return c.IssuedAt.Unix() >= local.Created/1000
}

// checkLive returns the channel of sess, whose record is rec, or why the
// session has ended. appEpoch is the current epoch of the session's app.
func (s *Service) checkLive(sess *session, rec *sessionRecord, appEpoch, nowMs int64) (*channel, error) {
	ch, ok := s.channels.Get(rec.Channel)
	if !ok || ch.rec.UID != rec.ChannelUID {
		return nil, errEnded("channel deleted")
	}
	switch grant, open := ch.grant(rec.AppKey); {
	case !open || grant != rec.Grant:
		return nil, errEnded("channel no longer open to the app")
	case appEpoch != rec.AppEpoch:
		return nil, errEnded("app deactivated")
	case nowMs >= rec.MaxEnd:
		return nil, errEnded("maximum lifetime reached")
	case nowMs-sess.lastActivity(rec) >= ch.idle.Milliseconds():
		return nil, errEnded("idle timeout")
	}
	return ch, nil
}

func (s *Service) identity(r *sessionRecord, ch *channel, now time.Time) *Identity {
	return &Identity{
		AppKey: r.AppKey, ChannelID: r.Channel, UserID: r.User, UserName: r.UserName, Locale: r.Locale, SessionID: r.ID,
		Expires:        time.Unix(r.Exp, 0),
		SessionExpires: time.UnixMilli(min(now.Add(ch.idle).UnixMilli(), r.MaxEnd)),
	}
}

// renew starts the next token generation of old's session, of record rec,
// whose current token has expired, and returns the session as it is
// afterwards, its record, and its current token when it is the one this
// renewal minted ("" otherwise). Requests on this replica renew one at a
// time; the first writes and the others find its result in the session
// table. Across replicas the store decides: the update writes only if the
// record still holds old's generation, and otherwise the session is taken
// as the store has it (renewed by another replica, replaced or ended).
// The new token is minted once, before the write, and its hash handed
// over to the session table, which indexes it without minting it again.
func (s *Service) renew(ctx context.Context, old *session, rec *sessionRecord, now time.Time, ip string) (*session, sessionRecord, string, error) {
	key := sessionKey(rec.Channel, rec.User)
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if cur := s.sessions.get(rec.Channel, rec.User); cur != nil && cur != old {
		if c := cur.record(); c.ID != rec.ID || c.Gen != rec.Gen {
			return cur, c, "", nil
		}
	}
	next := knownToken{id: rec.ID, gen: rec.Gen + 1}
	next.iat, next.exp = s.tokenTimes(now)
	tok := s.minter.mint(rec, next.gen, next.iat, next.exp)
	next.hash = tokenHash(tok)
	k := tableKey(rec.Channel, rec.User)
	s.sessions.handOver(k, next)
	defer s.sessions.withdraw(k)
	var seen int64              // revision of the record found, when nothing was written
	sid, gen := rec.ID, rec.Gen // not rec itself: the callback would move it to the heap
	iat, exp := next.iat, next.exp
	it, err := s.st.Update(ctx, key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, errEnded("no such session")
		}
		stored, ok := decodeSession(string(cur.Value))
		if !ok {
			return nil, errBadRecord
		}
		if stored.ID != sid || stored.Gen != gen || now.Unix() < stored.Exp {
			seen = cur.Revision
			return nil, errNoWrite
		}
		s.nextGeneration(&stored, iat, exp, now, old.last.Load())
		return &store.Item{Value: encodeSession(&stored), Expires: s.storeExpiry(&stored)}, nil
	})
	rev := it.Revision
	switch {
	case errors.Is(err, errNoWrite):
		rev = seen
	case err != nil:
		return nil, sessionRecord{}, "", apierror.FromStore(err)
	default:
		ccmRenewed.Inc()
		// Renewal happens inside verification: its record does not wait for the store.
		s.audit.RecordAsync(audit.Record{Actor: rec.AppKey, IP: ip, Action: "session.renew",
			Target: rec.Channel + "/" + rec.User, Outcome: audit.Success})
	}
	if err := waitFor(ctx, s.sessFeed, rev); err != nil {
		return nil, sessionRecord{}, "", err
	}
	cur := s.sessions.get(rec.Channel, rec.User)
	if cur == nil {
		return nil, sessionRecord{}, "", errEnded("no such session")
	}
	c := cur.record()
	if !next.is(c.ID, c.Gen, c.Issued, c.Exp) {
		tok = ""
	}
	return cur, c, tok, nil
}

// nextGeneration turns rec's current token into the previous one, valid
// for the renewal grace, and makes the next generation, issued at iat and
// expiring at exp (unix s), the current one. It also records the latest
// activity seen here, saving a separate write.
func (s *Service) nextGeneration(rec *sessionRecord, iat, exp int64, now time.Time, seen int64) {
	rec.PrevIssued, rec.PrevExp = rec.Issued, rec.Exp
	rec.PrevUntil = now.Add(s.opts.RenewGrace).UnixMilli()
	rec.Gen++
	rec.Issued, rec.Exp = iat, exp
	rec.LastActivity = max(rec.LastActivity, seen, now.UnixMilli())
}

// EndSession ends the session of a verified request at the user's wish.
func (s *Service) EndSession(ctx context.Context, id *Identity, ip string) error {
	err := s.deleteSession(ctx, sessionKey(id.ChannelID, id.UserID), id.SessionID, "user")
	r := audit.Record{Actor: id.AppKey, IP: ip, Action: "session.end", Target: id.ChannelID + "/" + id.UserID, Outcome: audit.Success, Detail: "ended by the client"}
	if err != nil {
		r.Outcome = audit.Failure
	}
	s.audit.Record(r)
	return err
}

var errSessionNotFound = apierror.NotFound.WithDetail("session not found")

// deleteSession deletes the session under key (only if its ID is sid,
// when sid is set) and waits until the session table reflects it.
func (s *Service) deleteSession(ctx context.Context, key, sid, reason string) error {
	it, err := s.st.Update(ctx, key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, errSessionNotFound
		}
		if rec, ok := decodeSession(string(cur.Value)); sid != "" && (!ok || rec.ID != sid) {
			return nil, errSessionNotFound
		}
		return nil, nil
	})
	if err != nil {
		return apierror.FromStore(err)
	}
	metrics.TokensRevoked.WithLabelValues(metrics.KindCCMessaging, reason).Inc()
	return waitFor(ctx, s.sessFeed, it.Revision)
}
