package llm

import (
	"fmt"
	"math"

	"github.com/carryon/carryon/models/kernels"
)

// crossEntropyLogitBytes bounds the logits CrossEntropy holds at once;
// crossEntropyVocabChunk is how many LM head rows it converts to float32 at
// a time for the gradient.
const (
	crossEntropyLogitBytes = 16 << 20
	crossEntropyVocabChunk = 256
)

// CrossEntropy scores hidden rows of Dim floats (final-norm states, possibly
// modified by a head) against their next tokens through the LM head, which
// it only reads. For each row r whose target is ≥ 0 the loss is
// logsumexp(W·h_r) − (W·h_r)[target_r]; rows with a negative target are not
// scored. It returns the sum of the losses and the number of scored rows.
//
// When grad is not nil (as long as hidden) it receives scale times the
// gradient of each row's loss with respect to its hidden row,
// Σ_v softmax_v·W_v − W_target (zero for unscored rows). Memory stays
// bounded whatever the vocabulary: logits are computed for a block of rows
// at a time (at most 16 MiB of them), and the LM head's rows are converted
// to float32 a chunk of the vocabulary at a time for the product with the
// probabilities. The LM head is never copied whole. The product runs on the
// CPU (it reads rows through the backend), so a backend that keeps weights
// off the host pays for the transfers.
func (m *Model) CrossEntropy(grad, hidden []float32, targets []int32, scale float32) (sum float64, n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return crossEntropy(modelOutput{m}, m.cfg.Dim, m.cfg.Vocab, grad, hidden, targets, scale)
}

// vocabProjection is an LM head as crossEntropy reads it.
type vocabProjection interface {
	// logits writes rows rows of vocabulary logits, W·h, for rows hidden
	// rows.
	logits(dst, hidden []float32, rows int)
	// row writes row i of W, converted to float32, into dst.
	row(dst []float32, i int)
}

// modelOutput is a loaded model's LM head, read through its backend; the
// caller holds the model's lock.
type modelOutput struct{ m *Model }

func (o modelOutput) logits(dst, hidden []float32, rows int) {
	o.m.backend.MatMul(dst, o.m.output, hidden, rows)
}

func (o modelOutput) row(dst []float32, i int) { o.m.backend.Row(dst, o.m.output, i) }

// crossEntropy is CrossEntropy for the LM head p of d columns and v rows
// (see Model.CrossEntropy for the contract).
func crossEntropy(p vocabProjection, d, v int, grad, hidden []float32, targets []int32, scale float32) (sum float64, n int, err error) {
	if len(hidden) == 0 || len(hidden)%d != 0 {
		return 0, 0, fmt.Errorf("cross entropy: %d hidden floats is not a positive multiple of the model width %d", len(hidden), d)
	}
	rows := len(hidden) / d
	if len(targets) != rows {
		return 0, 0, fmt.Errorf("cross entropy: %d targets for %d hidden rows", len(targets), rows)
	}
	if grad != nil && len(grad) != len(hidden) {
		return 0, 0, fmt.Errorf("cross entropy: gradient of %d floats for %d hidden floats", len(grad), len(hidden))
	}
	for i, t := range targets {
		if int(t) >= v {
			return 0, 0, fmt.Errorf("cross entropy: row %d: target %d out of range [0, %d)", i, t, v)
		}
	}
	block := max(1, min(rows, crossEntropyLogitBytes/(4*v)))
	logits := make([]float32, block*v)
	var wrows []float32
	if grad != nil {
		clear(grad)
		wrows = make([]float32, crossEntropyVocabChunk*d)
	}
	for r0 := 0; r0 < rows; r0 += block {
		nr := min(block, rows-r0)
		p.logits(logits[:nr*v], hidden[r0*d:(r0+nr)*d], nr)
		scored := false
		for i := range nr {
			t := targets[r0+i]
			l := logits[i*v : (i+1)*v]
			if t < 0 {
				clear(l)
				continue
			}
			scored = true
			mx := float64(l[0])
			for _, x := range l {
				mx = math.Max(mx, float64(x))
			}
			var z float64
			for _, x := range l {
				z += math.Exp(float64(x) - mx)
			}
			lse := mx + math.Log(z)
			sum += lse - float64(l[t])
			n++
			if grad != nil {
				// l becomes scale·(softmax − onehot).
				for j, x := range l {
					l[j] = scale * float32(math.Exp(float64(x)-lse))
				}
				l[t] -= scale
			}
		}
		if grad == nil || !scored {
			continue
		}
		for v0 := 0; v0 < v; v0 += crossEntropyVocabChunk {
			nv := min(crossEntropyVocabChunk, v-v0)
			for j := range nv {
				p.row(wrows[j*d:(j+1)*d], v0+j)
			}
			for i := range nr {
				if targets[r0+i] < 0 {
					continue
				}
				g := grad[(r0+i)*d : (r0+i+1)*d]
				_ = kernels.AxpyRowsF32(g, logits[i*v+v0:i*v+v0+nv], wrows[:nv*d], d)
			}
		}
	}
	return sum, n, nil
}
