package gtt

import (
	"math"

	"github.com/carryon/carryon/models/kernels"
)

// lnEps is the variance floor of every layer norm.
const lnEps = 1e-5

// layerNorm normalizes each of the n rows of x (width d) to zero mean and
// unit variance, then scales by w and shifts by b into y. When xhat and rstd
// are not nil it keeps the normalized rows and the reciprocal standard
// deviations for the backward pass.
func layerNorm(y, x, w, b []float32, n, d int, xhat, rstd []float32) {
	for i := 0; i < n; i++ {
		xi := x[i*d : (i+1)*d]
		var s float32
		for _, v := range xi {
			s += v
		}
		mean := s / float32(d)
		var q float32
		for _, v := range xi {
			q += (v - mean) * (v - mean)
		}
		r := float32(1 / math.Sqrt(float64(q/float32(d))+lnEps))
		yi := y[i*d : (i+1)*d]
		if xhat != nil {
			xh := xhat[i*d : (i+1)*d]
			for k, v := range xi {
				h := (v - mean) * r
				xh[k] = h
				yi[k] = h*w[k] + b[k]
			}
			rstd[i] = r
			continue
		}
		for k, v := range xi {
			yi[k] = (v-mean)*r*w[k] + b[k]
		}
	}
}

// layerNormBackward adds to dx the gradient of a layer norm's input, and to
// dw and db those of its scale and shift, given dy, the gradient of its
// output, and the forward pass's xhat and rstd. dxhat is scratch of width d.
func layerNormBackward(dx, dw, db, dy, xhat, rstd, w []float32, n, d int, dxhat []float32) {
	for i := 0; i < n; i++ {
		dyi := dy[i*d : (i+1)*d]
		xh := xhat[i*d : (i+1)*d]
		var m1, m2 float32
		for k, g := range dyi {
			dh := g * w[k]
			dxhat[k] = dh
			m1 += dh
			m2 += dh * xh[k]
			dw[k] += g * xh[k]
			db[k] += g
		}
		m1 /= float32(d)
		m2 /= float32(d)
		r := rstd[i]
		dxi := dx[i*d : (i+1)*d]
		for k := range dxi {
			dxi[k] += r * (dxhat[k] - m1 - xh[k]*m2)
		}
	}
}

// The tanh form of GELU: gelu(u) = u/2·(1 + tanh(c·(u + 0.044715·u³))).
const (
	geluC = 0.7978845608028654 // √(2/π)
	geluA = 0.044715
)

// geluGeneric sets g = gelu(u) and t = the tanh term, kept for the
// backward pass.
func geluGeneric(g, t, u []float32) {
	for i, x := range u {
		th := tanh32(geluC * (x + geluA*x*x*x))
		t[i] = th
		g[i] = 0.5 * x * (1 + th)
	}
}

// geluBackwardGeneric sets du = dg·gelu'(u), with t from gelu.
func geluBackwardGeneric(du, dg, u, t []float32) {
	for i, x := range u {
		th := t[i]
		d := 0.5*(1+th) + 0.5*x*(1-th*th)*geluC*(1+3*geluA*x*x)
		du[i] = dg[i] * d
	}
}

// tanh32 is tanh to about 1e-7 absolute error, without exponentials: an
// odd rational function x·P(x²)/Q(x²), exact in float32 rounding beyond
// |x| ≈ 7.9, where tanh is 1 to float32 precision.
func tanh32(x float32) float32 {
	const clamp = 7.90531110763549805
	if x > clamp {
		x = clamp
	} else if x < -clamp {
		x = -clamp
	}
	x2 := x * x
	p := float32(-2.76076847742355e-16)
	p = p*x2 + 2.00018790482477e-13
	p = p*x2 - 8.60467152213735e-11
	p = p*x2 + 5.12229709037114e-08
	p = p*x2 + 1.48572235717979e-05
	p = p*x2 + 6.37261928875436e-04
	p = p*x2 + 4.89352455891786e-03
	q := float32(1.19825839466702e-06)
	q = q*x2 + 1.18534705686654e-04
	q = q*x2 + 2.26843463243900e-03
	q = q*x2 + 4.89352518554385e-03
	return x * p / q
}

// exp32 is e^x to a few float32 ulps (0 below −87, capped above 88): x = n·ln 2 + r with
// |r| ≤ ln 2 / 2 (ln 2 split in two for an exact n·ln 2), e^r by its Taylor
// polynomial of degree 7, and 2^n set in the exponent bits.
func exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
	)
	if x < -87 {
		return 0
	}
	if x > 88 {
		x = 88
	}
	n := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - n*ln2Hi - n*ln2Lo
	p := float32(1.0 / 5040)
	p = p*r + 1.0/720
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// setRows sets each of the n rows of y (width d) to b.
func setRows(y, b []float32, n, d int) {
	for i := 0; i < n; i++ {
		copy(y[i*d:(i+1)*d], b)
	}
}

// addRowsTo adds each of the n rows of x (width d) to acc.
func addRowsTo(acc, x []float32, n, d int) {
	for i := 0; i < n; i++ {
		kernels.Axpy(acc, 1, x[i*d:(i+1)*d])
	}
}

func sqrt64(x float64) float64 { return math.Sqrt(x) }
