package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/carryon/carryon/models/ggml"
)

func minTime(reps int, f func()) time.Duration {
	best := time.Hour
	for i := 0; i < reps; i++ {
		t := time.Now()
		f()
		if d := time.Since(t); d < best {
			best = d
		}
	}
	return best
}

func TestSpeedLocal(t *testing.T) {
	rows, cols := 128, 1024
	if testing.Short() {
		rows = 16
	}
	for _, tp := range []ggml.Type{ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K} {
		r := rand.New(rand.NewPCG(1, 2))
		var data []byte
		if tp == ggml.TypeF16 {
			data = randF16(r, rows*cols, 0.02)
		} else {
			rb, _ := tp.RowSize(cols)
			data = randBlocks(r, tp, rows*rb/tp.TypeSize())
		}
		w, _ := NewMatrix(tp, rows, cols, data)
		line := fmt.Sprintf("%-5s", tp)
		for _, ks := range fastSets() {
			for _, m := range []int{1, 4} {
				x := randF32(r, m*cols, 1)
				var a Activations
				a.Prepare(tp, x, m, cols)
				dst := make([]float32, m*rows)
				d := minTime(400, func() { ks.mul(dst, w, &a, 0, rows) })
				gbs := float64(len(data)) / d.Seconds() / 1e9
				line += fmt.Sprintf("  %s m%d %6.1f GB/s %5.2f ns/blk32", ks.name, m, gbs, float64(d.Nanoseconds())/float64(rows*cols/32))
			}
		}
		t.Log(line)
		if testing.Short() && tp == ggml.TypeQ8_0 {
			break
		}
	}
}
