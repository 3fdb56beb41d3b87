package carryon

import (
	"context"
	"fmt"
	"testing"
)

// BenchSet returns n heads of the benchmark shape (the 360M bench model's
// d=960, r=64, two blocks), named "h0", "h1", ..., in a Set.
func benchSet(b *testing.B, n int) *Set {
	set := NewSet()
	for i := range n {
		c := DefaultConfig(Base{Arch: "llama", Dim: 960, Vocab: 49152, Layers: 32, Fingerprint: "sha256:bench"})
		c.Seed = uint64(i)
		h, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		set.Put(fmt.Sprintf("h%d", i), h)
	}
	return set
}

// BenchmarkForward64Heads is one decode step of 64 sequences over 64
// distinct heads: 64 rows, one per head. Sequences restart every 256 steps,
// so attention spans 128 positions on average.
func BenchmarkForward64Heads(b *testing.B) {
	const n, span = 64, 256
	set := benchSet(b, n)
	in := inputs(1, n, 960)
	rows := make([]Row, n)
	seqs := make([]SeqID, n)
	for i := range rows {
		rows[i] = Row{Head: fmt.Sprintf("h%d", i), Seq: SeqID(i), Input: in[i]}
		seqs[i] = SeqID(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	pos := 0
	for b.Loop() {
		if pos == span {
			set.Release(seqs...)
			pos = 0
		}
		for i := range rows {
			rows[i].Pos = pos
		}
		if _, err := set.Forward(ctx, rows); err != nil {
			b.Fatal(err)
		}
		pos++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/call")
}

// BenchmarkPrefill is one 128-token prompt through one head.
func BenchmarkPrefill(b *testing.B) {
	set := benchSet(b, 1)
	in := inputs(2, 128, 960)
	rows := seqRows("h0", 1, 0, in)
	ctx := context.Background()
	for b.Loop() {
		if _, err := set.Forward(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
}
