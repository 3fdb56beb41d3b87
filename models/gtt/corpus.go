package gtt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/carryon/carryon/models/tsdata"
)

// Corpus draws pretraining samples from a weighted mix of sources:
// synthetic series (tsdata.Synthesize) and tables of real series. Tables
// are added by the caller and must hold training data only.
type Corpus struct {
	cfg     Config
	sources []*corpusSource
	// MaxChannels bounds the value channels of one sample.
	MaxChannels int
	// FullContext is the share of samples that use a full context; the
	// rest use a log-uniform length in [32, Context].
	FullContext float64
	// TimeFeatures is the share of samples with timestamps that also read
	// the time-feature channels.
	TimeFeatures float64
	// Missing is the share of samples with a span of missing values.
	Missing float64
	// Rollout is the share of samples whose last one to RolloutPatches
	// patches before the target are to be replaced by the model's own
	// forecast (Sample.Rollout); Pretrain does the replacing. NewCorpus
	// sets it to 0 (the embedded checkpoint's recipe).
	Rollout float64
	// RolloutPatches bounds the patches of such a sample's rollout.
	RolloutPatches int
}

// corpusSource is one weighted source: synthetic, or a set of tables.
type corpusSource struct {
	name      string
	weight    float64
	synthetic bool
	tables    []table
	total     int // rows over all tables, for length-weighted choice
}

// table is channels of equal length with optional timestamps.
type table struct {
	cols  [][]float64
	times []time.Time
}

// NewCorpus returns a corpus for models of shape cfg with one source, the
// synthetic generator, at the given weight.
func NewCorpus(cfg Config, syntheticWeight float64) *Corpus {
	c := &Corpus{cfg: cfg, MaxChannels: 16, FullContext: 0.65, TimeFeatures: 0.5, Missing: 0.05,
		RolloutPatches: 3}
	if syntheticWeight > 0 {
		c.sources = append(c.sources, &corpusSource{name: "synthetic", weight: syntheticWeight, synthetic: true})
	}
	return c
}

// AddFrame adds rows [lo, hi) of f as a source of the given weight.
func (c *Corpus) AddFrame(name string, f *tsdata.Frame, lo, hi int, weight float64) error {
	if lo < 0 || hi-lo < 2 || hi > f.Len() {
		return fmt.Errorf("corpus source %s: rows [%d, %d) of %d", name, lo, hi, f.Len())
	}
	t := table{cols: make([][]float64, len(f.Columns))}
	for i, col := range f.Columns {
		t.cols[i] = col[lo:hi]
	}
	if f.Times != nil {
		t.times = f.Times[lo:hi]
	}
	c.sources = append(c.sources, &corpusSource{name: name, weight: weight, tables: []table{t}, total: hi - lo})
	return nil
}

// AddSeries adds univariate series as one source of the given weight.
func (c *Corpus) AddSeries(name string, series []tsdata.Series, weight float64) error {
	s := &corpusSource{name: name, weight: weight}
	for _, x := range series {
		if len(x.Values) < 2 {
			continue
		}
		s.tables = append(s.tables, table{cols: [][]float64{x.Values}})
		s.total += len(x.Values)
	}
	if len(s.tables) == 0 {
		return fmt.Errorf("corpus source %s: no usable series", name)
	}
	c.sources = append(c.sources, s)
	return nil
}

// Describe lists the sources and their shares of samples.
func (c *Corpus) Describe() string {
	var sum float64
	for _, s := range c.sources {
		sum += s.weight
	}
	var b strings.Builder
	for i, s := range c.sources {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.0f%%", s.name, 100*s.weight/sum)
	}
	return b.String()
}

