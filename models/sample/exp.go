package sample

import "math"

// expBlock is the number of weights expInto computes per call in the
// whole-row loops: large enough to amortize the call, small enough to stay
// in a fixed array.
const expBlock = 256

// expInto sets dst[i] = e^((src[i]-m)*scale) in float32 for the arguments
// <= 0 that softmax produces, with a relative error below 3e-7. Arguments
// below -87, where e^x leaves the normal float32 range, and NaN give 0.
// dst must be at least as long as src.
//
// It exists because math.Exp costs several times more per token, and
// softmax over a 150K-token vocabulary is where that shows. It works on
// slices so that the loop body is compiled in place rather than called per
// token. The rounding of x/ln2 to an integer uses the 1.5*2^23 shifter
// rather than an int conversion, whose false register dependency serializes
// the loop on amd64.
func expInto(dst, src []float32, m, scale float32) {
	const (
		log2e   = 1.442695
		ln2Hi   = 0.693145751953125     // ln 2 rounded to 16 bits, so k*ln2Hi is exact
		ln2Lo   = 1.428606765330187e-06 // ln 2 - ln2Hi
		shifter = 0x1.8p23
	)
	dst = dst[:len(src)]
	for i, v := range src {
		x := (v - m) * scale
		if !(x > -87) {
			dst[i] = 0
			continue
		}
		t := x*log2e + shifter
		k := t - shifter // x/ln2 rounded to the nearest integer
		r := x - k*ln2Hi - k*ln2Lo
		r2 := r * r
		// e^r for |r| <= ln2/2 by its Taylor series to degree 6, grouped
		// to shorten the dependency chain.
		p := (1 + r) + r2*((0.5+r*(1.0/6))+r2*((1.0/24+r*(1.0/120))+r2*(1.0/720)))
		// The low bits of t hold k + 2^22; turn them into the exponent of 2^k.
		dst[i] = p * math.Float32frombits((math.Float32bits(t)+127-0x400000)<<23)
	}
}

// expf returns e^x as [expInto] computes it, for the places that need one
// weight at a time.
func expf(x float32) float32 {
	var w [1]float32
	expInto(w[:], []float32{x}, 0, 1)
	return w[0]
}
