package gateway_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpapi/gateway"
)

// TestGatewayOversizedLabelBodyRefusedAtOnce checks that a body the
// gateway reads for labels is refused as soon as its declared length is
// over the limit, without waiting for it, and that a chunked one is cut
// at the limit; the connection is closed after either, and nothing
// reaches the upstream.
func TestGatewayOversizedLabelBodyRefusedAtOnce(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := start(t, nil, gateway.Route{Prefix: "/v4/", Upstream: up.URL})
	head := "POST /v4/default/registry/microservices HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer " + g.root()
	chunk := strings.Repeat(" ", 1<<20+1)
	for name, tc := range map[string]struct {
		head string
		body []byte
	}{
		"declared 1 GB":      {head + "\r\nContent-Length: 1000000000", nil},
		"declared 1 MiB + 1": {head + fmt.Sprintf("\r\nContent-Length: %d", 1<<20+1), nil},
		"chunked":            {head + "\r\nTransfer-Encoding: chunked", fmt.Appendf(nil, "%x\r\n%s\r\n", len(chunk), chunk)},
	} {
		r, closed := g.Raw(tc.head, tc.body)
		wantErr(t, reply{status: r.Status, header: r.Header, body: r.Body}, 413, "413001")
		if !closed {
			t.Fatalf("%s: the connection stayed open after a 413", name)
		}
	}
	if up.count() != 0 {
		t.Fatal("an oversize body reached the upstream")
	}
}