// Sample draws one training sample.
func (c *Corpus) Sample(rng *rand.Rand) Sample {
	var sum float64
	for _, s := range c.sources {
		sum += s.weight
	}
	r := rng.Float64() * sum
	src := c.sources[len(c.sources)-1]
	for _, s := range c.sources {
		if r < s.weight {
			src = s
			break
		}
		r -= s.weight
	}
	ctxLen := c.cfg.Context
	if rng.Float64() >= c.FullContext {
		ctxLen = int(math.Exp(math.Log(32) + rng.Float64()*(math.Log(float64(c.cfg.Context))-math.Log(32))))
	}
	pl := c.cfg.PatchLen
	roll := 0
	if c.Rollout > 0 && c.RolloutPatches > 0 && rng.Float64() < c.Rollout {
		roll = (1 + rng.IntN(c.RolloutPatches)) * pl
	}
	var cols [][]float64
	var times []time.Time
	if src.synthetic {
		ch := 1
		if rng.Float64() < 0.5 {
			ch = 2 + rng.IntN(max(1, c.MaxChannels-1))
		}
		syn := tsdata.Synthesize(rng, ctxLen+roll+pl, ch)
		cols, times = syn.Series, syn.Times
	} else {
		cols, times = c.realWindow(rng, src, ctxLen+roll)
	}
	s := c.finish(rng, cols, times)
	// A rollout needs at least a patch of real history before it.
	if n := len(s.Series[0]); roll > 0 && n-roll >= pl {
		s.Rollout = roll
	}
	return s
}

// realWindow cuts a window of up to ctxLen+PatchLen rows (and a channel
// subset) from one of src's tables, sometimes averaging k rows into one to
// vary the sampling frequency.
func (c *Corpus) realWindow(rng *rand.Rand, src *corpusSource, ctxLen int) ([][]float64, []time.Time) {
	pl := c.cfg.PatchLen
	// A table, chosen by length.
	r := rng.IntN(src.total)
	t := src.tables[len(src.tables)-1]
	for _, tb := range src.tables {
		if r < len(tb.cols[0]) {
			t = tb
			break
		}
		r -= len(tb.cols[0])
	}
	n := len(t.cols[0])
	k := 1
	if ks := []int{2, 3, 6}; n >= 4*(ctxLen+pl) && rng.Float64() < 0.3 {
		k = ks[rng.IntN(len(ks))]
	}
	rows := n / k
	minCtx := min(16, max(1, rows-pl))
	if rows < minCtx+pl {
		// Too short for a target: use what there is as a context-only
		// window with a partial target.
		minCtx = max(1, rows/2)
	}
	end := minCtx + pl + rng.IntN(max(1, rows-minCtx-pl+1))
	end = min(end, rows)
	start := max(0, end-pl-ctxLen)
	// Channels: one, or a random subset.
	chans := rng.Perm(len(t.cols))
	nc := 1
	if len(t.cols) > 1 && rng.Float64() < 0.7 {
		nc = 2 + rng.IntN(min(len(t.cols), c.MaxChannels)-1)
	}
	chans = chans[:nc]
	cols := make([][]float64, nc)
	for i, ch := range chans {
		col := t.cols[ch]
		x := make([]float64, end-start)
		for j := range x {
			row := (start + j) * k
			var s float64
			cnt := 0
			for q := 0; q < k; q++ {
				if v := col[row+q]; !math.IsNaN(v) {
					s += v
					cnt++
				}
			}
			if cnt == 0 {
				x[j] = math.NaN()
			} else {
				x[j] = s / float64(cnt)
			}
		}
		cols[i] = x
	}
	var times []time.Time
	if t.times != nil {
		times = make([]time.Time, end-start)
		for j := range times {
			times[j] = t.times[(start+j)*k]
		}
	}
	return cols, times
}

