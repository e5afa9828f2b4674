package ccmessaging

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/apierror"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/freetext"
	"github.com/gatehouse/gatehouse/internal/store"
)

const channelPrefix = "channels/"

// Limits of the channel API.
const (
	MaxChannelIDLen    = 32
	MaxChannelNameLen  = 64
	MaxAppKeys         = 100
	DefaultIdleTimeout = "30m"
	// MinIdleTimeout and MaxIdleTimeout bound sessionIdleTimeout.
	MinIdleTimeout = time.Second
	MaxIdleTimeout = 24 * time.Hour
)

// Channel is a channel configuration as the API shows it.
type Channel struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	AppKeys            []string `json:"appKeys"`
	SessionIdleTimeout string   `json:"sessionIdleTimeout"`
	CreateTime         string   `json:"createTime"`
	UpdateTime         string   `json:"updateTime"`
}

// ChannelRequest is the body of POST /v4/channels. ID is generated when
// empty; SessionIdleTimeout defaults to 30m.
type ChannelRequest struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	AppKeys            []string `json:"appKeys"`
	SessionIdleTimeout string   `json:"sessionIdleTimeout"`
}

// UpdateChannelRequest is the body of PUT /v4/channels/{id}. Nil fields
// are left alone; at least one must be set. An empty AppKeys list closes
// the channel to every app.
type UpdateChannelRequest struct {
	Name               *string   `json:"name"`
	AppKeys            *[]string `json:"appKeys"`
	SessionIdleTimeout *string   `json:"sessionIdleTimeout"`
}

// channelRecord is the stored form of a channel. UID is unique to this
// incarnation of the channel: sessions record it, so deleting a channel
// and creating another with the same ID does not revive old sessions.
//
// Grants number the openings of the channel to the apps in AppKeys: an
// app added to the list gets the next number of GrantSeq and keeps it
// while it stays listed. Sessions record the grant they were opened
// under, so removing an app and adding it again does not revive its old
// sessions. An app listed before grants were recorded has grant 0.
type channelRecord struct {
	ID                 string           `json:"id"`
	UID                string           `json:"uid"`
	Name               string           `json:"name"`
	AppKeys            []string         `json:"appKeys"`
	Grants             map[string]int64 `json:"grants,omitempty"`
	GrantSeq           int64            `json:"grantSeq,omitempty"`
	SessionIdleTimeout string           `json:"sessionIdleTimeout"`
	CreateTime         int64            `json:"createTime"`
	UpdateTime         int64            `json:"updateTime"`
}

// setAppKeys makes keys the channel's apps: those already listed keep
// their grant, the others get a new one.
func (r *channelRecord) setAppKeys(keys []string) {
	grants := make(map[string]int64, len(keys))
	for _, k := range keys {
		switch g, ok := r.Grants[k]; {
		case ok:
			grants[k] = g
		case slices.Contains(r.AppKeys, k): // listed before grants were recorded: grant 0
		default:
			r.GrantSeq++
			grants[k] = r.GrantSeq
		}
	}
	r.AppKeys, r.Grants = keys, grants
}

func (r *channelRecord) public() Channel {
	return Channel{
		ID: r.ID, Name: r.Name, AppKeys: append([]string{}, r.AppKeys...),
		SessionIdleTimeout: r.SessionIdleTimeout,
		CreateTime:         strconv.FormatInt(r.CreateTime, 10),
		UpdateTime:         strconv.FormatInt(r.UpdateTime, 10),
	}
}

// channel is a loaded channel: its record and its parsed idle timeout.
type channel struct {
	rec  channelRecord
	idle time.Duration
}

// grant returns the channel's grant to app, and false if the channel is
// not open to app.
func (c *channel) grant(app string) (int64, bool) {
	if !slices.Contains(c.rec.AppKeys, app) {
		return 0, false
	}
	return c.rec.Grants[app], true
}

func decodeChannel(it store.Item) (*channel, bool) {
	c := new(channel)
	if json.Unmarshal(it.Value, &c.rec) != nil {
		return nil, false
	}
	d, err := time.ParseDuration(c.rec.SessionIdleTimeout)
	if err != nil {
		return nil, false
	}
	c.idle = d
	return c, true
}

// sortedChannels returns every channel ordered by ID.
func sortedChannels(t *store.Table[channel]) []*channel {
	out := t.Values()
	sort.Slice(out, func(i, j int) bool { return out[i].rec.ID < out[j].rec.ID })
	return out
}

var errChannelNotFound = apierror.NotFound.WithDetail("channel not found")

