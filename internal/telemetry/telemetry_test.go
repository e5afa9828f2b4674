package telemetry_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint string
		env      map[string]string
		want     bool
	}{
		{"nothing set", "", nil, false},
		{"flag", "http://collector:4317", nil, true},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, true},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, true},
		{"other OTEL variables alone", "", map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, false},
		{"OTEL_SDK_DISABLED", "http://collector:4317", map[string]string{"OTEL_SDK_DISABLED": "true"}, false},
		{"OTEL_TRACES_EXPORTER=none", "", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if got := telemetry.Enabled(tc.endpoint); got != tc.want {
				t.Errorf("Enabled(%q) = %v, want %v", tc.endpoint, got, tc.want)
			}
			tp, err := telemetry.NewProvider(t.Context(), tc.endpoint, "test")
			if err != nil {
				t.Fatal(err)
			}
			if (tp != nil) != tc.want {
				t.Errorf("NewProvider gave a provider: %v, want %v", tp != nil, tc.want)
			}
			if tp != nil {
				_ = tp.Shutdown(context.Background())
			}
		})
	}
}

// TestStartWithoutTraceIsFree: code below a request calls Start on every
// call; without a recording span it must neither record nor allocate.
func TestStartWithoutTraceIsFree(t *testing.T) {
	ctx := t.Context()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := telemetry.Start(ctx, telemetry.SpanPasswordVerify)
		span.End()
		if c != ctx || span.IsRecording() {
			t.Fatal("Start without a trace started a span")
		}
	})
	if allocs != 0 {
		t.Errorf("Start without a trace allocates %v times", allocs)
	}
}

func TestStartIsAChildOfTheSpanInContext(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	_, span := telemetry.Start(ctx, telemetry.SpanTokenSign)
	span.End()
	parent.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != telemetry.SpanTokenSign || spans[0].Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %+v: want token.sign below request", spans)
	}
	// Below a trace that is not sampled, nothing is recorded either.
	ctx = trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}}))
	if _, span := telemetry.Start(ctx, telemetry.SpanTokenSign); span.IsRecording() {
		t.Error("a span below an unsampled trace records")
	}
}
