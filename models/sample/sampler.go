package sample

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// TokenLogprob is a token id with its log-probability.
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// A Sampler chooses the tokens of one sequence with fixed [Params]. It keeps
// the sequence's random stream and scratch buffers between calls, so it is
// created once per sequence and is not safe for concurrent use.
type Sampler struct {
	p      Params
	greedy bool // temperature 0, top-k 1, or a temperature so small that 1/T overflows
	seed   int64
	rng    rand.PCG

	// The logit bias as parallel slices sorted by id, and the largest id.
	biasIDs   []int32
	biasVals  []float32
	maxBiasID int32

	window   []int32     // sorted copy of the penalty window
	cands    []candidate // tokens still in the running
	boundary []candidate // the tokens of the top-p boundary bucket
	blocks   []float64   // per-block weight sums of a whole-row draw
	alts     []candidate // most likely tokens, for TopLogprobs
	touched  []touched   // original logits changed by bias and penalties (RawLogprobs)
	hist     [histBuckets]float64

	// The log-probabilities recorded by the last successful Sample.
	recorded bool
	chosen   TokenLogprob
	top      []TokenLogprob

	// Log of the softmax denominator of the raw row (RawLogprobs).
	rawLSE float64
}

// touched is a logit before bias or penalties changed it.
type touched struct {
	id    int32
	logit float32
}

// seedStream selects the PCG stream; any constant works, it only has to be
// the same for every Sampler so that a seed means the same sequence.
const seedStream = 0x6361727279_6f6e

// New returns a Sampler for p, or the error from [Params.Validate]. A
// negative p.Seed is replaced by a random non-negative one.
func New(p Params) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := &Sampler{p: p, seed: p.Seed}
	s.greedy = p.Temperature == 0 || p.TopK == 1 || math.IsInf(float64(1/p.Temperature), 1)
	if s.seed < 0 {
		var b [8]byte
		_, _ = crand.Read(b[:]) // crypto/rand.Read never fails; it aborts the program first
		s.seed = int64(binary.LittleEndian.Uint64(b[:]) >> 1)
	}
	s.rng.Seed(uint64(s.seed), seedStream)
	for id := range p.LogitBias {
		s.biasIDs = append(s.biasIDs, id)
	}
	slices.Sort(s.biasIDs)
	for _, id := range s.biasIDs {
		s.biasVals = append(s.biasVals, p.LogitBias[id])
		s.maxBiasID = id
	}
	return s, nil
}

// Params returns the settings the Sampler was created with; a negative
// seed is reported as given, see [Sampler.Seed] for the one in use.
func (s *Sampler) Params() Params { return s.p }

// Seed returns the seed of the random stream: Params.Seed, or the random
// seed chosen for a negative one. A Sampler created with this seed and the
// same other settings repeats the same choices for the same logits.
func (s *Sampler) Seed() int64 { return s.seed }

// Sample returns the next token for a row of logits, one per vocabulary
// entry, given the tokens of the sequence so far (history; only its last
// RepeatLastN tokens matter, and only when a penalty is set). It applies the
// steps listed in the package documentation. Bias and penalties are applied
// to logits in place; nothing else in logits or history is changed, and
// neither is retained.
//
// Sample fails, without choosing a token or drawing from the random stream,
// when logits is empty, when LogitBias or the penalty window names a token
// outside the row, or when the largest logit after bias and penalties is
// not finite (every logit NaN or -Inf, or one +Inf). Bias and penalties
// have already been applied when the last of these is detected.
func (s *Sampler) Sample(logits []float32, history []int32) (int32, error) {
	s.recorded = false
	n := len(logits)
	if n == 0 {
		return -1, errors.New("sample: empty logits row")
	}
	if n > math.MaxInt32 {
		return -1, fmt.Errorf("sample: logits row of %d entries exceeds the int32 token id range", n)
	}
	if len(s.biasIDs) > 0 && int(s.maxBiasID) >= n {
		return -1, fmt.Errorf("sample: logit_bias names token %d, outside the vocabulary of %d tokens", s.maxBiasID, n)
	}
	if err := s.penaltyWindow(history, n); err != nil {
		return -1, err
	}

	raw := s.p.Logprobs && s.p.RawLogprobs
	s.touched = s.touched[:0]
	if raw {
		s.recordRawTop(logits)
	}
	s.applyBias(logits, raw)
	s.applyPenalties(logits, raw)

	var (
		id  int32
		m   float32 // the row's maximum logit
		z   float64 // the row's sum of e^(logit-m), or 0 when not computed
		err error
	)
	if s.greedy {
		at := argmax(logits)
		if at < 0 || math.IsInf(float64(logits[at]), 1) {
			return -1, errors.New("sample: no token has a finite logit")
		}
		id, m = int32(at), logits[at]
	} else if id, m, z, err = s.draw(logits); err != nil {
		return -1, err
	}

	if s.p.Logprobs {
		s.record(logits, id, m, z, raw)
	}
	return id, nil
}

