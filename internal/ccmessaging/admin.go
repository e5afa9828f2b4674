package ccmessaging

import (
	"context"
	"sort"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/authz"
)

// SessionInfo is a live session as the admin API shows it. It never
// carries a token.
type SessionInfo struct {
	ChannelID        string `json:"channelId"`
	UserID           string `json:"userId"`
	UserName         string `json:"userName"`
	Locale           string `json:"locale"`
	AppKey           string `json:"appKey"`
	CreateTime       string `json:"createTime"`       // unix s
	LastActivityTime string `json:"lastActivityTime"` // unix s, as this replica knows it
	ExpiresAt        int64  `json:"expiresAt"`        // unix s: exp of the current token
	SessionExpiresAt int64  `json:"sessionExpiresAt"` // unix s: end unless a request comes
}

// Sessions returns the live sessions, ordered by channel and user,
// optionally only those of one channel and/or one user.
func (s *Service) Sessions(channelID, userID string) []SessionInfo {
	now := s.opts.Now().UnixMilli()
	out := []SessionInfo{}
	for _, sess := range s.sessions.all() {
		rec := sess.record()
		r := &rec
		if (channelID != "" && r.Channel != channelID) || (userID != "" && r.User != userID) {
			continue
		}
		epoch, active := s.apps.SessionEpoch(r.AppKey)
		if !active {
			continue
		}
		ch, err := s.checkLive(sess, r, epoch, now)
		if err != nil {
			continue
		}
		last := sess.lastActivity(r)
		out = append(out, SessionInfo{
			ChannelID: r.Channel, UserID: r.User, UserName: r.UserName, Locale: r.Locale, AppKey: r.AppKey,
			CreateTime:       strconv.FormatInt(r.Created/1000, 10),
			LastActivityTime: strconv.FormatInt(last/1000, 10),
			ExpiresAt:        r.Exp,
			SessionExpiresAt: min(last+ch.idle.Milliseconds(), r.MaxEnd) / 1000,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		return a.ChannelID < b.ChannelID || a.ChannelID == b.ChannelID && a.UserID < b.UserID
	})
	return out
}

// KillSession ends the session of (channelID, userID); its tokens stop
// working at once.
func (s *Service) KillSession(ctx context.Context, c authz.Caller, channelID, userID string) error {
	err := s.deleteSession(ctx, sessionKey(channelID, userID), "", "admin")
	s.audit.Change(c.Account, c.IP, "session.end", channelID+"/"+userID, err)
	return err
}
