package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/carryon/carryon/models/ggml"
)

// packedData returns random weights of type tp for a rows×cols matrix.
func packedData(r *rand.Rand, tp ggml.Type, rows, cols int) []byte {
	return randBlocks(r, tp, rows*cols/tp.BlockSize())
}

// TestPacked compares products with packed Q8_0 and Q4_K matrices
// against the portable code over the ggml layout, for row counts around
// the panel size, odd block counts, batches 1..13 (whole and partial
// tiles) and row ranges that start and end inside panels.
func TestPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, tp := range []ggml.Type{ggml.TypeQ8_0, ggml.TypeQ4_K} {
		for _, rows := range []int{1, 15, 16, 17, 37, 64, 100} {
			for _, nb := range []int{1, 2, 3, 7} {
				checkPacked(t, r, tp, rows, nb*tp.BlockSize())
			}
		}
	}
}

func checkPacked(t *testing.T, r *rand.Rand, tp ggml.Type, rows, cols int) {
	t.Helper()
	data := packedData(r, tp, rows, cols)
	w, _ := NewMatrix(tp, rows, cols, data)
	p, err := PackMatrix(tp, rows, cols, data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Packed() != (active.pack != nil) {
		t.Fatalf("%s: Packed() = %v with the %s kernels", tp, p.Packed(), active.name)
	}
	for m := 1; m <= 13; m++ {
		x := randF32(r, m*cols, 1)
		var a Activations
		if err := a.Prepare(tp, x, m, cols); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, m*rows)
		generic.mul(want, w, &a, 0, rows)
		got := make([]float32, m*rows)
		// Ranges: [0, a), [a, b), [b, rows) with a, b anywhere.
		cut1, cut2 := r.IntN(rows+1), r.IntN(rows+1)
		cut1, cut2 = min(cut1, cut2), max(cut1, cut2)
		for _, rg := range [][2]int{{0, cut1}, {cut1, cut2}, {cut2, rows}} {
			if err := MatMul(got, p, &a, rg[0], rg[1]); err != nil {
				t.Fatal(err)
			}
		}
		for i := range got {
			mag := rowMagnitude(w, &a, i%rows, i/rows)
			if !near(got[i], want[i], mag, 2e-6) {
				t.Fatalf("%s %dx%d m=%d cuts %d,%d: out[%d] = %g, want %g", tp, rows, cols, m, cut1, cut2, i, got[i], want[i])
			}
		}
	}
}

// TestPackedIntegerExactness: with unit scales every product is an exact
// integer, which the packed kernels must reproduce exactly.
func TestPackedIntegerExactness(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	const rows, nb = 21, 5
	cols := nb * qk8_0
	data := randBlocks(r, ggml.TypeQ8_0, rows*nb)
	for k := 0; k < rows*nb; k++ {
		put16(data[k*blockQ8_0:], f32ToF16(1))
	}
	p, _ := PackMatrix(ggml.TypeQ8_0, rows, cols, data)
	for m := 1; m <= 6; m++ {
		x := make([]float32, m*cols)
		for i := range x {
			x[i] = float32(r.IntN(255) - 127)
		}
		for b := 0; b < len(x); b += qk8_0 {
			x[b] = -127
		}
		var a Activations
		if err := a.Prepare(ggml.TypeQ8_0, x, m, cols); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, m*rows)
		if err := MatMul(got, p, &a, 0, rows); err != nil {
			t.Fatal(err)
		}
		for rr := range m {
			for i := range rows {
				var want int64
				for j := range cols {
					want += int64(int8(data[i*nb*blockQ8_0+j/qk8_0*blockQ8_0+2+j%qk8_0])) * int64(x[rr*cols+j])
				}
				if g := got[rr*rows+i]; float64(g) != float64(want) || math.IsNaN(float64(g)) {
					t.Fatalf("m=%d out[%d,%d] = %g, exact %d", m, rr, i, g, want)
				}
			}
		}
	}
}

// TestPackedBatchInvariance: with packed weights a row's product is
// bit-identical whether it is computed alone or within a batch, so that
// batched decoding gives the same tokens as unbatched decoding.
func TestPackedBatchInvariance(t *testing.T) {
	for _, tp := range []ggml.Type{ggml.TypeQ8_0, ggml.TypeQ4_K} {
		checkBatchInvariance(t, tp)
	}
}

func checkBatchInvariance(t *testing.T, tp ggml.Type) {
	r := rand.New(rand.NewPCG(45, 46))
	const rows, nb, m = 50, 3, 13
	cols := nb * tp.BlockSize()
	data := packedData(r, tp, rows, cols)
	w, err := PackMatrix(tp, rows, cols, data)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Packed() {
		t.Skipf("the %s kernels do not pack %s weights", active.name, tp)
	}
	x := randF32(r, m*cols, 1)
	var batch, one Activations
	if err := batch.Prepare(tp, x, m, cols); err != nil {
		t.Fatal(err)
	}
	all := make([]float32, m*rows)
	if err := MatMul(all, w, &batch, 0, rows); err != nil {
		t.Fatal(err)
	}
	single := make([]float32, rows)
	for rr := range m {
		if err := one.Prepare(tp, x[rr*cols:], 1, cols); err != nil {
			t.Fatal(err)
		}
		if err := MatMul(single, w, &one, 0, rows); err != nil {
			t.Fatal(err)
		}
		for i := range single {
			if single[i] != all[rr*rows+i] {
				t.Fatalf("%s: row %d output %d: %g alone, %g in the batch", tp, rr, i, single[i], all[rr*rows+i])
			}
		}
	}
}
