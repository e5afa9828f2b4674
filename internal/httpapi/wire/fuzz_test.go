package wire

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// FuzzClientIP feeds peer addresses, X-Forwarded-For and X-Real-IP
// values to the client IP resolution behind trusted proxies. The client
// IP is the peer itself unless the peer is trusted, else an address the
// headers name; an address is always in its canonical text form (parsing
// and printing it gives it back), never IPv4-mapped and without an IPv6
// zone, so that one client has one spelling in rate-limit keys and audit
// records.
func FuzzClientIP(f *testing.F) {
	proxies, err := ParseProxies([]string{"10.0.0.0/8", "::1", "192.168.1.1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("10.1.2.3:5555", "203.0.113.7, 10.0.0.2", "", "")
	f.Add("10.1.2.3:5555", "203.0.113.7", "198.51.100.1, 10.9.9.9", "")
	f.Add("[::1]:5555", "", "", "2001:db8::1")
	f.Add("[::ffff:10.0.0.1]:80", "::ffff:203.0.113.9", "", "")
	f.Add("203.0.113.5:1234", "198.51.100.1", "", "198.51.100.2")
	f.Add("10.0.0.1:1", "garbage, 10.0.0.3", "", "")
	f.Add("10.0.0.1:1", "fe80::1%eth0", "", "")
	f.Add("not an address", "", "", "")
	f.Fuzz(func(t *testing.T, remoteAddr, xff1, xff2, realIP string) {
		r := &http.Request{RemoteAddr: remoteAddr, Header: http.Header{}}
		for _, v := range []string{xff1, xff2} {
			if v != "" {
				r.Header.Add("X-Forwarded-For", v)
			}
		}
		if realIP != "" {
			r.Header.Set("X-Real-IP", realIP)
		}
		got := proxies.ClientIP(r)
		a, err := netip.ParseAddr(got)
		if err != nil {
			if got != remoteAddr && !strings.Contains(remoteAddr, got) {
				t.Fatalf("client IP %q is neither an address nor the peer %q", got, remoteAddr)
			}
			return
		}
		if a.String() != got || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("client IP %q is not a canonical address without zone (%s)", got, a)
		}
		host, _, err := net.SplitHostPort(remoteAddr)
		if err != nil {
			host = remoteAddr
		}
		peer, err := netip.ParseAddr(host)
		if err != nil {
			return // peers are the kernel's addresses; odd forms are not judged here
		}
		if peer = peer.Unmap().WithZone(""); !proxies.trusted(peer) {
			if got != peer.String() {
				t.Fatalf("untrusted peer %s: client IP %q from the headers", peer, got)
			}
			return
		}
		named := []string{peer.String()}
		for _, h := range strings.Split(xff1+","+xff2+","+realIP, ",") {
			if b, err := netip.ParseAddr(strings.TrimSpace(h)); err == nil {
				named = append(named, b.Unmap().String())
			}
		}
		if !slices.Contains(named, got) {
			t.Fatalf("client IP %q is not named by the peer %s or the headers %q %q %q", got, peer, xff1, xff2, realIP)
		}
	})
}
