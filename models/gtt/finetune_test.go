package gtt

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTuneGradientMatchesFiniteDifferences checks the fine-tuning
// gradient of the head, the RevIN scale and the shift against central
// differences of the forecast loss.
func TestTuneGradientMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m, err := New(tinyConfig, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.w.headW {
		m.w.headW[i] = float32(rng.NormFloat64() * 0.3)
	}
	tu := &Tuned{model: m, scale: []float32{1.3, 0.8}, shift: []float32{0.2, -0.1}}
	pl := tinyConfig.PatchLen
	var ins []Input
	var tgs [][][]float32
	for _, n := range []int{14, 9} {
		in := Input{Series: make([][]float32, 2)}
		tg := make([][]float32, 2)
		for c := range in.Series {
			in.Series[c] = make([]float32, n)
			for i := range in.Series[c] {
				in.Series[c][i] = float32(math.Sin(float64(i)*0.7+float64(c)) + 0.3*rng.NormFloat64())
			}
			tg[c] = make([]float32, pl)
			for k := range tg[c] {
				tg[c][k] = float32(rng.NormFloat64())
			}
		}
		in.Series[1][2] = float32(math.NaN())
		tg[0][1] = float32(math.NaN())
		ins, tgs = append(ins, in), append(tgs, tg)
	}
	loss := func() float64 {
		s, n, err := tu.nextPatchLoss(ins, tgs)
		if err != nil {
			t.Fatal(err)
		}
		return s / float64(n)
	}
	o := newTuneOptimizer(tu, TuneConfig{Steps: 1, LR: 1e-3})
	if err := o.gradient(ins, tgs); err != nil {
		t.Fatal(err)
	}
	names := []string{"head.weight", "head.bias", "revin.scale", "revin.shift"}
	for i, p := range o.params {
		for _, k := range []int{0, len(p) / 2, len(p) - 1} {
			old := p[k]
			const h = 1e-2
			p[k] = old + h
			up := loss()
			p[k] = old - h
			down := loss()
			p[k] = old
			num := (up - down) / (2 * h)
			got := float64(o.gsum[i][k])
			if math.Abs(num-got) > 2e-3+0.03*math.Abs(num) {
				t.Errorf("%s[%d]: gradient %.5f, finite difference %.5f", names[i], k, got, num)
			}
		}
	}
}

// patterned returns a series with a shape the pretrained model does not
// expect: a pulse train whose every third pulse is negative, over noise.
func patterned(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := make([]float32, n)
	for i := range s {
		v := 0.05 * rng.NormFloat64()
		if i%12 < 3 {
			v += 1
			if (i/12)%3 == 2 {
				v -= 2.5
			}
		}
		s[i] = float32(v + 10)
	}
	return s
}

func TestFineTuneBeatsBaseOnHeldOutTail(t *testing.T) {
	base, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	series := []Input{{Series: [][]float32{patterned(1600, 1)}}, {Series: [][]float32{patterned(1200, 2)}}}
	tu, err := FineTune(context.Background(), base, "gtt-small", series, TuneConfig{Steps: 120, Batch: 8, Holdout: 128, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	info := tu.Info()
	t.Logf("%+v", info)
	if !(info.TunedHoldoutLoss < 0.8*info.BaseHoldoutLoss) {
		t.Errorf("held-out MSE: tuned %.4f, base %.4f; want tuned below 80%% of base", info.TunedHoldoutLoss, info.BaseHoldoutLoss)
	}
	if !(info.TunedTrainLoss < info.BaseTrainLoss) {
		t.Errorf("train loss: tuned %.4f, base %.4f", info.TunedTrainLoss, info.BaseTrainLoss)
	}

	// Saved and loaded, it forecasts the same.
	dir := t.TempDir()
	if err := tu.Save(dir); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPredictor(dir)
	if err != nil {
		t.Fatal(err)
	}
	lt, ok := p.(*Tuned)
	if !ok || lt.Channels() != 1 || lt.Info().Base != "gtt-small" {
		t.Fatalf("loaded %T %+v", p, p)
	}
	in := []Input{{Series: [][]float32{patterned(900, 3)}}}
	a, err := tu.ForecastBatch(context.Background(), in, 100)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lt.ForecastBatch(context.Background(), in, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a[0][0], b[0][0]) {
		t.Errorf("saved model forecasts differently:\n%v\n%v", a[0][0][:8], b[0][0][:8])
	}
	// The tuned model needs its channel count.
	two := []Input{{Series: [][]float32{patterned(200, 4), patterned(200, 5)}}}
	if _, err := lt.ForecastBatch(context.Background(), two, 10); !errors.Is(err, ErrInvalid) {
		t.Errorf("two channels on a one-channel model: %v", err)
	}
}

// TestTunedIdentityIsBase: before any step (scale 1, shift 0, the base
// head) a tuned model forecasts exactly as its base.
func TestTunedIdentityIsBase(t *testing.T) {
	base, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	tu := &Tuned{model: base.clone(), scale: []float32{1, 1}, shift: []float32{0, 0}}
	in := []Input{{Series: [][]float32{patterned(300, 1), patterned(300, 2)}}}
	a, err := base.ForecastBatch(context.Background(), in, 70)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tu.ForecastBatch(context.Background(), in, 70)
	if err != nil {
		t.Fatal(err)
	}
	for c := range a[0] {
		for k := range a[0][c] {
			if math.Abs(float64(a[0][c][k]-b[0][c][k])) > 1e-4*math.Abs(float64(a[0][c][k]))+1e-5 {
				t.Fatalf("channel %d step %d: base %v, tuned %v", c, k, a[0][c][k], b[0][c][k])
			}
		}
	}
}

func TestFineTuneErrors(t *testing.T) {
	base, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := FineTune(ctx, base, "b", nil, TuneConfig{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no series: %v", err)
	}
	if _, err := FineTune(ctx, base, "b", []Input{{Series: [][]float32{patterned(100, 1)}}}, TuneConfig{}); !errors.Is(err, ErrTooShort) {
		t.Errorf("short series: %v", err)
	}
	mixed := []Input{{Series: [][]float32{patterned(400, 1)}}, {Series: [][]float32{patterned(400, 1), patterned(400, 2)}}}
	if _, err := FineTune(ctx, base, "b", mixed, TuneConfig{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("mixed channel counts: %v", err)
	}
}

// TestTuneWithoutHoldout: without a holdout the losses are NaN, saved as
// null and read back as NaN.
func TestTuneWithoutHoldout(t *testing.T) {
	base, _, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	tu, err := FineTune(context.Background(), base, "gtt-small", []Input{{Series: [][]float32{patterned(200, 1)}}}, TuneConfig{Steps: 2, Batch: 2, Holdout: -1})
	if err != nil {
		t.Fatal(err)
	}
	if info := tu.Info(); info.Holdout != 0 || !math.IsNaN(info.TunedHoldoutLoss) {
		t.Fatalf("%+v", info)
	}
	dir := t.TempDir()
	if err := tu.Save(dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, TuningFile))
	if err != nil || !strings.Contains(string(raw), `"tuned_holdout_loss": null`) {
		t.Fatalf("%v\n%s", err, raw)
	}
	p, err := LoadPredictor(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info := p.(*Tuned).Info(); !math.IsNaN(info.BaseHoldoutLoss) || math.IsNaN(info.TunedTrainLoss) || info.Steps != 2 {
		t.Errorf("read back %+v", info)
	}
}
