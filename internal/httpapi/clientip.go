package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// proxySet holds the trusted proxies: only their X-Forwarded-For and
// X-Real-IP headers are believed.
type proxySet struct{ prefixes []netip.Prefix }

func parseProxies(list []string) (*proxySet, error) {
	ps := &proxySet{}
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

func (ps *proxySet) trusted(a netip.Addr) bool {
	for _, p := range ps.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address a request comes from: the TCP peer, unless the
// peer is a trusted proxy, in which case the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (or X-Real-IP). It
// is printed without an IPv6 zone; a header address with a zone counts
// as malformed.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap().WithZone("")
	if len(s.proxies.prefixes) == 0 || !s.proxies.trusted(peer) {
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
			if !s.proxies.trusted(a) {
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
