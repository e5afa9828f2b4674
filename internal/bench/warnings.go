package bench

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// warnings counts the warnings and errors the in-process servers log (an
// audit record dropped under load, a failed background write), so that a
// scenario does not look healthy while the server struggles. It passes
// every record it is given on to the handler it wraps.
type warnings struct {
	slog.Handler
	state *warnState
}

type warnState struct {
	mu   sync.Mutex
	n    uint64
	last string // message of the latest warning
}

// newWarnings returns a handler that writes warnings and errors to w as
// text and counts them.
func newWarnings(w io.Writer) *warnings {
	if w == nil {
		w = io.Discard
	}
	return &warnings{
		Handler: slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}),
		state:   &warnState{},
	}
}

// Handle implements slog.Handler.
func (h *warnings) Handle(ctx context.Context, r slog.Record) error {
	h.state.mu.Lock()
	h.state.n, h.state.last = h.state.n+1, r.Message
	h.state.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *warnings) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &warnings{Handler: h.Handler.WithAttrs(attrs), state: h.state}
}

// WithGroup implements slog.Handler.
func (h *warnings) WithGroup(name string) slog.Handler {
	return &warnings{Handler: h.Handler.WithGroup(name), state: h.state}
}

// count returns how many warnings were logged so far.
func (h *warnings) count() uint64 {
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	return h.state.n
}

// since returns how many warnings were logged since count returned n, and
// the latest one's message.
func (h *warnings) since(n uint64) (uint64, string) {
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	if h.state.n == n {
		return 0, ""
	}
	return h.state.n - n, h.state.last
}
