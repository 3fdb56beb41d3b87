package sample

import (
	"cmp"
	"math"
	"slices"
)

// candidate is a token still in the running, with its logit after bias and
// penalties and, where a step has computed it, its unnormalized probability.
type candidate struct {
	id    int32
	logit float32
	w     float32
}

// byLikelihood orders candidates most likely first, ties by lower id.
func byLikelihood(a, b candidate) int {
	if c := cmp.Compare(b.logit, a.logit); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// worse reports whether a ranks below b in [byLikelihood] order.
func worse(a, b candidate) bool {
	return a.logit < b.logit || (a.logit == b.logit && a.id > b.id)
}

// selectTop puts the k most likely tokens of logits into dst, most likely
// first with ties to the lower id, reusing dst's storage. It keeps a bounded
// min-heap of the best k seen so far, so a row of n tokens costs about n
// comparisons when k is small. NaN logits rank below every number.
func selectTop(dst []candidate, logits []float32, k int) []candidate {
	k = min(k, len(logits))
	h := dst[:0]
	for i := range k {
		v := logits[i]
		if v != v {
			v = float32(math.Inf(-1))
		}
		h = append(h, candidate{id: int32(i), logit: v})
		siftUp(h, i)
	}
	if k > 0 {
		for i := k; i < len(logits); i++ {
			// A later token with an equal logit has a higher id, so only a
			// strictly greater logit can displace the worst kept token;
			// NaN fails the comparison.
			if v := logits[i]; v > h[0].logit {
				h[0] = candidate{id: int32(i), logit: v}
				siftDown(h, 0)
			}
		}
	}
	slices.SortFunc(h, byLikelihood)
	return h
}

// siftUp restores the heap order (worst candidate at the root) after h[i]
// was set.
func siftUp(h []candidate, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !worse(h[i], h[parent]) {
			return
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

// siftDown restores the heap order after the root was replaced.
func siftDown(h []candidate, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && worse(h[r], h[l]) {
			c = r
		}
		if !worse(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// argmax returns the index of the largest logit, ties to the lowest index,
// ignoring NaN; it returns -1 when no logit is a number greater than -Inf.
// It finds the maximum in four independent lanes, which keeps the loop free
// of a compare-and-select chain, then the first index that holds it.
func argmax(logits []float32) int {
	ninf := float32(math.Inf(-1))
	b0, b1, b2, b3 := ninf, ninf, ninf, ninf
	n := len(logits) &^ 3
	for i := 0; i < n; i += 4 {
		q := logits[i : i+4 : i+4]
		b0 = maxNumber(b0, q[0])
		b1 = maxNumber(b1, q[1])
		b2 = maxNumber(b2, q[2])
		b3 = maxNumber(b3, q[3])
	}
	best := maxNumber(maxNumber(b0, b1), maxNumber(b2, b3))
	for _, v := range logits[n:] {
		best = maxNumber(best, v)
	}
	if !(best > ninf) {
		return -1
	}
	for i, v := range logits {
		if v == best {
			return i
		}
	}
	return -1
}

// maxNumber returns the larger of a and v, or a when v is NaN.
func maxNumber(a, v float32) float32 {
	if v > a {
		return v
	}
	return a
}

// histBuckets is the number of buckets in the top-p mass histogram: a
// float32 in [0, 1] shifted right by 20 bits (sign, exponent and three
// mantissa bits) is at most 0x3F8.
const histBuckets = 0x3F8 + 1

// bucket maps a probability weight in [0, 1] to its histogram bucket; the
// mapping is monotone, and each bucket spans a factor of at most 1.125.
func bucket(w float32) int {
	return int(math.Float32bits(w) >> 20)
}

// nucleus returns the smallest prefix of sorted candidates, whose weights w
// are set, with a total weight of at least target; all of them when
// rounding leaves the total short.
func nucleus(c []candidate, target float64) []candidate {
	var cum float64
	for i := range c {
		cum += float64(c[i].w)
		if cum >= target {
			return c[:i+1]
		}
	}
	return c
}

// topPRow returns the top-p nucleus of the whole row in dst's storage, in id
// order, and the row's softmax denominator, the sum of e^(logit-m), where m
// is the row's maximum logit. The candidates' weights are not set.
//
// The nucleus is a prefix of the row sorted most likely first, so it is
// everything at least as likely as its last token. Rather than sort the
// row, topPRow histograms the probability mass by magnitude, finds the
// bucket where the cumulative mass from the top reaches p, sorts only the
// tokens of that bucket to find the last token, then keeps every token
// ranked at or above it. scratch holds that bucket's tokens.
func topPRow(dst, scratch []candidate, hist *[histBuckets]float64, logits []float32, m, p float32) (nucleus, boundary []candidate, z float64) {
	clear(hist[:])
	var w [expBlock]float32
	for rest := logits; len(rest) > 0; {
		n := min(len(rest), expBlock)
		expInto(w[:], rest[:n], m, 1)
		for _, x := range w[:n] {
			hist[bucket(x)] += float64(x)
		}
		rest = rest[n:]
	}
	for _, mass := range hist {
		z += mass
	}
	target := float64(p) * z

	cut := 0 // the bucket holding the last token of the nucleus
	var above float64
	for b := histBuckets - 1; b >= 0; b-- {
		if above+hist[b] >= target {
			cut = b
			break
		}
		above += hist[b]
	}

	// Only tokens whose logit lies near the bucket's range can be in it;
	// the others are told apart without computing their weight.
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	if cut > 0 {
		lo = float32(math.Log(float64(math.Float32frombits(uint32(cut)<<20)))) - 1e-3
	}
	if cut < histBuckets-1 {
		hi = float32(math.Log(float64(math.Float32frombits(uint32(cut+1)<<20)))) + 1e-3
	}
	boundary = scratch[:0]
	for i, v := range logits {
		if d := v - m; d >= lo && d < hi {
			if w := expf(d); bucket(w) == cut {
				boundary = append(boundary, candidate{id: int32(i), logit: v, w: w})
			}
		}
	}
	nucleus = dst[:0]
	if len(boundary) == 0 {
		// Only rounding can make the walk above miss the bucket; keep
		// every token that is a number rather than guess.
		for i, v := range logits {
			if v == v {
				nucleus = append(nucleus, candidate{id: int32(i), logit: v})
			}
		}
		return nucleus, boundary, z
	}
	slices.SortFunc(boundary, byLikelihood)
	last := boundary[len(boundary)-1]
	cum := above
	for _, c := range boundary {
		cum += float64(c.w)
		if cum >= target {
			last = c
			break
		}
	}

	for i, v := range logits {
		if v > last.logit || (v == last.logit && int32(i) <= last.id) {
			nucleus = append(nucleus, candidate{id: int32(i), logit: v})
		}
	}
	return nucleus, boundary, z
}
