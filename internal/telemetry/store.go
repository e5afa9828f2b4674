package telemetry

import (
	"context"
	"errors"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/store"
)

// InstrumentStore wraps st so that every read and write made within a
// traced request is a span: store.get, store.list, store.create,
// store.put, store.cas, store.update, store.delete, with the backend
// (db.system.name) and the key's first segment (gatehouse.store.table,
// e.g. "accounts/"), never the rest of the key nor the value.
func InstrumentStore(st store.Store, backend string) store.Store {
	return tracedStore{Store: st, backend: attribute.String("db.system.name", backend)}
}

type tracedStore struct {
	store.Store
	backend attribute.KeyValue
}

// start starts the span of one operation on key (or prefix).
func (s tracedStore) start(ctx context.Context, op, key string) (context.Context, trace.Span) {
	ctx, span := Start(ctx, op)
	if span.IsRecording() {
		span.SetAttributes(s.backend, attribute.String("gatehouse.store.table", table(key)))
	}
	return ctx, span
}

// table is the first segment of a key, with its slash.
func table(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return ""
}

// end ends span, marked failed when the backend was unavailable or
// closed; other errors (not found, exists, conflict, an update function's
// own) are answers, not failures.
func end(span trace.Span, err error) {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		span.SetStatus(codes.Error, "store unavailable")
	case errors.Is(err, store.ErrClosed):
		span.SetStatus(codes.Error, "store closed")
	}
	span.End()
}

func (s tracedStore) Get(ctx context.Context, key string) (it store.Item, err error) {
	ctx, span := s.start(ctx, "store.get", key)
	defer func() { end(span, err) }()
	return s.Store.Get(ctx, key)
}

func (s tracedStore) List(ctx context.Context, prefix string) (items []store.Item, rev int64, err error) {
	ctx, span := s.start(ctx, "store.list", prefix)
	defer func() { end(span, err) }()
	return s.Store.List(ctx, prefix)
}

func (s tracedStore) Scan(ctx context.Context, prefix string, fn store.ScanFunc) (err error) {
	ctx, span := s.start(ctx, "store.scan", prefix)
	defer func() { end(span, err) }()
	return s.Store.Scan(ctx, prefix, fn)
}

func (s tracedStore) Create(ctx context.Context, it store.Item) (_ store.Item, err error) {
	ctx, span := s.start(ctx, "store.create", it.Key)
	defer func() { end(span, err) }()
	return s.Store.Create(ctx, it)
}

func (s tracedStore) Put(ctx context.Context, it store.Item) (_ store.Item, err error) {
	ctx, span := s.start(ctx, "store.put", it.Key)
	defer func() { end(span, err) }()
	return s.Store.Put(ctx, it)
}

func (s tracedStore) CompareAndSwap(ctx context.Context, expected int64, it store.Item) (_ store.Item, err error) {
	ctx, span := s.start(ctx, "store.cas", it.Key)
	defer func() { end(span, err) }()
	return s.Store.CompareAndSwap(ctx, expected, it)
}

func (s tracedStore) Update(ctx context.Context, key string, fn store.UpdateFunc) (_ store.Item, err error) {
	ctx, span := s.start(ctx, "store.update", key)
	defer func() { end(span, err) }()
	return s.Store.Update(ctx, key, fn)
}

func (s tracedStore) Delete(ctx context.Context, key string) (err error) {
	ctx, span := s.start(ctx, "store.delete", key)
	defer func() { end(span, err) }()
	return s.Store.Delete(ctx, key)
}