// finish splits a window into context and target (the last PatchLen steps,
// or fewer for short windows, padded with NaN), adds time features and
// missing values, and sometimes flips the sign.
func (c *Corpus) finish(rng *rand.Rand, cols [][]float64, times []time.Time) Sample {
	pl := c.cfg.PatchLen
	n := len(cols[0])
	tgtLen := pl
	if n < pl+16 {
		tgtLen = n / 2 // a short series: half context, half target
	}
	ctxN := n - tgtLen
	flip := 1.0
	if rng.Float64() < 0.2 {
		flip = -1
	}
	s := Sample{}
	for _, col := range cols {
		x := make([]float32, ctxN)
		for i := range x {
			x[i] = float32(flip * col[i])
		}
		y := make([]float32, pl)
		for i := range y {
			y[i] = float32(math.NaN())
			if i < tgtLen {
				y[i] = float32(flip * col[ctxN+i])
			}
		}
		s.Series = append(s.Series, x)
		s.Target = append(s.Target, y)
	}
	if rng.Float64() < c.Missing && ctxN > 8 {
		for _, x := range s.Series {
			if rng.IntN(2) == 0 {
				continue
			}
			lo := rng.IntN(ctxN - 4)
			hi := min(ctxN-1, lo+1+rng.IntN(max(1, ctxN/4)))
			for i := lo; i < hi; i++ {
				x[i] = float32(math.NaN())
			}
		}
	}
	if times != nil && rng.Float64() < c.TimeFeatures {
		if cal, err := NewCalendar(times[:ctxN], c.cfg.Context); err == nil && cal.Channels() > 0 {
			feats := make([][]float32, cal.Channels())
			for i := range feats {
				feats[i] = make([]float32, ctxN)
			}
			cal.Fill(feats, times[:ctxN])
			s.Series = append(s.Series, feats...)
		}
	}
	return s
}

// AddSharedData adds the real training sets found under dir (the layout of
// the shared tsdata directory): the train split (first 70% of rows) of the
// long tables exchange_rate, national_illness and weather, the M4 hourly
// and weekly training files, and the first 70% of each classic series.
// Missing files are skipped and reported in the returned list of notes.
func (c *Corpus) AddSharedData(dir string, weights map[string]float64) ([]string, error) {
	var notes []string
	long := []struct{ name, path string }{
		{"exchange_rate", "exchange_rate/exchange_rate.csv"},
		{"illness", "illness/national_illness.csv"},
		{"weather", "weather/weather.values_noheader.csv"},
	}
	for _, l := range long {
		w := weights[l.name]
		if w <= 0 {
			continue
		}
		f, err := tsdata.LoadCSV(filepath.Join(dir, l.path))
		if err != nil {
			notes = append(notes, fmt.Sprintf("skipped %s: %v", l.name, err))
			continue
		}
		sp := tsdata.RatioSplit(f.Len())
		if err := c.AddFrame(l.name, f, 0, sp.Train, w); err != nil {
			return notes, err
		}
		notes = append(notes, fmt.Sprintf("%s: %d train rows x %d columns", l.name, sp.Train, len(f.Columns)))
	}
	for _, m := range []struct{ name, path string }{{"m4_hourly", "m4/Hourly-train.csv"}, {"m4_weekly", "m4/Weekly-train.csv"}} {
		w := weights[m.name]
		if w <= 0 {
			continue
		}
		s, err := tsdata.LoadWideCSV(filepath.Join(dir, m.path))
		if err != nil {
			notes = append(notes, fmt.Sprintf("skipped %s: %v", m.name, err))
			continue
		}
		if err := c.AddSeries(m.name, s, w); err != nil {
			return notes, err
		}
		notes = append(notes, fmt.Sprintf("%s: %d series (training file)", m.name, len(s)))
	}
	if w := weights["classic"]; w > 0 {
		files, _ := filepath.Glob(filepath.Join(dir, "classic", "*.csv"))
		var series []tsdata.Series
		for _, p := range files {
			f, err := tsdata.LoadCSV(p)
			if err != nil {
				notes = append(notes, fmt.Sprintf("skipped %s: %v", p, err))
				continue
			}
			rows := tsdata.RatioSplit(f.Len()).Train
			for i, col := range f.Columns {
				series = append(series, tsdata.Series{Name: filepath.Base(p) + ":" + f.Names[i], Values: col[:rows]})
			}
		}
		if len(series) > 0 {
			if err := c.AddSeries("classic", series, w); err != nil {
				return notes, err
			}
			notes = append(notes, fmt.Sprintf("classic: %d series (first 70%% of each)", len(series)))
		}
	}
	return notes, nil
}

// DefaultSourceWeights returns the weights of the real sources in the
// default pretraining mix (the synthetic source has weight 0.49 beside
// them).
func DefaultSourceWeights() map[string]float64 {
	return map[string]float64{
		"exchange_rate": 0.08,
		"illness":       0.08,
		"weather":       0.12,
		"m4_hourly":     0.10,
		"m4_weekly":     0.08,
		"classic":       0.05,
	}
}