// Logprobs returns the log-probabilities recorded by the last successful
// Sample: the chosen token's, and the TopLogprobs most likely tokens', most
// likely first, ties to the lower id. See the package documentation for
// which distribution they come from. ok is false when Params.Logprobs is
// off, before the first Sample, and after a Sample that failed. The slice belongs
// to the Sampler and is overwritten by the next Sample; copy it to keep it.
func (s *Sampler) Logprobs() (chosen TokenLogprob, top []TokenLogprob, ok bool) {
	if !s.recorded {
		return TokenLogprob{}, nil, false
	}
	return s.chosen, s.top, true
}

// penaltiesOn reports whether any penalty changes logits.
func (s *Sampler) penaltiesOn() bool {
	return s.p.RepeatLastN != 0 &&
		(s.p.RepeatPenalty != 1 || s.p.PresencePenalty != 0 || s.p.FrequencyPenalty != 0)
}

// penaltyWindow copies the penalty window of history into s.window, sorted
// so that equal tokens are adjacent, and checks its ids against the row.
func (s *Sampler) penaltyWindow(history []int32, n int) error {
	s.window = s.window[:0]
	if !s.penaltiesOn() || len(history) == 0 {
		return nil
	}
	w := history
	if last := s.p.RepeatLastN; last > 0 && len(w) > last {
		w = w[len(w)-last:]
	}
	s.window = append(s.window, w...)
	slices.Sort(s.window)
	if lo, hi := s.window[0], s.window[len(s.window)-1]; lo < 0 || int(hi) >= n {
		bad := lo
		if lo >= 0 {
			bad = hi
		}
		return fmt.Errorf("sample: history token %d is outside the vocabulary of %d tokens", bad, n)
	}
	return nil
}

// applyBias adds the logit bias, remembering the originals when raw.
func (s *Sampler) applyBias(logits []float32, raw bool) {
	for i, id := range s.biasIDs {
		if raw {
			s.touched = append(s.touched, touched{id, logits[id]})
		}
		logits[id] += s.biasVals[i]
	}
}

// applyPenalties applies the repetition, frequency and presence penalties
// to every distinct token of the sorted window, remembering the originals
// when raw.
func (s *Sampler) applyPenalties(logits []float32, raw bool) {
	rp, freq, pres := s.p.RepeatPenalty, s.p.FrequencyPenalty, s.p.PresencePenalty
	w := s.window
	for i := 0; i < len(w); {
		id := w[i]
		j := i + 1
		for j < len(w) && w[j] == id {
			j++
		}
		v := logits[id]
		if raw {
			s.touched = append(s.touched, touched{id, v})
		}
		if rp != 1 {
			if v <= 0 {
				v *= rp
			} else {
				v /= rp
			}
		}
		logits[id] = v - float32(j-i)*freq - pres
		i = j
	}
}

// uniform returns the next number of the random stream, uniform in [0, 1).
func (s *Sampler) uniform() float64 {
	return float64(s.rng.Uint64()>>11) * 0x1p-53
}

// draw runs top-k, top-p, min-p and temperature over logits and draws a
// token. It returns the token, the row's maximum logit, and the row's
// softmax denominator when it computed it on the way (else 0).
func (s *Sampler) draw(logits []float32) (id int32, m float32, z float64, err error) {
	p := s.p
	n := len(logits)

	// c holds the surviving candidates once a step has narrowed the row;
	// until then (whole == true) the whole row is in the running.
	var c []candidate
	whole := true
	if p.TopK > 0 && p.TopK < n {
		c = selectTop(s.cands, logits, p.TopK)
		s.cands = c
		m, whole = c[0].logit, false
	} else if at := argmax(logits); at >= 0 {
		m = logits[at]
	} else {
		m = float32(math.Inf(-1))
	}
	if !finite(m) {
		return -1, 0, 0, errors.New("sample: no token has a finite logit")
	}
	u := s.uniform()

	if p.TopP < 1 {
		if whole {
			c, s.boundary, z = topPRow(s.cands, s.boundary, &s.hist, logits, m, p.TopP)
			s.cands = c
			whole = false
		} else {
			var sum float64
			for i := range c {
				c[i].w = expf(c[i].logit - m)
				sum += float64(c[i].w)
			}
			c = nucleus(c, float64(p.TopP)*sum)
		}
	}

	if p.MinP > 0 {
		floor := m + float32(math.Log(float64(p.MinP)))
		if whole {
			c = s.cands[:0]
			for i, v := range logits {
				if v >= floor {
					c = append(c, candidate{id: int32(i), logit: v})
				}
			}
			s.cands = c
			whole = false
		} else {
			k := 0
			for _, cand := range c {
				if cand.logit >= floor {
					c[k] = cand
					k++
				}
			}
			c = c[:k]
		}
	}

	scale := 1 / p.Temperature
	if whole {
		id, z = s.drawRow(logits, m, scale, u)
		return id, m, z, nil
	}
	var sum float64
	for i := range c {
		c[i].w = expf((c[i].logit - m) * scale)
		sum += float64(c[i].w)
	}
	target := u * sum
	var cum float64
	for i := range c {
		cum += float64(c[i].w)
		if cum > target {
			return c[i].id, m, z, nil
		}
	}
	// Rounding left the walk short of the target: take the last candidate
	// that has weight (there is one, the maximum has weight 1).
	for i := len(c) - 1; i >= 0; i-- {
		if c[i].w > 0 {
			return c[i].id, m, z, nil
		}
	}
	return c[0].id, m, z, nil
}

