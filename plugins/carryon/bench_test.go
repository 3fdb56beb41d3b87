package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/sdktest"
)

// benchForward measures one decode step of 64 sequences over 64 distinct
// heads of the 360M bench model's shape (d=960, r=64, two blocks) through h.
// Sequences restart every 256 steps.
func benchForward(b *testing.B, h sdk.Head) {
	const n, span = 64, 256
	base := carryon.Base{Arch: "llama", Dim: 960, Vocab: 49152, Layers: 32, Fingerprint: "sha256:bench"}
	ctx := context.Background()
	dir := b.TempDir()
	var dirs []string
	for i := range n {
		c := carryon.DefaultConfig(base) // identity bridge, r=64, two blocks, four attention heads
		c.Seed = uint64(i)
		head, err := carryon.New(c)
		if err != nil {
			b.Fatal(err)
		}
		d := fmt.Sprintf("%s/h%d", dir, i)
		if err := head.Save(d); err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	rows := make([]sdk.Row, n)
	seqs := make([]sdk.SeqID, n)
	for i, d := range dirs {
		id := fmt.Sprintf("h%d", i)
		if _, err := h.Load(ctx, id, d); err != nil {
			b.Fatal(err)
		}
		rows[i] = sdk.Row{Head: id, Seq: sdk.SeqID(i), Hidden: randomRows(nil, 1, 960)[0]}
		seqs[i] = sdk.SeqID(i)
	}
	pos := 0
	b.ResetTimer()
	for b.Loop() {
		if pos == span {
			if err := h.Release(ctx, seqs); err != nil {
				b.Fatal(err)
			}
			pos = 0
		}
		for i := range rows {
			rows[i].Pos = pos
		}
		if _, err := h.Forward(ctx, rows); err != nil {
			b.Fatal(err)
		}
		pos++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/call")
}

// BenchmarkForward64Heads compares the plugin's Forward called directly,
// through gRPC in this process, and through gRPC to a subprocess.
func BenchmarkForward64Heads(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchForward(b, newHeads(carryon.NewSet())) })
	b.Run("grpc-in-process", func(b *testing.B) { benchForward(b, sdktest.ServeHead(b, newHeads(carryon.NewSet()))) })
	b.Run("grpc-subprocess", func(b *testing.B) { benchForward(b, sdktest.StartHead(b, sdktest.Build(b, "."))) })
}
