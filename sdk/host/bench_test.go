package host_test

import (
	"context"
	"testing"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/sdktest"
)

// BenchmarkForwardTransport is the cost of the plugin call itself: 64 rows
// of 960 floats to a subprocess head that does almost nothing (testdata
// echohead) and 64 deltas back, over gRPC with mutual TLS.
func BenchmarkForwardTransport(b *testing.B) {
	h := sdktest.StartHead(b, sdktest.Build(b, "./testdata/echohead"))
	ctx := context.Background()
	if _, err := h.Load(ctx, "a", b.TempDir()); err != nil {
		b.Fatal(err)
	}
	rows := make([]sdk.Row, 64)
	for i := range rows {
		rows[i] = sdk.Row{Head: "a", Seq: sdk.SeqID(i), Hidden: make([]float32, 960)}
	}
	b.SetBytes(2 * 64 * 960 * 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Forward(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/call")
}
