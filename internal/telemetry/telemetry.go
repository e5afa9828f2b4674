// Package telemetry sets up Gatehouse's OpenTelemetry tracing and holds
// the few helpers the other packages start their spans with.
//
// Tracing is off unless an OTLP endpoint is configured (Enabled). When it
// is off no tracer provider exists: the HTTP surface starts no span, the
// store and the etcd client are not wrapped, and Start, called by code
// that has only a context, returns at once without allocating.
//
// Spans below the request span are started from the tracer provider of
// the span in the context (Start), so the domains need no tracer of their
// own, and work without a request span (background loops, the change-feed
// followers, lease keep-alives) starts no trace.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of every span Gatehouse starts.
const Scope = "github.com/gatehouse/gatehouse"

// The span names of the work below a request (docs/operations.md).
const (
	SpanPasswordHash   = "password.hash"
	SpanPasswordVerify = "password.verify"
	SpanTokenSign      = "token.sign"
)

// TraceContext reads and writes the W3C trace context headers
// (traceparent, tracestate) of requests, the only propagation format
// Gatehouse honours.
var TraceContext propagation.TraceContext

// Enabled reports whether tracing is on: when endpoint (--otlp-endpoint)
// is set, or else when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is; never when OTEL_SDK_DISABLED is true or
// OTEL_TRACES_EXPORTER is none.
func Enabled(endpoint string) bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") ||
		strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// NewProvider returns the tracer provider exporting Gatehouse's spans over
// OTLP/gRPC, or nil when tracing is off (Enabled). endpoint, when set,
// takes precedence over the OTEL_EXPORTER_OTLP_* endpoint variables: a URL
// (http:// for plain text, https:// for TLS) or host:port (TLS unless
// OTEL_EXPORTER_OTLP_INSECURE is true). Every other OTEL_* setting the SDK
// knows (headers, certificates, timeout, compression, sampler, batching,
// resource attributes, OTEL_SERVICE_NAME) applies. version becomes
// service.version. The caller shuts the provider down, which flushes the
// spans not yet exported.
func NewProvider(ctx context.Context, endpoint, version string) (*sdktrace.TracerProvider, error) {
	if !Enabled(endpoint) {
		return nil, nil
	}
	var opts []otlptracegrpc.Option
	switch {
	case strings.Contains(endpoint, "://"):
		opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
	case endpoint != "":
		opts = append(opts, otlptracegrpc.WithEndpoint(endpoint))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the defaults.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "gatehouse"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("otlp resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// Start starts a span named name as a child of the recording span in ctx,
// from that span's tracer provider. Without one (tracing off, a trace not
// sampled, or no request behind the work) it returns ctx and the span in
// it unchanged, a span that records nothing, without allocating.
func Start(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(Scope).Start(ctx, name)
}
