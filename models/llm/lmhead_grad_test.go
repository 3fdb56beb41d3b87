package llm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/carryon/carryon/models/ggml"
)

// TestCrossEntropyGradient checks CrossEntropy's loss against Logits and its
// gradient against central finite differences of the loss, on a synthetic
// model with an F32 LM head and a quantized one.
func TestCrossEntropyGradient(t *testing.T) {
	for _, wt := range []ggml.Type{ggml.TypeF32, ggml.TypeQ8_0} {
		m := loadSynth(t, tinySpec("llama", wt))
		d, v := m.cfg.Dim, m.cfg.Vocab
		rng := rand.New(rand.NewPCG(1, 2))
		const rows = 3
		hidden := make([]float32, rows*d)
		for i := range hidden {
			hidden[i] = float32(rng.NormFloat64() * 2)
		}
		targets := []int32{5, -1, 77}
		grad := make([]float32, len(hidden))
		sum, n, err := m.CrossEntropy(grad, hidden, targets, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("%v: %d scored rows, want 2", wt, n)
		}
		logits := make([]float32, rows*v)
		if err := m.Logits(logits, hidden); err != nil {
			t.Fatal(err)
		}
		var want float64
		for i, tg := range targets {
			if tg < 0 {
				continue
			}
			l := logits[i*v : (i+1)*v]
			var z float64
			for _, x := range l {
				z += math.Exp(float64(x))
			}
			want += math.Log(z) - float64(l[tg])
		}
		if math.Abs(sum-want) > 1e-4*math.Abs(want) {
			t.Fatalf("%v: loss %v, want %v", wt, sum, want)
		}
		for j := range d {
			if grad[d+j] != 0 {
				t.Fatalf("%v: unscored row has gradient %v", wt, grad[d+j])
			}
		}
		if wt != ggml.TypeF32 {
			// Quantized products quantize the activations too, which makes
			// finite differences noisy: compare with the product of the
			// softmax of Logits and the dequantized LM head rows.
			row := make([]float32, d)
			for i, tg := range targets {
				if tg < 0 {
					continue
				}
				l := logits[i*v : (i+1)*v]
				var z float64
				for _, x := range l {
					z += math.Exp(float64(x))
				}
				ref := make([]float64, d)
				for k := range v {
					m.backend.Row(row, m.output, k)
					p := math.Exp(float64(l[k])) / z
					if int32(k) == tg {
						p--
					}
					for j := range d {
						ref[j] += p * float64(row[j])
					}
				}
				for j := range d {
					if math.Abs(ref[j]-float64(grad[i*d+j])) > 1e-4 {
						t.Fatalf("%v: row %d gradient[%d] = %v, want %v", wt, i, j, grad[i*d+j], ref[j])
					}
				}
			}
			continue
		}
		loss := func() float64 {
			s, _, err := m.CrossEntropy(nil, hidden, targets, 1)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		const eps = 1e-2
		var maxErr, maxG float64
		for _, i := range []int{0, 7, 63, 2*d + 1, 2*d + 40} {
			old := hidden[i]
			hidden[i] = old + eps
			up := loss()
			hidden[i] = old - eps
			down := loss()
			hidden[i] = old
			fd := (up - down) / (2 * eps)
			maxErr = math.Max(maxErr, math.Abs(fd-float64(grad[i])))
			maxG = math.Max(maxG, math.Abs(fd))
		}
		if maxErr > 1e-2*maxG+1e-4 {
			t.Fatalf("%v: gradient differs from finite differences by %v (largest %v)", wt, maxErr, maxG)
		}
	}
}

func TestCrossEntropyBadInput(t *testing.T) {
	m := loadSynth(t, tinySpec("llama", ggml.TypeF32))
	d := m.cfg.Dim
	if _, _, err := m.CrossEntropy(nil, make([]float32, d), []int32{int32(m.cfg.Vocab)}, 1); err == nil {
		t.Error("target out of range accepted")
	}
	if _, _, err := m.CrossEntropy(nil, make([]float32, d), []int32{1, 2}, 1); err == nil {
		t.Error("target count mismatch accepted")
	}
	if _, _, err := m.CrossEntropy(make([]float32, 1), make([]float32, d), []int32{1}, 1); err == nil {
		t.Error("short gradient accepted")
	}
}