// drawBlock is the number of tokens per partial sum in drawRow.
const drawBlock = expBlock

// drawRow draws from the softmax of the whole row at inverse temperature
// scale, with u the uniform number of this draw. It computes every weight
// once, keeping only sums per block of drawBlock tokens, then recomputes
// the weights of the one block where the draw lands. When scale is 1 it
// also returns the row's softmax denominator, else 0.
func (s *Sampler) drawRow(logits []float32, m, scale float32, u float64) (int32, float64) {
	nb := (len(logits) + drawBlock - 1) / drawBlock
	if cap(s.blocks) < nb {
		s.blocks = make([]float64, nb)
	}
	blocks := s.blocks[:nb]
	var sum float64
	var w [expBlock]float32
	for b := range blocks {
		block := logits[b*drawBlock : min((b+1)*drawBlock, len(logits))]
		expInto(w[:], block, m, scale)
		var bs float64
		for _, x := range w[:len(block)] {
			bs += float64(x)
		}
		blocks[b] = bs
		sum += bs
	}
	target := u * sum
	// Walk to the block where the cumulative weight passes the target;
	// rounding can leave the walk short, and then the last block with
	// weight (the maximum has weight 1, so there is one) takes the draw.
	var cum float64
	at, landed := -1, false
	for b, bs := range blocks {
		if bs > 0 {
			at = b
		}
		if cum+bs > target {
			at, landed = b, true
			break
		}
		cum += bs
	}
	if !landed {
		cum -= blocks[at] // the blocks after at weigh nothing
	}
	var id int32
	block := logits[at*drawBlock : min((at+1)*drawBlock, len(logits))]
	expInto(w[:], block, m, scale)
	for i := range block {
		if w[i] > 0 {
			id = int32(at*drawBlock + i)
			if cum += float64(w[i]); cum > target {
				break
			}
		}
	}
	return id, sumIfUnscaled(sum, scale)
}

func sumIfUnscaled(sum float64, scale float32) float64 {
	if scale == 1 {
		return sum
	}
	return 0
}

// recordRawTop records the log-softmax denominator and the top tokens of
// the row before bias and penalties touch it.
func (s *Sampler) recordRawTop(logits []float32) {
	at := argmax(logits)
	if at < 0 {
		s.rawLSE = math.Inf(-1)
		s.top = s.top[:0]
		return
	}
	m := logits[at]
	s.rawLSE = float64(m) + math.Log(rowSum(logits, m))
	s.recordTop(logits, s.rawLSE)
}

// record stores the chosen token's log-probability and the top tokens.
// m is the maximum of the (biased, penalized) row and z its softmax
// denominator, or 0 when it still has to be computed.
func (s *Sampler) record(logits []float32, id int32, m float32, z float64, raw bool) {
	s.recorded = true
	if raw {
		v := logits[id]
		for _, t := range s.touched {
			if t.id == id {
				v = t.logit
				break
			}
		}
		s.chosen = TokenLogprob{ID: id, Logprob: float32(float64(v) - s.rawLSE)}
		return
	}
	if z == 0 {
		z = rowSum(logits, m)
	}
	lse := float64(m) + math.Log(z)
	s.chosen = TokenLogprob{ID: id, Logprob: float32(float64(logits[id]) - lse)}
	s.recordTop(logits, lse)
}

// recordTop stores the TopLogprobs most likely tokens of logits with their
// log-probabilities, given the row's log-softmax denominator lse.
func (s *Sampler) recordTop(logits []float32, lse float64) {
	s.top = s.top[:0]
	if s.p.TopLogprobs == 0 {
		return
	}
	s.alts = selectTop(s.alts, logits, s.p.TopLogprobs)
	for _, c := range s.alts {
		s.top = append(s.top, TokenLogprob{ID: c.id, Logprob: float32(float64(c.logit) - lse)})
	}
}

// rowSum returns the sum of e^(v-m) over the row.
func rowSum(logits []float32, m float32) float64 {
	var z float64
	var w [expBlock]float32
	for len(logits) > 0 {
		n := min(len(logits), expBlock)
		expInto(w[:], logits[:n], m, 1)
		for _, x := range w[:n] {
			z += float64(x)
		}
		logits = logits[n:]
	}
	return z
}
