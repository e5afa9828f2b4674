package telemetry

import (
	"context"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// GRPCDialOptions are the dial options that give every gRPC call made
// within a traced request a client span (the etcd client's round trips),
// from tp; none when tp is nil. Calls outside a trace (watches, lease
// keep-alives, background work) start no span.
func GRPCDialOptions(tp trace.TracerProvider) []grpc.DialOption {
	if tp == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(childOnlyProvider{tp: tp}),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	))}
}

// childOnlyProvider hands out tracers that start spans only below a
// span already in the context.
type childOnlyProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childOnlyProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return tracenoop.NewTracerProvider().Tracer("").Start(ctx, name, opts...)
	}
	return t.t.Start(ctx, name, opts...)
}
