package apifabric

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"hash"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/freetext"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
)

const appPrefix = "apps/"

// App statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Limits of the app API.
const (
	MaxNameLen        = 64
	MaxDescriptionLen = 256
	// MaxGraceSeconds bounds how long a rotated-out secret keeps working.
	MaxGraceSeconds = 86400
	// secretBytes is the entropy of a generated app secret.
	secretBytes = 32
)

// App is an app as the API shows it. It never carries a secret or hash.
type App struct {
	AppKey      string `json:"appKey"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	CreateTime  string `json:"createTime"`
	UpdateTime  string `json:"updateTime"`
}

// CreatedApp is the answer to an app creation: the app and its secret,
// which is shown this once.
type CreatedApp struct {
	App
	AppSecret string `json:"appSecret"`
}

// Secret is the answer to a secret rotation.
type Secret struct {
	AppKey    string `json:"appKey"`
	AppSecret string `json:"appSecret"`
}

// CreateAppRequest is the body of POST /v4/apps.
type CreateAppRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// UpdateAppRequest is the body of PUT /v4/apps/{appKey}. Nil fields are
// left alone; at least one must be set.
type UpdateAppRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Status      *string `json:"status"`
}

// RotateSecretRequest is the body of POST /v4/apps/{appKey}/secret.
// GraceSeconds (0..86400, default 0) is how long the old secret, and the
// AccessTokens obtained with it, keep working.
type RotateSecretRequest struct {
	GraceSeconds int `json:"graceSeconds"`
}

// appRecord is the stored form of an app.
//
// Generation numbers the AccessTokens an app can hold: a token carries
// the generation it was issued in and is valid while that generation is
// current, or is the one before it and PrevUntil has not passed. Rotating
// the secret and deactivating the app both start a new generation; only
// rotation keeps the previous one alive for a grace period.
//
// Epoch counts the app's deactivations. ccmessaging sessions record the
// epoch they were opened in and end when it changes, so reactivating an
// app does not revive them. Rotation leaves it alone: a session is of no
// use without an AccessToken, which only the new secret gets.
type appRecord struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Status      string `json:"status"`
	SecretHash  []byte `json:"secretHash"`
	Generation  int64  `json:"generation"`
	Epoch       int64  `json:"epoch,omitempty"`
	// PrevHash is the rotated-out secret, valid (with the tokens of
	// generation Generation-1) before PrevUntil, in unix milliseconds.
	PrevHash   []byte `json:"prevHash,omitempty"`
	PrevUntil  int64  `json:"prevUntil,omitempty"`
	CreateTime int64  `json:"createTime"`
	UpdateTime int64  `json:"updateTime"`
}

func (r *appRecord) public() App {
	return App{
		AppKey: r.Key, Name: r.Name, Description: r.Description, Status: r.Status,
		CreateTime: strconv.FormatInt(r.CreateTime, 10),
		UpdateTime: strconv.FormatInt(r.UpdateTime, 10),
	}
}

// prevLive reports whether the previous secret and generation still work.
func (r *appRecord) prevLive(now time.Time) bool {
	return r.PrevHash != nil && now.UnixMilli() < r.PrevUntil
}

// generationLive reports whether tokens of generation gen are still valid.
func (r *appRecord) generationLive(gen int64, now time.Time) bool {
	return gen == r.Generation || (gen == r.Generation-1 && r.prevLive(now))
}

// matchSecret returns the generation whose secret has hash h. Both
// secrets are always compared, in constant time.
func (r *appRecord) matchSecret(h []byte, now time.Time) (int64, bool) {
	cur := hmac.Equal(h, r.SecretHash)
	prev := hmac.Equal(h, r.PrevHash) && r.prevLive(now)
	switch {
	case cur:
		return r.Generation, true
	case prev:
		return r.Generation - 1, true
	}
	return 0, false
}

// sortedApps returns every app ordered by name, then key.
func sortedApps(t *store.Table[appRecord]) []*appRecord {
	out := t.Values()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func validStatus(s string) bool { return s == StatusActive || s == StatusInactive }

// newSecret returns a fresh app secret: 256 random bits, base64url
// without padding.
func newSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is the stored form of a secret: HMAC-SHA-256 under the
// shared server key. Secrets are high-entropy, so a keyed fast hash is
// enough and keeps tokenByAkSk cheap.
func (s *Service) hashSecret(secret string) []byte {
	m := s.hashers.Get().(hash.Hash)
	defer s.hashers.Put(m)
	m.Reset()
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// AppExists reports whether an app with key exists, active or not.
func (s *Service) AppExists(key string) bool {
	_, ok := s.apps.Get(key)
	return ok
}

// SessionEpoch returns the epoch of an active app: sessions of the app
// opened in another epoch have ended. It reports false for an inactive or
// deleted app, whose sessions have all ended. It touches memory only.
func (s *Service) SessionEpoch(key string) (int64, bool) {
	rec, ok := s.apps.Get(key)
	if !ok || rec.Status != StatusActive {
		return 0, false
	}
	return rec.Epoch, true
}

// ListApps returns every app, ordered by name.
func (s *Service) ListApps() []App {
	recs := sortedApps(s.apps)
	out := make([]App, len(recs))
	for i, r := range recs {
		out[i] = r.public()
	}
	return out
}

// GetApp returns one app.
func (s *Service) GetApp(key string) (App, error) {
	rec, ok := s.apps.Get(key)
	if !ok {
		return App{}, errAppNotFound
	}
	return rec.public(), nil
}

var errAppNotFound = apierror.NotFound.WithDetail("app not found")

// CreateApp creates an active app and returns it with its secret.
func (s *Service) CreateApp(ctx context.Context, c authz.Caller, req CreateAppRequest) (*CreatedApp, error) {
	out, err := s.createApp(ctx, req)
	target := req.Name
	if out != nil {
		target = out.AppKey
	}
	s.audit.Change(c.Account, c.IP, "app.create", target, err)
	return out, err
}

func (s *Service) createApp(ctx context.Context, req CreateAppRequest) (*CreatedApp, error) {
	if !freetext.Valid(req.Name, 1, MaxNameLen) {
		return nil, apierror.InvalidParams.Detailf("name must be 1 to %d characters without control characters", MaxNameLen)
	}
	if !freetext.Valid(req.Description, 0, MaxDescriptionLen) {
		return nil, apierror.InvalidParams.Detailf("description must be at most %d characters without control characters", MaxDescriptionLen)
	}
	secret := newSecret()
	now := s.opts.Now().Unix()
	rec := &appRecord{Key: uuid.NewString(), Name: req.Name, Description: req.Description, Status: StatusActive,
		SecretHash: s.hashSecret(secret), Generation: 1, CreateTime: now, UpdateTime: now}
	it, err := s.st.Create(ctx, store.Item{Key: appPrefix + rec.Key, Value: store.EncodeJSON(rec)})
	if err != nil {
		return nil, apierror.FromStore(err)
	}
	if err := s.sync(ctx, it.Revision); err != nil {
		return nil, err
	}
	return &CreatedApp{App: rec.public(), AppSecret: secret}, nil
}

// UpdateApp changes an app's name, description or status. Deactivation
// invalidates every AccessToken of the app and starts a new epoch, ending
// its ccmessaging sessions, also after a later reactivation.
func (s *Service) UpdateApp(ctx context.Context, c authz.Caller, key string, req UpdateAppRequest) (App, error) {
	rec, err := s.updateApp(ctx, key, req)
	s.audit.Change(c.Account, c.IP, "app.update", key, err)
	if err != nil {
		return App{}, err
	}
	return rec.public(), nil
}

func (s *Service) updateApp(ctx context.Context, key string, req UpdateAppRequest) (*appRecord, error) {
	switch {
	case req.Name == nil && req.Description == nil && req.Status == nil:
		return nil, apierror.InvalidParams.WithDetail("name, description or status is required")
	case req.Name != nil && !freetext.Valid(*req.Name, 1, MaxNameLen):
		return nil, apierror.InvalidParams.Detailf("name must be 1 to %d characters without control characters", MaxNameLen)
	case req.Description != nil && !freetext.Valid(*req.Description, 0, MaxDescriptionLen):
		return nil, apierror.InvalidParams.Detailf("description must be at most %d characters without control characters", MaxDescriptionLen)
	case req.Status != nil && !validStatus(*req.Status):
		return nil, apierror.InvalidParams.WithDetail("status must be active or inactive")
	}
	deactivated := false
	rec, err := s.update(ctx, key, func(r *appRecord) {
		if req.Name != nil {
			r.Name = *req.Name
		}
		if req.Description != nil {
			r.Description = *req.Description
		}
		deactivated = req.Status != nil && *req.Status == StatusInactive && r.Status == StatusActive
		if deactivated {
			r.Generation++
			r.Epoch++
			r.PrevHash, r.PrevUntil = nil, 0
		}
		if req.Status != nil {
			r.Status = *req.Status
		}
	})
	if err == nil && deactivated {
		metrics.TokensRevoked.WithLabelValues(metrics.KindAccess, "app-deactivate").Inc()
	}
	return rec, err
}

// DeleteApp deletes an app; its AccessTokens stop working at once.
func (s *Service) DeleteApp(ctx context.Context, c authz.Caller, key string) error {
	err := s.deleteApp(ctx, key)
	s.audit.Change(c.Account, c.IP, "app.delete", key, err)
	return err
}

func (s *Service) deleteApp(ctx context.Context, key string) error {
	it, err := s.st.Update(ctx, appPrefix+key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, errAppNotFound
		}
		return nil, nil
	})
	if err != nil {
		return apierror.FromStore(err)
	}
	metrics.TokensRevoked.WithLabelValues(metrics.KindAccess, "app-delete").Inc()
	return s.sync(ctx, it.Revision)
}

// RotateSecret gives an app a new secret. The old secret, and the
// AccessTokens obtained with it, keep working for req.GraceSeconds; any
// secret older than that stops at once.
func (s *Service) RotateSecret(ctx context.Context, c authz.Caller, key string, req RotateSecretRequest) (*Secret, error) {
	out, err := s.rotateSecret(ctx, key, req)
	s.audit.Change(c.Account, c.IP, "app.secret.rotate", key, err)
	return out, err
}

func (s *Service) rotateSecret(ctx context.Context, key string, req RotateSecretRequest) (*Secret, error) {
	if req.GraceSeconds < 0 || req.GraceSeconds > MaxGraceSeconds {
		return nil, apierror.InvalidParams.Detailf("graceSeconds must be between 0 and %d", MaxGraceSeconds)
	}
	secret := newSecret()
	hash := s.hashSecret(secret)
	until := s.opts.Now().Add(time.Duration(req.GraceSeconds) * time.Second).UnixMilli()
	if _, err := s.update(ctx, key, func(r *appRecord) {
		r.PrevHash, r.PrevUntil = r.SecretHash, until
		if req.GraceSeconds == 0 {
			r.PrevHash, r.PrevUntil = nil, 0
		}
		r.SecretHash = hash
		r.Generation++
	}); err != nil {
		return nil, err
	}
	metrics.TokensRevoked.WithLabelValues(metrics.KindAccess, "secret-rotate").Inc()
	return &Secret{AppKey: key, AppSecret: secret}, nil
}

// update applies fn to the stored app atomically, stamps its update time
// and waits until the local table reflects the result.
func (s *Service) update(ctx context.Context, key string, fn func(*appRecord)) (*appRecord, error) {
	var out appRecord
	now := s.opts.Now().Unix()
	it, err := s.st.Update(ctx, appPrefix+key, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, errAppNotFound
		}
		var rec appRecord
		if err := json.Unmarshal(cur.Value, &rec); err != nil {
			return nil, err
		}
		fn(&rec)
		rec.UpdateTime = now
		out = rec
		return &store.Item{Value: store.EncodeJSON(&rec)}, nil
	})
	if err != nil {
		return nil, apierror.FromStore(err)
	}
	return &out, s.sync(ctx, it.Revision)
}
