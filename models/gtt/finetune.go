package gtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/carryon/carryon/models/safetensors"
)

// Tuned is a model customized to one tenant's series as GTT is fine-tuned:
// the pretrained encoder, frozen, under a retrained output head and an
// affine RevIN, a learned scale and shift per value channel applied to the
// normalized values the encoder reads (and undone on its predictions). It
// forecasts inputs of exactly Channels value channels, in the order it was
// tuned on. Like Model, it is safe for concurrent forecasts.
type Tuned struct {
	model *Model
	scale []float32 // per value channel
	shift []float32
	info  TuneInfo
}

// TuneConfig sets a fine-tuning run.
type TuneConfig struct {
	// Steps is the number of optimization steps (default 300).
	Steps int
	// Batch is the number of windows per step (default 16).
	Batch int
	// LR is the peak learning rate of the head (default 1e-3); the RevIN
	// scale and shift learn 10× faster. It decays along a cosine to a
	// twentieth.
	LR float64
	// Holdout is the number of final steps of every series kept out of
	// training and used to score the base and the tuned model (default
	// PatchLen; 0 keeps the default, a negative value holds nothing out).
	Holdout int
	// Seed drives the choice of windows.
	Seed uint64
}

// TuneInfo says how a Tuned model was made.
type TuneInfo struct {
	// Base names the model the encoder came from.
	Base string `json:"base"`
	// Channels is the number of value channels the model forecasts.
	Channels int `json:"channels"`
	// Steps and Batch are the optimization steps taken and their windows.
	Steps int `json:"steps"`
	Batch int `json:"batch"`
	// Series and Windows count the tenant's series and the training
	// windows they offered.
	Series  int `json:"series"`
	Windows int `json:"windows"`
	// TrainLoss is the mean loss (MSE of the next patch, in each window's
	// normalized units) of the base and the tuned model on 256 training
	// windows.
	BaseTrainLoss  float64 `json:"base_train_loss"`
	TunedTrainLoss float64 `json:"tuned_train_loss"`
	// Holdout is the number of held-out final steps per series, and the
	// holdout losses the MSE of forecasting them (in the units of each
	// series' history before them); NaN (null) without a holdout.
	Holdout          int     `json:"holdout"`
	BaseHoldoutLoss  float64 `json:"base_holdout_loss"`
	TunedHoldoutLoss float64 `json:"tuned_holdout_loss"`
}

