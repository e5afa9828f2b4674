package ccmessaging

import (
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
	"unsafe"
)

// sessionFormat starts a session record in its binary form: the record's
// seven strings, each as a uvarint length and its bytes (channel and user
// first, so that the two of them make a key), then its eleven integers as
// varints, in field order. It is less than half the size of JSON and quick
// to decode, and the session table keeps each session in this form: one
// allocation with one pointer, which the garbage collector scans quickly
// however many sessions there are. Records of the earlier binary form
// (sessionFormatV1, without AppEpoch and Grant, read as 0) and records
// stored as JSON (a leading '{') are read too.
const (
	sessionFormat   = 2
	sessionFormatV1 = 1
)

// encodeSession returns the binary form of rec.
func encodeSession(rec *sessionRecord) []byte {
	strs := [...]string{rec.Channel, rec.User, rec.ID, rec.ChannelUID, rec.UserName, rec.Locale, rec.AppKey}
	ints := [...]int64{rec.Gen, rec.Issued, rec.Exp, rec.PrevIssued, rec.PrevExp, rec.PrevUntil, rec.Created, rec.LastActivity, rec.MaxEnd,
		rec.AppEpoch, rec.Grant}
	n := 1 + len(ints)*binary.MaxVarintLen64
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := append(make([]byte, 0, n), sessionFormat)
	for _, s := range strs {
		b = append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	for _, v := range ints {
		b = binary.AppendVarint(b, v)
	}
	return b
}

// loadSession returns the binary form of a stored record (val itself, or
// converted from JSON) and the record it holds, sharing its memory.
func loadSession(val []byte) ([]byte, sessionRecord, bool) {
	enc := val
	if len(val) > 0 && val[0] == '{' {
		var rec sessionRecord
		if json.Unmarshal(val, &rec) != nil || rec.ID == "" {
			return nil, sessionRecord{}, false
		}
		enc = encodeSession(&rec)
	}
	rec, ok := decodeSession(unsafe.String(unsafe.SliceData(enc), len(enc)))
	return enc, rec, ok
}

// decodeSession decodes the binary form of a record. Its strings share
// enc's memory.
func decodeSession(enc string) (sessionRecord, bool) {
	if len(enc) == 0 || enc[0] != sessionFormat && enc[0] != sessionFormatV1 {
		return sessionRecord{}, false
	}
	d := decoder{s: enc[1:], ok: true}
	rec := sessionRecord{Channel: d.str(), User: d.str(), ID: d.str(), ChannelUID: d.str(), UserName: d.str(), Locale: d.str(), AppKey: d.str()}
	ints := [...]*int64{&rec.Gen, &rec.Issued, &rec.Exp, &rec.PrevIssued, &rec.PrevExp, &rec.PrevUntil,
		&rec.Created, &rec.LastActivity, &rec.MaxEnd, &rec.AppEpoch, &rec.Grant}
	n := len(ints)
	if enc[0] == sessionFormatV1 {
		n -= 2
	}
	for _, p := range ints[:n] {
		*p = d.int()
	}
	if !d.ok || len(d.s) != 0 || rec.ID == "" {
		return sessionRecord{}, false
	}
	return rec, true
}

// tableKeyBuf is the size of a buffer that holds the table key of any
// channel ID and user ID accepted here.
const tableKeyBuf = 2*binary.MaxVarintLen64 + MaxChannelIDLen + utf8.UTFMax*MaxUserIDLen

// tableKey returns the key of a session of user on channel in the session
// table: the start of its binary form, channel and user.
func tableKey(channel, user string) string {
	var buf [tableKeyBuf]byte
	return string(appendTableKey(buf[:0], channel, user))
}

// appendTableKey appends the table key of (channel, user) to b.
func appendTableKey(b []byte, channel, user string) []byte {
	b = append(binary.AppendUvarint(b, uint64(len(channel))), channel...)
	return append(binary.AppendUvarint(b, uint64(len(user))), user...)
}

// tableKeyIn returns the table key at the start of enc, a valid binary
// form, sharing its memory.
func tableKeyIn(enc string) string {
	d := decoder{s: enc[1:], ok: true}
	d.str()
	d.str()
	return enc[1 : len(enc)-len(d.s)]
}

// decoder reads the binary form of a record; ok turns false at the first
// malformed field, after which every read returns a zero value.
type decoder struct {
	s  string
	ok bool
}

// head returns the first bytes of the rest, enough for any varint.
func (d *decoder) head() []byte { return []byte(d.s[:min(len(d.s), binary.MaxVarintLen64)]) }

func (d *decoder) str() string {
	n, k := binary.Uvarint(d.head())
	if !d.ok || k <= 0 || n > uint64(len(d.s)-k) {
		d.ok = false
		return ""
	}
	s := d.s[k : k+int(n)]
	d.s = d.s[k+int(n):]
	return s
}

func (d *decoder) int() int64 {
	v, k := binary.Varint(d.head())
	if !d.ok || k <= 0 {
		d.ok = false
		return 0
	}
	d.s = d.s[k:]
	return v
}
