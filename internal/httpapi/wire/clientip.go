package wire

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the trusted proxies: only their X-Forwarded-For and
// X-Real-IP headers are believed. The zero value and nil trust none.
type Proxies struct{ prefixes []netip.Prefix }

// ParseProxies reads a list of addresses and CIDRs; empty entries are
// skipped.
func ParseProxies(list []string) (*Proxies, error) {
	ps := &Proxies{}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			ps.prefixes = append(ps.prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR", s)
		}
		ps.prefixes = append(ps.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return ps, nil
}

func (ps *Proxies) trusted(a netip.Addr) bool {
	if ps == nil {
		return false
	}
	for _, p := range ps.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address a request comes from: the TCP peer, unless the
// peer is a trusted proxy, in which case the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (or X-Real-IP). It
// is printed without an IPv6 zone; a header address with a zone counts
// as malformed.
func (ps *Proxies) ClientIP(r *http.Request) string {
	host, peer, ok := ps.peer(r)
	if !ok {
		return host
	}
	if !ps.trusted(peer) {
		return peer.String()
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := headerAddr(hops[i])
			if err != nil {
				break // a malformed hop: stop believing the chain here
			}
			a = a.Unmap()
			if !ps.trusted(a) {
				return a.String()
			}
			peer = a
		}
		return peer.String()
	}
	if a, err := headerAddr(r.Header.Get("X-Real-IP")); err == nil {
		return a.Unmap().String()
	}
	return peer.String()
}

// Scheme is the scheme the client sent r with, "https" or "http": https
// when the listener serves TLS, else the right-most X-Forwarded-Proto
// (the one the nearest proxy set) when the peer is a trusted proxy and
// the value is http or https, else http. The header of any other peer is
// ignored: a client could otherwise claim TLS it does not have.
func (ps *Proxies) Scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if xfp := r.Header.Values("X-Forwarded-Proto"); len(xfp) > 0 && ps.fromTrusted(r) {
		last := xfp[len(xfp)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if p := strings.ToLower(strings.TrimSpace(last)); p == "https" || p == "http" {
			return p
		}
	}
	return "http"
}

// peer returns the TCP peer of r: its host as written and, when that is
// an IP address, the address.
func (ps *Proxies) peer(r *http.Request) (string, netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host, netip.Addr{}, false
	}
	return host, peer.Unmap().WithZone(""), true
}

// fromTrusted reports whether the TCP peer of r is a trusted proxy.
func (ps *Proxies) fromTrusted(r *http.Request) bool {
	_, peer, ok := ps.peer(r)
	return ok && ps.trusted(peer)
}

// errZone refuses an address with an IPv6 zone in a header: a zone is
// free text, which would give one client any number of spellings in
// rate-limit keys and audit records.
var errZone = errors.New("an address in a header has no zone")

// headerAddr parses an address of X-Forwarded-For or X-Real-IP.
func headerAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err == nil && a.Zone() != "" {
		err = errZone
	}
	return a, err
}
