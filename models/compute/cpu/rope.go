package cpu

import (
	"math"
	"slices"

	"github.com/carryon/carryon/models/compute"
)

// ropeTask rotates rows [lo, hi) of one RoPE call with the angles of
// the backend's trig table.
type ropeTask struct {
	x              []float32
	heads, headDim int
	neox           bool

	// The angle table: for row r of the last positions seen, dims cos,
	// sin pairs at trig[r*dims:]. It is recomputed only when the positions
	// or the parameters change, so the query and key rotations of every
	// layer of a forward pass share one computation.
	trig        []float32
	pos         []int32
	params      compute.RoPE
	freqFactors []float32
	dims        int
}

// RoPE rotates the heads of each row of x by its position, following
// ggml's rope_ext (including its YaRN ramp and float32 angle recurrence).
func (b *Backend) RoPE(x []float32, heads, headDim int, pos []int32, p *compute.RoPE) {
	dims := p.Dims
	if dims <= 0 || dims > headDim {
		dims = headDim
	}
	t := &b.rope
	t.angles(pos, p, dims)
	t.x, t.heads, t.headDim, t.neox = x, heads, headDim, p.NeoX
	b.run(len(pos), 4*len(pos)*heads*dims, t)
	t.x = nil
}

func (t *ropeTask) Run(lo, hi, _ int) {
	rowLen := t.heads * t.headDim
	for r := lo; r < hi; r++ {
		trig := t.trig[r*t.dims : (r+1)*t.dims]
		row := t.x[r*rowLen : (r+1)*rowLen]
		for h := 0; h < t.heads; h++ {
			rotate(row[h*t.headDim:(h+1)*t.headDim], trig, t.neox)
		}
	}
}

// angles fills the trig table for the positions pos unless it holds them
// already.
func (t *ropeTask) angles(pos []int32, p *compute.RoPE, dims int) {
	if dims == t.dims && slices.Equal(pos, t.pos) && sameRoPE(p, &t.params) {
		return
	}
	t.dims, t.params = dims, *p
	// Keep a copy of the factors: the caller may change its own.
	t.params.FreqFactors = append(t.freqFactors[:0], p.FreqFactors...)
	t.freqFactors = t.params.FreqFactors
	if p.FreqFactors == nil {
		t.params.FreqFactors = nil
	}
	t.pos = append(t.pos[:0], pos...)
	if need := len(pos) * dims; cap(t.trig) < need {
		t.trig = make([]float32, need, need+need/4)
	}
	t.trig = t.trig[:len(pos)*dims]
	thetaScale := float32(math.Pow(float64(p.Base), -2/float64(dims)))
	var corr [2]float32
	if p.ExtFactor != 0 {
		corr = yarnCorrDims(dims, p.OrigContext, p.Base, p.BetaFast, p.BetaSlow)
	}
	freqScale := p.FreqScale
	if freqScale == 0 {
		freqScale = 1
	}
	attnFactor := p.AttnFactor
	if attnFactor == 0 {
		attnFactor = 1
	}
	for r, ps := range pos {
		trig := t.trig[r*dims : (r+1)*dims]
		theta := float32(ps)
		for i0 := 0; i0 < dims; i0 += 2 {
			ff := float32(1)
			if p.FreqFactors != nil {
				ff = p.FreqFactors[i0/2]
			}
			trig[i0], trig[i0+1] = ropeYarn(theta/ff, freqScale, corr, i0, p.ExtFactor, attnFactor)
			theta *= thetaScale
		}
	}
}

// sameRoPE reports whether a and b give the same angles: equal fields and
// the same frequency factors.
func sameRoPE(a, b *compute.RoPE) bool {
	return a.Dims == b.Dims && a.Base == b.Base && a.FreqScale == b.FreqScale &&
		a.ExtFactor == b.ExtFactor && a.AttnFactor == b.AttnFactor && a.BetaFast == b.BetaFast &&
		a.BetaSlow == b.BetaSlow && a.OrigContext == b.OrigContext && slices.Equal(a.FreqFactors, b.FreqFactors)
}

// rotate applies the rotation angles trig (cos, sin pairs) to one head.
func rotate(x, trig []float32, neox bool) {
	n := len(trig)
	if neox {
		half := n / 2
		for i := 0; i < half; i++ {
			c, s := trig[2*i], trig[2*i+1]
			x0, x1 := x[i], x[i+half]
			x[i] = x0*c - x1*s
			x[i+half] = x0*s + x1*c
		}
		return
	}
	for i := 0; i < n; i += 2 {
		c, s := trig[i], trig[i+1]
		x0, x1 := x[i], x[i+1]
		x[i] = x0*c - x1*s
		x[i+1] = x0*s + x1*c
	}
}

// ropeYarn returns the scaled cosine and sine of one pair's angle, mixing
// interpolated and extrapolated angles by YaRN's ramp when extFactor is set.
func ropeYarn(thetaExtrap, freqScale float32, corr [2]float32, i0 int, extFactor, mscale float32) (float32, float32) {
	thetaInterp := freqScale * thetaExtrap
	theta := thetaInterp
	if extFactor != 0 {
		rampMix := yarnRamp(corr[0], corr[1], i0) * extFactor
		theta = thetaInterp*(1-rampMix) + thetaExtrap*rampMix
		mscale *= 1 + 0.1*float32(math.Log(float64(1/freqScale)))
	}
	return float32(math.Cos(float64(theta))) * mscale, float32(math.Sin(float64(theta))) * mscale
}

func yarnRamp(low, high float32, i0 int) float32 {
	y := (float32(i0/2) - low) / max(0.001, high-low)
	return 1 - min(1, max(0, y))
}

// yarnCorrDims returns the first and last dimension pair that YaRN's
// correction ramp spans.
func yarnCorrDims(dims, origCtx int, base, betaFast, betaSlow float32) [2]float32 {
	corrDim := func(nRot float32) float32 {
		return float32(dims) * float32(math.Log(float64(float32(origCtx)/(nRot*2*math.Pi)))) / (2 * float32(math.Log(float64(base))))
	}
	start := float32(math.Floor(float64(corrDim(betaFast))))
	end := float32(math.Ceil(float64(corrDim(betaSlow))))
	return [2]float32{max(0, start), min(float32(dims-1), end)}
}