// MarshalJSON writes NaN losses as null.
func (ti TuneInfo) MarshalJSON() ([]byte, error) {
	type plain TuneInfo
	m := map[string]any{}
	c := ti
	for _, f := range []*float64{&c.BaseTrainLoss, &c.TunedTrainLoss, &c.BaseHoldoutLoss, &c.TunedHoldoutLoss} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
		}
	}
	b, err := json.Marshal(plain(c))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range map[string]float64{
		"base_train_loss": ti.BaseTrainLoss, "tuned_train_loss": ti.TunedTrainLoss,
		"base_holdout_loss": ti.BaseHoldoutLoss, "tuned_holdout_loss": ti.TunedHoldoutLoss,
	} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			m[k] = nil
		} else {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads null losses as NaN.
func (ti *TuneInfo) UnmarshalJSON(b []byte) error {
	type noMethods TuneInfo
	var p struct {
		noMethods
		BaseTrainLoss    *float64 `json:"base_train_loss"`
		TunedTrainLoss   *float64 `json:"tuned_train_loss"`
		BaseHoldoutLoss  *float64 `json:"base_holdout_loss"`
		TunedHoldoutLoss *float64 `json:"tuned_holdout_loss"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*ti = TuneInfo(p.noMethods)
	val := func(v *float64) float64 {
		if v == nil {
			return math.NaN()
		}
		return *v
	}
	ti.BaseTrainLoss, ti.TunedTrainLoss = val(p.BaseTrainLoss), val(p.TunedTrainLoss)
	ti.BaseHoldoutLoss, ti.TunedHoldoutLoss = val(p.BaseHoldoutLoss), val(p.TunedHoldoutLoss)
	return nil
}

// ErrTooShort is wrapped by FineTune's error when the series offer no
// training window.
var ErrTooShort = errors.New("series too short to fine-tune on")

// tuneMinHistory is the shortest history a training window reads.
const tuneMinHistory = 32

// FineTune customizes base to series (one Input each, all with the same
// number of value channels, which the returned model then requires): it
// freezes the encoder and trains a copy of the output head together with an
// affine RevIN (scale 1 and shift 0 at the start, so the first step is the
// base model) with Adam (no weight decay, gradient norm clipped at 1) on
// next-patch windows cut from the series' histories (every origin with at
// least 32 steps before it and a full patch after it, before the holdout).
// Timestamps are read as in forecasting; known covariates are refused.
// baseName is recorded in the result's TuneInfo. It stops between steps
// when ctx is done.
func FineTune(ctx context.Context, base *Model, baseName string, series []Input, tc TuneConfig) (*Tuned, error) {
	cfg := base.cfg
	pl := cfg.PatchLen
	if tc.Steps <= 0 {
		tc.Steps = 300
	}
	if tc.Batch <= 0 {
		tc.Batch = 16
	}
	if tc.LR <= 0 {
		tc.LR = 1e-3
	}
	switch {
	case tc.Holdout == 0:
		tc.Holdout = pl
	case tc.Holdout < 0:
		tc.Holdout = 0
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("fine-tune gtt: no series: %w", ErrInvalid)
	}
	channels := len(series[0].Series)
	type origin struct{ item, at int }
	var origins []origin
	for i, in := range series {
		if len(in.Series) != channels {
			return nil, fmt.Errorf("fine-tune gtt: series %d has %d channels, series 0 has %d: %w", i, len(in.Series), channels, ErrInvalid)
		}
		if _, err := newRollout(cfg, in, pl); err != nil {
			return nil, fmt.Errorf("fine-tune gtt: series %d: %w", i, err)
		}
		if len(in.Known) > 0 {
			return nil, fmt.Errorf("fine-tune gtt: series %d: known covariates are not used in fine-tuning: %w", i, ErrInvalid)
		}
		end := len(in.Series[0]) - tc.Holdout
		for at := tuneMinHistory; at+pl <= end; at++ {
			origins = append(origins, origin{i, at})
		}
	}
	if len(origins) == 0 {
		return nil, fmt.Errorf("fine-tune gtt: %w: each window needs %d steps of history and %d to predict, before the %d held-out steps", ErrTooShort, tuneMinHistory, pl, tc.Holdout)
	}

	t := &Tuned{
		model: base.clone(),
		scale: make([]float32, channels),
		shift: make([]float32, channels),
	}
	for c := range t.scale {
		t.scale[c] = 1
	}
	rng := rand.New(rand.NewPCG(tc.Seed, 0x74756e65))
	// window cuts the training window ending at o, and its targets; ok is
	// false when a channel has no observed value in the window.
	window := func(o origin) (w Input, target [][]float32, ok bool) {
		in := series[o.item]
		w = Input{Series: make([][]float32, channels)}
		target = make([][]float32, channels)
		lo := max(0, o.at-cfg.Context)
		for c, s := range in.Series {
			w.Series[c] = s[lo:o.at:o.at]
			target[c] = s[o.at : o.at+pl]
			if !slices.ContainsFunc(w.Series[c], usable) {
				return w, target, false
			}
		}
		if in.Timestamps != nil {
			w.Timestamps = in.Timestamps[lo:o.at:o.at]
		}
		return w, target, true
	}
	eval := slices.Clone(origins)
	rng.Shuffle(len(eval), func(i, j int) { eval[i], eval[j] = eval[j], eval[i] })
	eval = eval[:min(len(eval), 256)]
	evalLoss := func() (float64, error) {
		var sum float64
		n := 0
		for lo := 0; lo < len(eval); lo += 32 {
			var ins []Input
			var tgs [][][]float32
			for _, o := range eval[lo:min(lo+32, len(eval))] {
				if w, tg, ok := window(o); ok {
					ins, tgs = append(ins, w), append(tgs, tg)
				}
			}
			if len(ins) == 0 {
				continue
			}
			s, k, err := t.nextPatchLoss(ins, tgs)
			if err != nil {
				return 0, err
			}
			sum += s
			n += k
		}
		return sum / float64(max(n, 1)), nil
	}
	var err error
	if t.info.BaseTrainLoss, err = evalLoss(); err != nil {
		return nil, fmt.Errorf("fine-tune gtt: %w", err)
	}

	opt := newTuneOptimizer(t, tc)
	for step := 0; step < tc.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("fine-tune gtt: %w", err)
		}
		var ins []Input
		var tgs [][][]float32
		for k := 0; k < 4*tc.Batch && len(ins) < tc.Batch; k++ {
			if w, tg, ok := window(origins[rng.IntN(len(origins))]); ok {
				ins, tgs = append(ins, w), append(tgs, tg)
			}
		}
		if len(ins) == 0 {
			continue
		}
		if err := opt.step(ins, tgs); err != nil {
			return nil, fmt.Errorf("fine-tune gtt: step %d: %w", step, err)
		}
	}
	if t.info.TunedTrainLoss, err = evalLoss(); err != nil {
		return nil, fmt.Errorf("fine-tune gtt: %w", err)
	}
	t.info.Base, t.info.Channels = baseName, channels
	t.info.Steps, t.info.Batch, t.info.Series, t.info.Windows = tc.Steps, tc.Batch, len(series), len(origins)
	t.info.Holdout = tc.Holdout
	t.info.BaseHoldoutLoss, t.info.TunedHoldoutLoss = math.NaN(), math.NaN()
	if tc.Holdout > 0 {
		if t.info.BaseHoldoutLoss, err = holdoutLoss(ctx, base, series, tc.Holdout); err != nil {
			return nil, fmt.Errorf("fine-tune gtt: %w", err)
		}
		if t.info.TunedHoldoutLoss, err = holdoutLoss(ctx, t, series, tc.Holdout); err != nil {
			return nil, fmt.Errorf("fine-tune gtt: %w", err)
		}
	}
	return t, nil
}

// holdoutLoss returns the MSE of p's forecasts of the last holdout steps of
// every series from the history before them, each channel's errors divided
// by the standard deviation of that history.
func holdoutLoss(ctx context.Context, p Predictor, series []Input, holdout int) (float64, error) {
	ins := make([]Input, len(series))
	for i, in := range series {
		ins[i] = cutInput(in, len(in.Series[0])-holdout, holdout)
	}
	out, err := forecastInChunks(ctx, p, ins, holdout)
	if err != nil {
		return 0, fmt.Errorf("holdout forecast: %w", err)
	}
	var sum float64
	n := 0
	for i, in := range series {
		t := len(in.Series[0]) - holdout
		for c, s := range in.Series {
			_, sd := revinStats(s[max(0, t-p.Config().Context):t])
			for h := 0; h < holdout; h++ {
				if a := s[t+h]; usable(a) {
					e := (float64(a) - float64(out[i][c][h])) / sd
					sum += e * e
					n++
				}
			}
		}
	}
	if n == 0 {
		return math.NaN(), nil
	}
	return sum / float64(n), nil
}

// clone returns a model with its own copy of m's weights.
func (m *Model) clone() *Model {
	c := newEmpty(m.cfg)
	copy(c.params, m.params)
	c.threads = m.threads
	return c
}

// Config returns the model's shape.
func (t *Tuned) Config() Config { return t.model.cfg }

// Channels returns the number of value channels the model forecasts.
func (t *Tuned) Channels() int { return len(t.scale) }

// Info says how the model was tuned.
func (t *Tuned) Info() TuneInfo { return t.info }

// Affine returns copies of the RevIN scale and shift per value channel.
func (t *Tuned) Affine() (scale, shift []float32) {
	return slices.Clone(t.scale), slices.Clone(t.shift)
}

// WithThreads returns a model that shares t's weights and splits its work
// over n goroutines.
func (t *Tuned) WithThreads(n int) *Tuned {
	c := *t
	c.model = t.model.WithThreads(n)
	return &c
}

// ForecastBatch predicts the next horizon steps of every value channel of
// every input, as Model.ForecastBatch does, through the tuned head and
// affine RevIN. Every input must have Channels value channels.
func (t *Tuned) ForecastBatch(ctx context.Context, inputs []Input, horizon int) ([][][]float32, error) {
	m := t.model
	cfg := m.cfg
	if horizon < 1 || horizon > MaxHorizon {
		return nil, fmt.Errorf("forecast: horizon %d is outside [1, %d]: %w", horizon, MaxHorizon, ErrInvalid)
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("forecast: no inputs: %w", ErrInvalid)
	}
	roll := make([]*rollout, len(inputs))
	for i, in := range inputs {
		if len(in.Series) != len(t.scale) {
			return nil, fmt.Errorf("forecast: input %d has %d channels, the tuned model forecasts %d: %w", i, len(in.Series), len(t.scale), ErrInvalid)
		}
		r, err := newRollout(cfg, in, horizon)
		if err != nil {
			return nil, fmt.Errorf("forecast: input %d: %w", i, err)
		}
		roll[i] = r
	}
	b := newBatch(cfg)
	ws := &workspace{}
	var mean, scale []float64
	for done := 0; done < horizon; done += cfg.PatchLen {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("forecast: %w", err)
		}
		b.reset()
		for _, r := range roll {
			b.addGroup(r.window())
			t.applyAffine(b, len(b.groups)-1, nil)
		}
		m.forward(b, ws)
		// x = ((y − shift)/scale)·sd + mean = y·(sd/scale) + (mean − shift·sd/scale)
		mean, scale = append(mean[:0], b.mean...), append(scale[:0], b.scale...)
		row := 0
		for _, r := range roll {
			for c := 0; c < r.targets; c++ {
				g, s := float64(t.scale[c]), float64(t.shift[c])
				sd := scale[row+c]
				scale[row+c] = sd / g
				mean[row+c] -= s * sd / g
			}
			if err := r.advance(ws.out[row*cfg.PatchLen:], mean[row:], scale[row:]); err != nil {
				return nil, fmt.Errorf("forecast: %w", err)
			}
			row += len(r.window())
		}
	}
	out := make([][][]float32, len(roll))
	for i, r := range roll {
		out[i] = r.result()
	}
	return out, nil
}

// applyAffine applies the RevIN scale and shift to the value channels of
// group gi of b (observed steps and the last value; masked steps stay 0).
// When z is not nil, it receives the values before the change, per token
// (PatchLen each) of the value channels, then per value channel the last
// value, for the backward pass.
func (t *Tuned) applyAffine(b *batch, gi int, z *[]float32) {
	g := b.groups[gi]
	pl := b.cfg.PatchLen
	for c := 0; c < len(t.scale); c++ {
		sc, sh := t.scale[c], t.shift[c]
		for p := 0; p < g.patches; p++ {
			tok := g.tok + c*g.patches + p
			x := b.x[tok*2*pl : tok*2*pl+2*pl]
			if z != nil {
				*z = append(*z, x[:pl]...)
			}
			for k := 0; k < pl; k++ {
				if x[pl+k] != 0 {
					x[k] = sc*x[k] + sh
				}
			}
		}
	}
	for c := 0; c < len(t.scale); c++ {
		row := g.row + c
		if z != nil {
			*z = append(*z, b.lastVal[row])
		}
		b.lastVal[row] = t.scale[c]*b.lastVal[row] + t.shift[c]
	}
}

// nextPatchLoss returns the summed squared error of the next-patch
// predictions against targets (in each window's normalized units, clipped
// as in pretraining) and the number of terms.
func (t *Tuned) nextPatchLoss(ins []Input, targets [][][]float32) (float64, int, error) {
	out, err := t.ForecastBatch(context.Background(), ins, t.model.cfg.PatchLen)
	if err != nil {
		return 0, 0, err
	}
	var sum float64
	n := 0
	for i, in := range ins {
		for c, s := range in.Series {
			mean, sd := revinStats(s[max(0, len(s)-t.model.cfg.Context):])
			for k, v := range targets[i][c] {
				if !usable(v) {
					continue
				}
				zt := clip10((float64(v) - mean) / sd)
				e := (float64(out[i][c][k])-mean)/sd - zt
				sum += e * e
				n++
			}
		}
	}
	return sum, n, nil
}

func clip10(z float64) float64 { return math.Max(-10, math.Min(10, z)) }

// tuneOptimizer trains a Tuned model's head, scale and shift with Adam;
// the encoder's gradients are computed by the backward pass and dropped.
type tuneOptimizer struct {
	t     *Tuned
	tc    TuneConfig
	steps int
	grads []float32
	gv    paramViews
	// trainable tensors: the head weight and bias, the scale, the shift
	params, gsum, mom, vel [4][]float32
	lr                     [4]float64
	ws                     workspace
	b                      *batch
	dout                   []float32
}

func newTuneOptimizer(t *Tuned, tc TuneConfig) *tuneOptimizer {
	m := t.model
	o := &tuneOptimizer{t: t, tc: tc, grads: make([]float32, len(m.params)), b: newBatch(m.cfg)}
	o.gv = bind(m.cfg, m.specs, o.grads)
	o.ws.train = true
	o.params = [4][]float32{m.w.headW, m.w.headB, t.scale, t.shift}
	o.lr = [4]float64{tc.LR, tc.LR, 10 * tc.LR, 10 * tc.LR}
	for i, p := range o.params {
		o.gsum[i] = make([]float32, len(p))
		o.mom[i] = make([]float32, len(p))
		o.vel[i] = make([]float32, len(p))
	}
	return o
}

// step runs one optimization step on windows ins and their next-patch
// targets (per value channel).
func (o *tuneOptimizer) step(ins []Input, targets [][][]float32) error {
	if err := o.gradient(ins, targets); err != nil {
		return err
	}
	o.apply()
	return nil
}

// gradient sets o.gsum to the gradient of the mean squared next-patch error
// on ins with respect to the trainable tensors.
func (o *tuneOptimizer) gradient(ins []Input, targets [][][]float32) error {
	t, m := o.t, o.t.model
	cfg := m.cfg
	pl, d := cfg.PatchLen, cfg.Dim
	b := o.b
	b.reset()
	var z []float32
	for _, in := range ins {
		r, err := newRollout(cfg, in, pl)
		if err != nil {
			return err
		}
		b.addGroup(r.window())
		t.applyAffine(b, len(b.groups)-1, &z)
	}
	m.forward(b, &o.ws)
	y := o.ws.out
	o.dout = grow(o.dout, len(y))
	clear(o.dout)
	for i := range o.gsum {
		clear(o.gsum[i])
	}
	dScale, dShift := o.gsum[2], o.gsum[3]
	// The loss is the MSE of ẑ = (y − shift)/scale against the normalized
	// targets.
	count := 0
	for _, tg := range targets {
		for _, ch := range tg {
			for _, v := range ch {
				if usable(v) {
					count++
				}
			}
		}
	}
	if count == 0 {
		return ErrNoTargets
	}
	inv := 2 / float64(count)
	for gi, g := range b.groups {
		for c := 0; c < len(t.scale); c++ {
			row := g.row + c
			sc, sh := float64(t.scale[c]), float64(t.shift[c])
			mean, sd := b.mean[row], b.scale[row]
			for k, v := range targets[gi][c] {
				if !usable(v) {
					continue
				}
				zt := clip10((float64(v) - mean) / sd)
				yk := float64(y[row*pl+k])
				zh := (yk - sh) / sc
				dz := inv * (zh - zt)
				o.dout[row*pl+k] = float32(dz / sc)
				dScale[c] += float32(-dz * zh / sc)
				dShift[c] += float32(-dz / sc)
			}
		}
	}
	clear(o.grads)
	m.backward(b, &o.ws, o.dout, o.gv)
	copy(o.gsum[0], o.gv.headW)
	copy(o.gsum[1], o.gv.headB)
	// The shifted last value enters every predicted step; the affine
	// inputs enter through the embedding: dx = dres·embedWᵀ on the value
	// half of each token.
	zi := 0
	for _, g := range b.groups {
		for c := 0; c < len(t.scale); c++ {
			for p := 0; p < g.patches; p++ {
				tok := g.tok + c*g.patches + p
				dres := o.ws.dres[tok*d : (tok+1)*d]
				x := b.x[tok*2*pl : tok*2*pl+2*pl]
				for k := 0; k < pl; k++ {
					if x[pl+k] != 0 {
						var dx float32
						wrow := m.w.embedW[k*d : (k+1)*d]
						for j, v := range dres {
							dx += v * wrow[j]
						}
						dScale[c] += dx * z[zi+k]
						dShift[c] += dx
					}
				}
				zi += pl
			}
		}
		for c := 0; c < len(t.scale); c++ {
			row := g.row + c
			var s float32
			for _, v := range o.dout[row*pl : (row+1)*pl] {
				s += v
			}
			dScale[c] += s * z[zi]
			dShift[c] += s
			zi++
		}
	}
	return nil
}

// apply takes one Adam step on the trainable tensors, with a cosine decay
// to a twentieth of the peak rate.
func (o *tuneOptimizer) apply() {
	o.steps++
	const b1, b2, eps = 0.9, 0.98, 1e-8
	frac := 0.5 * (1 + math.Cos(math.Pi*math.Min(1, float64(o.steps-1)/float64(max(1, o.tc.Steps)))))
	bc1 := 1 - math.Pow(b1, float64(o.steps))
	bc2 := 1 - math.Pow(b2, float64(o.steps))
	var sq float64
	for _, g := range o.gsum {
		for _, v := range g {
			sq += float64(v) * float64(v)
		}
	}
	clip := float32(1)
	if n := math.Sqrt(sq); n > 1 {
		clip = float32(1 / n)
	}
	for i, p := range o.params {
		lr := o.lr[i] * (0.05 + 0.95*frac)
		step := float32(lr / bc1)
		for k := range p {
			g := o.gsum[i][k] * clip
			o.mom[i][k] = b1*o.mom[i][k] + (1-b1)*g
			o.vel[i][k] = b2*o.vel[i][k] + (1-b2)*g*g
			p[k] -= step * o.mom[i][k] / (float32(math.Sqrt(float64(o.vel[i][k])/bc2)) + eps)
		}
	}
	// A scale near zero would blow up the de-normalization.
	for c, s := range o.t.scale {
		if s < 0.05 {
			o.t.scale[c] = 0.05
		}
	}
}

// File names of a tuned model directory.
const (
	// TuningFile holds the affine RevIN and the TuneInfo of a tuned model
	// directory, beside WeightsFile.
	TuningFile   = "tuning.json"
	tuningFormat = "carryon-gtt-tuning-1"
)

type tuningJSON struct {
	Format string    `json:"format"`
	Scale  []float32 `json:"revin_scale"`
	Shift  []float32 `json:"revin_shift"`
	Info   TuneInfo  `json:"info"`
}

// Save writes the tuned model to dir (created if needed): WeightsFile (the
// whole model, F32, which Load reads as a plain model with the tuned head)
// and TuningFile.
func (t *Tuned) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save tuned gtt model %s: %w", dir, err)
	}
	if err := t.model.Save(filepath.Join(dir, WeightsFile), safetensors.F32, map[string]string{"tuned_from": t.info.Base}); err != nil {
		return fmt.Errorf("save tuned gtt model: %w", err)
	}
	b, err := json.MarshalIndent(tuningJSON{Format: tuningFormat, Scale: t.scale, Shift: t.shift, Info: t.info}, "", "  ")
	if err != nil {
		return fmt.Errorf("save tuned gtt model %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, TuningFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save tuned gtt model: %w", err)
	}
	return nil
}

// LoadPredictor reads a model directory: a *Tuned when it holds TuningFile,
// else the *Model of its WeightsFile. path may also be a weights file.
func LoadPredictor(path string) (Predictor, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load gtt model: %w", err)
	}
	if !st.IsDir() {
		return Load(path)
	}
	raw, err := os.ReadFile(filepath.Join(path, TuningFile))
	if errors.Is(err, os.ErrNotExist) {
		return Load(path)
	}
	if err != nil {
		return nil, fmt.Errorf("load tuned gtt model: %w", err)
	}
	var tj tuningJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, fmt.Errorf("load tuned gtt model %s: %w", filepath.Join(path, TuningFile), err)
	}
	if tj.Format != tuningFormat {
		return nil, fmt.Errorf("load tuned gtt model %s: format %q, want %q", path, tj.Format, tuningFormat)
	}
	if len(tj.Scale) == 0 || len(tj.Scale) != len(tj.Shift) || len(tj.Scale) > MaxChannels {
		return nil, fmt.Errorf("load tuned gtt model %s: %d scales and %d shifts", path, len(tj.Scale), len(tj.Shift))
	}
	for c, s := range tj.Scale {
		if !(s > 0) || math.IsInf(float64(s), 0) || !usable(tj.Shift[c]) {
			return nil, fmt.Errorf("load tuned gtt model %s: channel %d has scale %v and shift %v", path, c, s, tj.Shift[c])
		}
	}
	m, err := Load(path)
	if err != nil {
		return nil, err
	}
	tj.Info.Channels = len(tj.Scale)
	return &Tuned{model: m, scale: tj.Scale, shift: tj.Shift, info: tj.Info}, nil
}
