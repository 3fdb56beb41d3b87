package carryon

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/synth"
)

// trainBase writes and loads a tiny random base model.
func trainBase(t *testing.T) (*llm.Model, Base) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "base.gguf")
	spec := synth.Spec{Arch: "llama", Vocab: 300, Dim: 32, Layers: 2, Heads: 4, FFN: 64, Context: 64, Seed: 1}
	if err := synth.Write(path, spec); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	base, err := BaseFromGGUF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	m, err := llm.Load(path, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, base
}

// patternSequences returns sequences of a simple domain: counting upward
// in steps of 3 from a varying start, which the random base does not know.
func patternSequences(count, n int) []Sequence {
	seqs := make([]Sequence, count)
	for i := range seqs {
		toks := make([]int32, n)
		for j := range toks {
			toks[j] = int32(10 + (i*7+3*j)%200)
		}
		seqs[i] = Sequence{Tokens: toks}
	}
	return seqs
}

func smallHead(t *testing.T, base Base, alpha float32) *Head {
	cfg := DefaultConfig(base)
	cfg.Width, cfg.Heads, cfg.FFN, cfg.Blocks = 32, 2, 64, 1
	cfg.Bridge = Bridge{Kind: BridgeInt8}
	cfg.Alpha = alpha
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTrainingLowersLossAndCachesFeatures(t *testing.T) {
	ctx := context.Background()
	m, base := trainBase(t)
	h := smallHead(t, base, 1)
	dir := t.TempDir()
	seqs := patternSequences(12, 24)
	ex, st, err := Features(ctx, m, h.Config(), seqs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Computed != 12 || st.Hits != 0 {
		t.Fatalf("first extraction: %+v, want 12 computed", st)
	}
	ex2, st, err := Features(ctx, m, h.Config(), seqs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Hits != 12 || st.Computed != 0 {
		t.Fatalf("second extraction: %+v, want 12 cache hits", st)
	}
	for i := range ex {
		for j := range ex[i].Hidden {
			if ex[i].Hidden[j] != ex2[i].Hidden[j] {
				t.Fatalf("cached features differ from computed ones at sequence %d", i)
			}
		}
	}
	tr, err := NewTrainer(h, m, TrainOptions{Steps: 100, Batch: 4, LR: 1e-2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	train, eval := ex[:10], ex[10:]
	before, baseLoss, _, err := tr.Eval(ctx, eval)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(before-baseLoss) > 0.05 {
		t.Fatalf("fresh head loss %v, base %v: a fresh head should stay close to the base", before, baseLoss)
	}
	if err := tr.Run(ctx, train, nil); err != nil {
		t.Fatal(err)
	}
	after, _, _, err := tr.Eval(ctx, eval)
	if err != nil {
		t.Fatal(err)
	}
	if after > baseLoss-0.3 {
		t.Fatalf("held-out loss %v after training, base %v: want at least 0.3 nat lower (the random base's LM head is small, so large deltas are needed)", after, baseLoss)
	}
	// The trained head saves, loads and serves the loss the trainer measured.
	trained, err := tr.Head()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := trained.Save(out); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	e := eval[0]
	n, d := len(e.Targets), base.Dim
	rows := make([]Row, n)
	for p := range rows {
		rows[p] = Row{Seq: 1, Pos: p, Input: e.Hidden[p*d : (p+1)*d]}
	}
	deltas, err := loaded.Forward(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, n*d)
	for p := range n {
		for j := range d {
			y[p*d+j] = e.Hidden[p*d+j] + deltas[p][j]
		}
	}
	served, cnt, err := m.CrossEntropy(nil, y, e.Targets, 1)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _, _ := tr.Eval(ctx, eval[:1])
	if math.Abs(served/float64(cnt)-want) > 0.02 {
		t.Fatalf("loaded head serves loss %v, trainer measured %v", served/float64(cnt), want)
	}
}

// TestAlphaPath checks that a head with α = 0 is exactly the base, that its
// weights get no gradient then, and that learning α moves it off zero and
// lowers the loss.
func TestAlphaPath(t *testing.T) {
	ctx := context.Background()
	m, base := trainBase(t)
	h := smallHead(t, base, 0)
	ex, _, err := Features(ctx, m, h.Config(), patternSequences(6, 16), "")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(h, m, TrainOptions{Steps: 30, Batch: 3, LR: 3e-3, Seed: 2, LearnAlpha: true})
	if err != nil {
		t.Fatal(err)
	}
	head, baseLoss, _, err := tr.Eval(ctx, ex)
	if err != nil {
		t.Fatal(err)
	}
	if head != baseLoss {
		t.Fatalf("α = 0: head loss %v, base %v, want equal", head, baseLoss)
	}
	r := tr.run(&ex[0], 1, tr.net.zeros())
	for i, g := range r.grads {
		for _, v := range g {
			if v != 0 {
				t.Fatalf("α = 0: %s has gradient %v", tr.net.names[i], v)
			}
		}
	}
	if r.dAlpha == 0 {
		t.Fatal("α = 0: α has no gradient")
	}
	if err := tr.Run(ctx, ex, nil); err != nil {
		t.Fatal(err)
	}
	trained, err := tr.Head()
	if err != nil {
		t.Fatal(err)
	}
	if trained.Config().Alpha == 0 {
		t.Fatal("learned α stayed 0")
	}
	after, _, _, _ := tr.Eval(ctx, ex)
	if after >= baseLoss {
		t.Fatalf("loss %v after learning α, base %v", after, baseLoss)
	}
}

// TestResumeMatchesUninterrupted checks that stopping at a checkpoint and
// resuming in a fresh trainer ends with the weights of an uninterrupted run.
func TestResumeMatchesUninterrupted(t *testing.T) {
	ctx := context.Background()
	m, base := trainBase(t)
	ex, _, err := Features(ctx, m, smallHead(t, base, 1).Config(), patternSequences(6, 16), "")
	if err != nil {
		t.Fatal(err)
	}
	opts := TrainOptions{Steps: 12, Batch: 2, LR: 3e-3, Seed: 5, LearnAlpha: true, WeightDecay: 0.01}
	full, err := NewTrainer(smallHead(t, base, 1), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Run(ctx, ex, nil); err != nil {
		t.Fatal(err)
	}
	first, err := NewTrainer(smallHead(t, base, 1), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "ckpt.safetensors")
	stop := context.Canceled
	err = first.Run(ctx, ex, func(r StepReport) error {
		if r.Step == 5 {
			if err := first.SaveCheckpoint(ckpt); err != nil {
				return err
			}
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("interrupted run: %v", err)
	}
	resumed, err := NewTrainer(smallHead(t, base, 1), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := resumed.LoadCheckpoint(ckpt); err != nil {
		t.Fatal(err)
	}
	if resumed.Steps() != 5 {
		t.Fatalf("resumed at step %d, want 5", resumed.Steps())
	}
	if err := resumed.Run(ctx, ex, nil); err != nil {
		t.Fatal(err)
	}
	// A run that saves a checkpoint after every step (which releases the
	// gradient buffers between steps) ends with the same weights too.
	saving, err := NewTrainer(smallHead(t, base, 1), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = saving.Run(ctx, ex, func(StepReport) error { return saving.SaveCheckpoint(ckpt + ".every") })
	if err != nil {
		t.Fatal(err)
	}
	a, _ := full.Head()
	b, _ := resumed.Head()
	c, _ := saving.Head()
	if a.Version() != b.Version() {
		t.Fatal("resumed run ends with other weights than the uninterrupted run")
	}
	if a.Version() != c.Version() {
		t.Fatal("a run saving checkpoints ends with other weights than one that does not")
	}
	other := smallHead(t, base, 1)
	other.cfg.Width = 16
	other.cfg.FFN = 32
	other.w = initWeights(&other.cfg)
	o, err := NewTrainer(other, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.LoadCheckpoint(ckpt); err == nil {
		t.Fatal("checkpoint of another configuration accepted")
	}
}

// TestStepSameForAnyWorkers checks that the gradients of a batch are summed
// in example order whatever the number of workers (the trained weights are
// bit-identical), and that a step keeps at most Workers per-sequence
// gradient buffers whatever the batch size.
func TestStepSameForAnyWorkers(t *testing.T) {
	ctx := context.Background()
	m, base := trainBase(t)
	ex, _, err := Features(ctx, m, smallHead(t, base, 1).Config(), patternSequences(7, 16), "")
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, workers := range []int{1, 3, 7} {
		tr, err := NewTrainer(smallHead(t, base, 1), m, TrainOptions{Steps: 4, Batch: 7, LR: 3e-3, Seed: 3, LearnAlpha: true, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		err = tr.Run(ctx, ex, func(StepReport) error {
			if len(tr.spare) > workers || cap(tr.spare) != workers {
				t.Errorf("%d workers: %d spare gradient buffers (room for %d)", workers, len(tr.spare), cap(tr.spare))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if tr.acc != nil || tr.spare != nil {
			t.Errorf("%d workers: the gradient buffers are kept after the run", workers)
		}
		h, err := tr.Head()
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, h.Version())
	}
	if versions[0] != versions[1] || versions[0] != versions[2] {
		t.Fatalf("weights differ with the number of workers: %v", versions)
	}
}