// validChannelID reports whether id is 1 to 32 digits.
func validChannelID(id string) bool {
	if id == "" || len(id) > MaxChannelIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// newChannelID returns a random 18-digit ID.
func newChannelID() string {
	n, err := rand.Int(rand.Reader, big.NewInt(9e17))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return strconv.FormatInt(n.Int64()+1e17, 10)
}

func validateName(name string) error {
	if !freetext.Valid(name, 1, MaxChannelNameLen) {
		return apierror.InvalidParams.Detailf("name must be 1 to %d characters without control characters", MaxChannelNameLen)
	}
	return nil
}

func validateIdle(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < MinIdleTimeout || d > MaxIdleTimeout {
		return apierror.InvalidParams.Detailf("sessionIdleTimeout must be a duration between %s and %s", MinIdleTimeout, "24h")
	}
	return nil
}

// checkAppKeys validates a channel's app list: at most 100 keys, each of
// an existing app. It returns the list without duplicates.
func (s *Service) checkAppKeys(keys []string) ([]string, error) {
	if len(keys) > MaxAppKeys {
		return nil, apierror.InvalidParams.Detailf("a channel lists at most %d apps", MaxAppKeys)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !s.apps.AppExists(k) {
			return nil, apierror.InvalidParams.Detailf("app %q does not exist", k)
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// ListChannels returns every channel, ordered by ID.
func (s *Service) ListChannels() []Channel {
	chs := sortedChannels(s.channels)
	out := make([]Channel, len(chs))
	for i, c := range chs {
		out[i] = c.rec.public()
	}
	return out
}

// GetChannel returns one channel.
func (s *Service) GetChannel(id string) (Channel, error) {
	c, ok := s.channels.Get(id)
	if !ok {
		return Channel{}, errChannelNotFound
	}
	return c.rec.public(), nil
}

// CreateChannel creates a channel.
func (s *Service) CreateChannel(ctx context.Context, c authz.Caller, req ChannelRequest) (Channel, error) {
	ch, err := s.createChannel(ctx, req)
	target := req.ID
	if err == nil {
		target = ch.ID
	}
	s.audit.Change(c.Account, c.IP, "channel.create", target, err)
	return ch, err
}

func (s *Service) createChannel(ctx context.Context, req ChannelRequest) (Channel, error) {
	if req.ID == "" {
		req.ID = newChannelID()
	}
	if req.SessionIdleTimeout == "" {
		req.SessionIdleTimeout = DefaultIdleTimeout
	}
	if !validChannelID(req.ID) {
		return Channel{}, apierror.InvalidParams.Detailf("id must be 1 to %d digits", MaxChannelIDLen)
	}
	if err := validateName(req.Name); err != nil {
		return Channel{}, err
	}
	if err := validateIdle(req.SessionIdleTimeout); err != nil {
		return Channel{}, err
	}
	keys, err := s.checkAppKeys(req.AppKeys)
	if err != nil {
		return Channel{}, err
	}
	now := s.opts.Now().Unix()
	rec := channelRecord{ID: req.ID, UID: uuid.NewString(), Name: req.Name,
		SessionIdleTimeout: req.SessionIdleTimeout, CreateTime: now, UpdateTime: now}
	rec.setAppKeys(keys)
	it, err := s.st.Create(ctx, store.Item{Key: channelPrefix + rec.ID, Value: store.EncodeJSON(rec)})
	if errors.Is(err, store.ErrExists) {
		return Channel{}, apierror.InvalidParams.Detailf("channel %s already exists", rec.ID)
	}
	if err != nil {
		return Channel{}, apierror.FromStore(err)
	}
	return rec.public(), apierror.FromStore(s.channels.Sync(ctx, it.Revision))
}

// UpdateChannel changes a channel's name, apps or idle timeout. Removing
// an app ends its sessions on the channel at once, for good: adding the
// app again does not revive them. A new idle timeout
// applies to every session from its next request on.
func (s *Service) UpdateChannel(ctx context.Context, c authz.Caller, id string, req UpdateChannelRequest) (Channel, error) {
	ch, err := s.updateChannel(ctx, id, req)
	s.audit.Change(c.Account, c.IP, "channel.update", id, err)
	return ch, err
}

func (s *Service) updateChannel(ctx context.Context, id string, req UpdateChannelRequest) (Channel, error) {
	if req.Name == nil && req.AppKeys == nil && req.SessionIdleTimeout == nil {
		return Channel{}, apierror.InvalidParams.WithDetail("name, appKeys or sessionIdleTimeout is required")
	}
	if req.Name != nil {
		if err := validateName(*req.Name); err != nil {
			return Channel{}, err
		}
	}
	if req.SessionIdleTimeout != nil {
		if err := validateIdle(*req.SessionIdleTimeout); err != nil {
			return Channel{}, err
		}
	}
	var keys []string
	if req.AppKeys != nil {
		var err error
		if keys, err = s.checkAppKeys(*req.AppKeys); err != nil {
			return Channel{}, err
		}
	}
	var out channelRecord
	now := s.opts.Now().Unix()
	it, err := s.st.Update(ctx, channelPrefix+id, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, errChannelNotFound
		}
		var rec channelRecord
		if err := json.Unmarshal(cur.Value, &rec); err != nil {
			return nil, err
		}
		if req.Name != nil {
			rec.Name = *req.Name
		}
		if req.AppKeys != nil {
			rec.setAppKeys(keys)
		}
		if req.SessionIdleTimeout != nil {
			rec.SessionIdleTimeout = *req.SessionIdleTimeout
		}
		rec.UpdateTime = now
		out = rec
		return &store.Item{Value: store.EncodeJSON(rec)}, nil
	})
	if err != nil {
		return Channel{}, apierror.FromStore(err)
	}
	return out.public(), apierror.FromStore(s.channels.Sync(ctx, it.Revision))
}

// DeleteChannel deletes a channel; its sessions end at once.
func (s *Service) DeleteChannel(ctx context.Context, c authz.Caller, id string) error {
	err := s.deleteChannel(ctx, id)
	s.audit.Change(c.Account, c.IP, "channel.delete", id, err)
	return err
}

func (s *Service) deleteChannel(ctx context.Context, id string) error {
	it, err := s.st.Update(ctx, channelPrefix+id, func(cur *store.Item) (*store.Item, error) {
		if cur == nil {
			return nil, errChannelNotFound
		}
		return nil, nil
	})
	if err != nil {
		return apierror.FromStore(err)
	}
	return apierror.FromStore(s.channels.Sync(ctx, it.Revision))
}
