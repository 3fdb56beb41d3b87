package gtt

import (
	"math"
	"testing"
)

func TestPatchingAlignsToTheEndAndMasksPadding(t *testing.T) {
	cfg := Config{Dim: 8, Layers: 1, Heads: 2, MLPDim: 16, PatchLen: 4, Context: 16}
	b := newBatch(cfg)
	nan := float32(math.NaN())
	// 10 steps: 3 patches, the first padded by 2 steps on the left.
	h := []float32{1, 2, nan, 4, 5, 6, 7, 8, 9, 10}
	b.addGroup([][]float32{h})
	if b.n != 3 || b.rows != 1 || b.last[0] != 2 {
		t.Fatalf("tokens %d rows %d last %v, want 3 tokens, 1 row, last token 2", b.n, b.rows, b.last)
	}
	if want := []int32{1, 2, 3}; b.posIdx[0] != want[0] || b.posIdx[1] != want[1] || b.posIdx[2] != want[2] {
		t.Fatalf("positions %v, want %v (the last patch at MaxPatches-1)", b.posIdx, want)
	}
	wantMask := []float32{0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1}
	for p := 0; p < 3; p++ {
		for k := 0; k < 4; k++ {
			if got := b.x[p*8+4+k]; got != wantMask[p*4+k] {
				t.Fatalf("mask of patch %d step %d = %g, want %g", p, k, got, wantMask[p*4+k])
			}
		}
	}
	// RevIN statistics of the observed values.
	var s, q float64
	obs := []float64{1, 2, 4, 5, 6, 7, 8, 9, 10}
	for _, v := range obs {
		s += v
	}
	mean := s / float64(len(obs))
	for _, v := range obs {
		q += (v - mean) * (v - mean)
	}
	sd := math.Sqrt(q / float64(len(obs)))
	if math.Abs(b.mean[0]-mean) > 1e-12 || math.Abs(b.scale[0]-sd) > 1e-12 {
		t.Fatalf("revin stats (%g, %g), want (%g, %g)", b.mean[0], b.scale[0], mean, sd)
	}
	// Normalized values round-trip through the statistics.
	if got := float64(b.x[0*8+2])*b.scale[0] + b.mean[0]; math.Abs(got-1) > 1e-5 {
		t.Fatalf("first value de-normalizes to %g, want 1", got)
	}
	if got := float64(b.x[2*8+3])*b.scale[0] + b.mean[0]; math.Abs(got-10) > 1e-5 {
		t.Fatalf("last value de-normalizes to %g, want 10", got)
	}
	if !b.present[0] || !b.present[1] || !b.present[2] {
		t.Fatalf("present %v, want all patches present", b.present)
	}

	// A history longer than the context is cut to its last Context steps.
	long := make([]float32, 40)
	for i := range long {
		long[i] = float32(i)
	}
	b.reset()
	b.addGroup([][]float32{long})
	if b.n != 4 || b.x[0] != float32((24-b.mean[0])/b.scale[0]) {
		t.Fatalf("long history: %d tokens, first value %g; want 4 tokens starting at step 24", b.n, b.x[0])
	}
	// A patch with no observed value is absent.
	b.reset()
	b.addGroup([][]float32{{nan, nan, nan, nan, 1, 2, 3, 4}})
	if b.present[0] || !b.present[1] {
		t.Fatalf("present %v, want [false true]", b.present)
	}
}

func TestRevINStatsFloorAndEmpty(t *testing.T) {
	if m, s := revinStats([]float32{5, 5, 5}); m != 5 || s <= 0 || s > 1e-4 {
		t.Fatalf("flat series: (%g, %g), want mean 5 and a tiny positive floor", m, s)
	}
	nan := float32(math.NaN())
	if m, s := revinStats([]float32{nan, nan}); m != 0 || s != 1 {
		t.Fatalf("no observed value: (%g, %g), want (0, 1)", m, s)
	}
}
