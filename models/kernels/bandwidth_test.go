package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestReadLines checks that the vector read loop folds every byte it
// reads, as the portable loop does, for odd and even line counts.
func TestReadLines(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, lines := range []int{1, 2, 3, 16, 17} {
		b := make([]byte, 64*lines)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		want := readLinesGeneric(b)
		if got := readLines(b); got != want {
			t.Errorf("%d lines: %#x, want %#x", lines, got, want)
		}
		b[len(b)-1] ^= 1
		if got := readLines(b); got == want {
			t.Errorf("%d lines: the last byte does not change the result", lines)
		}
	}
}

func TestReadBandwidth(t *testing.T) {
	bw, err := ReadBandwidth(2, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if bw <= 0 {
		t.Errorf("bandwidth %g", bw)
	}
	if _, err := ReadBandwidth(0, 1<<20); err == nil {
		t.Error("0 threads accepted")
	}
	if _, err := ReadBandwidth(2, 64); err == nil {
		t.Error("a buffer smaller than a line per thread accepted")
	}
}
