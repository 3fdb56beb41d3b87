package gtt

import "math"

// groupShape places one multivariate input in a batch. Its tokens are
// channel-major: channel c, patch p is token tok + c·patches + p.
type groupShape struct {
	channels int
	patches  int
	tok      int // first token
	row      int // first output row (one row per channel)
}

// batch holds the prepared inputs of one forward pass: any number of groups,
// each a multivariate window whose channels attend to each other.
type batch struct {
	cfg     Config
	groups  []groupShape
	n       int       // tokens
	rows    int       // output rows: channels over all groups
	x       []float32 // n × 2·PatchLen: normalized values, then the observed mask
	present []bool    // n: whether the patch holds any observed value
	posIdx  []int32   // n: position index of each token
	last    []int32   // rows: token index of each channel's last patch
	mean    []float64 // rows: RevIN mean
	scale   []float64 // rows: RevIN standard deviation
	lastVal []float32 // rows: the last observed value, normalized
}

func newBatch(cfg Config) *batch { return &batch{cfg: cfg} }

// reset empties the batch, keeping its memory.
func (b *batch) reset() {
	b.groups = b.groups[:0]
	b.n, b.rows = 0, 0
	b.x = b.x[:0]
	b.present = b.present[:0]
	b.posIdx = b.posIdx[:0]
	b.last = b.last[:0]
	b.mean = b.mean[:0]
	b.scale = b.scale[:0]
	b.lastVal = b.lastVal[:0]
}

// usable reports whether v is an observed value.
func usable(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

// revinStats returns the mean and standard deviation of the observed
// values of h: RevIN without affine parameters. The deviation has a floor
// relative to the level so that a flat series normalizes to zeros instead of
// amplified rounding noise; a series with no observed value gets (0, 1).
func revinStats(h []float32) (mean, std float64) {
	var s, n float64
	for _, v := range h {
		if usable(v) {
			s += float64(v)
			n++
		}
	}
	if n == 0 {
		return 0, 1
	}
	mean = s / n
	var q, a float64
	for _, v := range h {
		if usable(v) {
			d := float64(v) - mean
			q += d * d
			a += math.Abs(float64(v))
		}
	}
	std = math.Sqrt(q / n)
	floor := 1e-5*(a/n) + 1e-8
	return mean, math.Max(std, floor)
}

// maxNorm bounds normalized inputs, so that one absurd outlier cannot
// overflow the activations.
const maxNorm = 1e4

// addGroup appends one multivariate window: channels of equal length T ≥ 1
// (NaN or ±Inf marks a missing value). Only the last Context steps are read.
// The window is cut into ⌈T/PatchLen⌉ patches aligned to its end; the first
// patch is padded on the left with masked steps, and positions are counted
// so that the last patch always sits at position MaxPatches−1, as if the
// history were padded to a full context.
func (b *batch) addGroup(series [][]float32) {
	cfg := b.cfg
	pl := cfg.PatchLen
	t := len(series[0])
	if t > cfg.Context {
		t = cfg.Context
	}
	patches := (t + pl - 1) / pl
	pad := patches*pl - t
	g := groupShape{channels: len(series), patches: patches, tok: b.n, row: b.rows}
	b.groups = append(b.groups, g)
	for _, full := range series {
		h := full[len(full)-t:]
		mean, std := revinStats(h)
		b.mean = append(b.mean, mean)
		b.scale = append(b.scale, std)
		var last float32
		for i := len(h) - 1; i >= 0; i-- {
			if usable(h[i]) {
				last = float32(math.Max(-maxNorm, math.Min(maxNorm, (float64(h[i])-mean)/std)))
				break
			}
		}
		b.lastVal = append(b.lastVal, last)
		for p := 0; p < patches; p++ {
			var vals [2][]float32
			start := len(b.x)
			b.x = append(b.x, make([]float32, 2*pl)...)
			vals[0] = b.x[start : start+pl]
			vals[1] = b.x[start+pl : start+2*pl]
			any := false
			for k := 0; k < pl; k++ {
				i := p*pl + k - pad
				if i < 0 {
					continue
				}
				v := h[i]
				if !usable(v) {
					continue
				}
				z := (float64(v) - mean) / std
				z = math.Max(-maxNorm, math.Min(maxNorm, z))
				vals[0][k] = float32(z)
				vals[1][k] = 1
				any = true
			}
			b.present = append(b.present, any)
			b.posIdx = append(b.posIdx, int32(cfg.MaxPatches()-patches+p))
		}
		b.last = append(b.last, int32(b.n+patches-1))
		b.n += patches
		b.rows++
	}
}
