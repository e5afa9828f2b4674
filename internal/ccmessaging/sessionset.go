package ccmessaging

import "hash/maphash"

// sessionSet holds sessions by number and finds them by table key, with
// one pointer per session and no pointer in its main index: the garbage
// collector scans one slice of a pointer per session in each cycle, not a
// map of a million entries (only the rare clashing keys, in a map of
// their own, point into their sessions). A session keeps its number while it is
// replaced by later versions of itself; a number freed when its session
// ends is reused. Numbers fit in 31 bits, so that an index can keep a
// flag beside one in a uint32.
//
// A sessionSet is not safe for concurrent use: its owner writes it under
// a lock and reads it under the same lock or as its only writer.
type sessionSet struct {
	slots []*session // by number; nil while the number is free
	free  []uint32
	// byKey holds each key's number under the key's hash, unless the key
	// is in clash: a key whose hash another key held when it came. Every
	// key is in exactly one of the two.
	byKey map[uint64]uint32
	clash map[string]uint32
	hash  func(string) uint64
}

// maxSessions bounds the numbers of a sessionSet to 31 bits.
const maxSessions uint64 = 1 << 31

// newSessionSet returns an empty set with room for n sessions, hashing
// keys with hash, or with a seeded maphash if hash is nil.
func newSessionSet(n int, hash func(string) uint64) *sessionSet {
	if hash == nil {
		seed := maphash.MakeSeed()
		hash = func(k string) uint64 { return maphash.String(seed, k) }
	}
	return &sessionSet{slots: make([]*session, 0, n), byKey: make(map[uint64]uint32, n),
		clash: map[string]uint32{}, hash: hash}
}

// number returns the number of the session under k.
func (s *sessionSet) number(k string) (uint32, bool) {
	if n, ok := s.byKey[s.hash(k)]; ok && tableKeyIn(s.slots[n].encoded()) == k {
		return n, true
	}
	n, ok := s.clash[k]
	return n, ok
}

// get returns the session under k and its number, or nil.
func (s *sessionSet) get(k string) (*session, uint32) {
	if n, ok := s.number(k); ok {
		return s.slots[n], n
	}
	return nil, 0
}

// at returns the session of number n, or nil if n is free or beyond the
// set: a reader may hold a number of a set the table has since replaced.
func (s *sessionSet) at(n uint32) *session {
	if int(n) >= len(s.slots) {
		return nil
	}
	return s.slots[n]
}

// put stores sess under its table key and returns its number. A session
// already under that key is replaced and keeps its number; put returns
// it as old.
func (s *sessionSet) put(sess *session) (n uint32, old *session) {
	k := tableKeyIn(sess.encoded())
	if n, ok := s.number(k); ok {
		old, s.slots[n] = s.slots[n], sess
		if _, clashed := s.clash[k]; clashed {
			delete(s.clash, k) // its key string is the old session's memory
			s.clash[k] = n
		}
		return n, old
	}
	if last := len(s.free) - 1; last >= 0 {
		n, s.free = s.free[last], s.free[:last]
		s.slots[n] = sess
	} else {
		if uint64(len(s.slots)) >= maxSessions {
			panic("ccmessaging: more than 2³¹ sessions on one replica")
		}
		n = uint32(len(s.slots))
		s.slots = append(s.slots, sess)
	}
	if h := s.hash(k); !s.taken(h) {
		s.byKey[h] = n
	} else {
		s.clash[k] = n
	}
	return n, nil
}

// taken reports whether byKey holds a session's number under h.
func (s *sessionSet) taken(h uint64) bool {
	_, ok := s.byKey[h]
	return ok
}

// remove removes the session under k and frees its number, returning the
// number and whether there was one.
func (s *sessionSet) remove(k string) (uint32, bool) {
	h := s.hash(k)
	n, ok := s.byKey[h]
	if ok && tableKeyIn(s.slots[n].encoded()) == k {
		delete(s.byKey, h)
	} else if n, ok = s.clash[k]; ok {
		delete(s.clash, k)
	} else {
		return 0, false
	}
	s.slots[n] = nil
	s.free = append(s.free, n)
	return n, true
}

// len returns the number of sessions in the set.
func (s *sessionSet) len() int { return len(s.slots) - len(s.free) }

// all appends every session to out, in no particular order.
func (s *sessionSet) all(out []*session) []*session {
	for _, sess := range s.slots {
		if sess != nil {
			out = append(out, sess)
		}
	}
	return out
}
