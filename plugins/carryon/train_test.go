package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/llm"
	"github.com/carryon/carryon/models/synth"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/host"
	"github.com/carryon/carryon/sdk/sdktest"
)

// trainFixture is a tiny random base model and the base features of a
// pattern it does not know (counting up in steps of 3).
type trainFixture struct {
	path     string
	model    *llm.Model
	base     carryon.Base
	examples []carryon.Example
}

func newTrainFixture(t *testing.T) *trainFixture {
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
	base, err := carryon.BaseFromGGUF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	m, err := llm.Load(path, llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	seqs := make([]carryon.Sequence, 12)
	for i := range seqs {
		toks := make([]int32, 24)
		trained := make([]bool, 23)
		for j := range toks {
			toks[j] = int32(10 + (i*7+3*j)%200)
		}
		for j := range trained {
			trained[j] = j >= 3 // the first targets are the "prompt"
		}
		seqs[i] = carryon.Sequence{Tokens: toks, Trained: trained}
	}
	cfg := carryon.DefaultConfig(base)
	ex, _, err := carryon.Features(context.Background(), m, cfg, seqs, "")
	if err != nil {
		t.Fatal(err)
	}
	return &trainFixture{path: path, model: m, base: base, examples: ex}
}

// send streams examples as TrainExamples (final-state rows).
func (fx *trainFixture) send(t *testing.T, run *host.TrainRun, ex []carryon.Example) {
	d := fx.base.Dim
	for _, e := range ex {
		rows := make([][]float32, len(e.Targets))
		for p := range rows {
			rows[p] = e.Hidden[p*d : (p+1)*d]
		}
		if err := run.Send(sdk.TrainExample{Hidden: rows, Targets: e.Targets}); err != nil {
			t.Fatal(err)
		}
	}
	if err := run.CloseSend(); err != nil {
		t.Fatal(err)
	}
}

// collect reads a run's updates to its end.
func collect(run *host.TrainRun) (losses []float64, result *sdk.HeadInfo, err error) {
	for {
		u, err := run.Recv()
		if errors.Is(err, io.EOF) {
			return losses, result, nil
		}
		if err != nil {
			return losses, result, err
		}
		if u.Result != nil {
			result = u.Result
		} else if u.Step > 0 {
			losses = append(losses, u.Loss)
		}
	}
}

// heldOutLoss is the loss of a head directory's head on examples, scored
// in the test (not by the plugin) through the base's LM head.
func (fx *trainFixture) heldOutLoss(t *testing.T, dir string, ex []carryon.Example) float64 {
	t.Helper()
	h, err := carryon.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	set := carryon.NewSet()
	set.Put("h", h)
	d := fx.base.Dim
	var sum float64
	var n int
	for i, e := range ex {
		rows := make([]carryon.Row, len(e.Targets))
		for p := range rows {
			rows[p] = carryon.Row{Head: "h", Seq: carryon.SeqID(i), Pos: p, Input: e.Hidden[p*d : (p+1)*d]}
		}
		deltas, err := set.Forward(context.Background(), rows)
		if err != nil {
			t.Fatal(err)
		}
		y := append([]float32(nil), e.Hidden...)
		for p, dl := range deltas {
			for k, v := range dl {
				y[p*d+k] += v
			}
		}
		s, k, err := fx.model.CrossEntropy(nil, y, e.Targets, 1)
		if err != nil {
			t.Fatal(err)
		}
		sum, n = sum+s, n+k
	}
	return sum / float64(n)
}

// TestTrainThroughThePlugin trains a new head through the Train stream
// (in-process gRPC, then the built binary), checks that the loss falls on
// held-out examples, that the result loads, and continues it from its
// directory and from a loaded head: a new version that is lower still.
func TestTrainThroughThePlugin(t *testing.T) {
	fx := newTrainFixture(t)
	train, held := fx.examples[:10], fx.examples[10:]
	sdktest.RunHead(t, newHeads(carryon.NewSet()), ".", func(t *testing.T, h sdk.Head) {
		ctx := context.Background()
		info, err := h.Info(ctx)
		if err != nil || !info.Training {
			t.Fatalf("Info %+v, %v: want Training", info, err)
		}
		hc := h.(*host.HeadClient)
		out := filepath.Join(t.TempDir(), "v1")
		run, err := hc.Train(ctx, sdk.TrainJob{OutDir: out, BasePath: fx.path, Options: map[string]string{
			"steps": "80", "batch": "4", "lr": "1e-2", "layers": "1", "dim": "32", "heads": "2", "seed": "3"}})
		if err != nil {
			t.Fatal(err)
		}
		fx.send(t, run, train)
		losses, res, err := collect(run)
		if err != nil {
			t.Fatal(err)
		}
		if len(losses) != 80 || res == nil {
			t.Fatalf("%d progress steps, result %v: want 80 and a result", len(losses), res)
		}
		first, last := losses[0], (losses[76]+losses[77]+losses[78]+losses[79])/4
		if last > first-1 {
			t.Fatalf("training loss %.3f -> %.3f: want at least 1 nat lower", first, last)
		}
		v, err := carryon.DirVersion(out)
		if err != nil || res.Version != v || res.Base.Fingerprint != fx.base.Fingerprint || res.Dim != fx.base.Dim {
			t.Fatalf("result %+v, directory version %s (%v)", res, v, err)
		}
		baseLoss := fx.baseLoss(t, held)
		v1 := fx.heldOutLoss(t, out, held)
		if v1 > baseLoss-0.3 {
			t.Fatalf("held-out loss %.3f, base %.3f: want at least 0.3 nat lower", v1, baseLoss)
		}

		// Continue from the directory, and from the loaded head.
		if _, err := h.Load(ctx, "v1", out); err != nil {
			t.Fatal(err)
		}
		for _, job := range []sdk.TrainJob{{Dir: out}, {Head: "v1"}} {
			job.OutDir, job.BasePath = filepath.Join(t.TempDir(), "v2"), fx.path
			job.Options = map[string]string{"epochs": "20", "batch": "4", "lr": "3e-3", "seed": "4"}
			run, err := hc.Train(ctx, job)
			if err != nil {
				t.Fatal(err)
			}
			fx.send(t, run, train)
			losses, res, err := collect(run)
			if err != nil {
				t.Fatal(err)
			}
			if len(losses) != 50 || res == nil || res.Version == v {
				t.Fatalf("%d steps (want 20 epochs of 10 in batches of 4 = 50), result %+v", len(losses), res)
			}
			if losses[0] > first-1 {
				t.Fatalf("continued run starts at loss %.3f, the first run started at %.3f: it did not start from v1", losses[0], first)
			}
			if v2 := fx.heldOutLoss(t, job.OutDir, held); v2 > v1+0.05 {
				t.Fatalf("continued version's held-out loss %.3f, v1 %.3f", v2, v1)
			}
		}
	})
}

func (fx *trainFixture) baseLoss(t *testing.T, ex []carryon.Example) float64 {
	var sum float64
	var n int
	for _, e := range ex {
		s, k, err := fx.model.CrossEntropy(nil, e.Hidden, e.Targets, 1)
		if err != nil {
			t.Fatal(err)
		}
		sum, n = sum+s, n+k
	}
	return sum / float64(n)
}

// TestTrainRefusesBadJobs: bad options, a wrong row width, an unknown
// start head and no examples are sdk.ErrInvalid / ErrUnknownHead errors.
func TestTrainRefusesBadJobs(t *testing.T) {
	fx := newTrainFixture(t)
	h := sdktest.ServeHead(t, newHeads(carryon.NewSet()))
	ctx := context.Background()
	try := func(job sdk.TrainJob, ex []sdk.TrainExample) error {
		job.BasePath, job.OutDir = fx.path, filepath.Join(t.TempDir(), "out")
		run, err := h.Train(ctx, job)
		if err != nil {
			return err
		}
		for _, e := range ex {
			if err := run.Send(e); err != nil {
				break
			}
		}
		_ = run.CloseSend()
		_, _, err = collect(run)
		return err
	}
	good := sdk.TrainExample{Hidden: [][]float32{make([]float32, 32), make([]float32, 32)}, Targets: []int32{5, 6}}
	cases := []struct {
		name string
		job  sdk.TrainJob
		ex   []sdk.TrainExample
		want error
	}{
		{"unknown option", sdk.TrainJob{Options: map[string]string{"nope": "1"}}, []sdk.TrainExample{good}, sdk.ErrInvalid},
		{"bad lr", sdk.TrainJob{Options: map[string]string{"lr": "-1"}}, []sdk.TrainExample{good}, sdk.ErrInvalid},
		{"steps and epochs", sdk.TrainJob{Options: map[string]string{"steps": "2", "epochs": "2"}}, []sdk.TrainExample{good}, sdk.ErrInvalid},
		{"bad shape", sdk.TrainJob{Options: map[string]string{"dim": "30", "heads": "4"}}, []sdk.TrainExample{good}, sdk.ErrInvalid},
		{"row width", sdk.TrainJob{Options: map[string]string{"steps": "1"}}, []sdk.TrainExample{{Hidden: [][]float32{make([]float32, 31)}, Targets: []int32{1}}}, sdk.ErrInvalid},
		{"no examples", sdk.TrainJob{Options: map[string]string{"steps": "1"}}, nil, sdk.ErrInvalid},
		{"unknown head", sdk.TrainJob{Head: "nope"}, []sdk.TrainExample{good}, sdk.ErrUnknownHead},
	}
	for _, c := range cases {
		if err := try(c.job, c.ex); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
