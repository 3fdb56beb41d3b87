package cpu

import (
	"math"

	"github.com/carryon/carryon/models/compute"
)

// RoPE rotates the heads of each row of x by its position, following
// ggml's rope_ext (including its YaRN ramp and float32 angle recurrence).
func (b *Backend) RoPE(x []float32, heads, headDim int, pos []int32, p *compute.RoPE) {
	dims := p.Dims
	if dims <= 0 || dims > headDim {
		dims = headDim
	}
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
	// cs holds cos, sin pairs for one position; dims is small (≤ 256).
	var cs [512]float32
	trig := cs[:dims]
	if dims > len(cs) {
		trig = make([]float32, dims)
	}
	rowLen := heads * headDim
	for r, ps := range pos {
		theta := float32(ps)
		for i0 := 0; i0 < dims; i0 += 2 {
			ff := float32(1)
			if p.FreqFactors != nil {
				ff = p.FreqFactors[i0/2]
			}
			trig[i0], trig[i0+1] = ropeYarn(theta/ff, freqScale, corr, i0, p.ExtFactor, attnFactor)
			theta *= thetaScale
		}
		row := x[r*rowLen : (r+1)*rowLen]
		for h := 0; h < heads; h++ {
			rotate(row[h*headDim:(h+1)*headDim], trig, p.NeoX)
		}
	}
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
