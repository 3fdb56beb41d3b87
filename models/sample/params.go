package sample

import (
	"fmt"
	"math"
)

// Params are the sampling settings of one request. The zero value is not
// valid (its TopP is 0); start from [DefaultParams].
type Params struct {
	// Temperature divides the logits before the final draw; 0 selects
	// greedy decoding. It must be finite and not negative.
	Temperature float32

	// TopK keeps only the TopK most likely tokens; 0 turns it off, as does
	// a value at least the vocabulary size.
	TopK int

	// TopP keeps the smallest set of most likely tokens whose probabilities
	// add up to at least TopP; it must be in (0, 1], and 1 turns it off.
	TopP float32

	// MinP drops tokens less likely than MinP times the most likely one; it
	// must be in [0, 1], and 0 turns it off.
	MinP float32

	// RepeatPenalty divides the positive logits and multiplies the negative
	// logits of tokens in the penalty window (llama.cpp semantics); it must
	// be positive, and 1 turns it off.
	RepeatPenalty float32

	// RepeatLastN is how many of the most recent history tokens form the
	// penalty window of all three penalties: -1 means the whole history and
	// 0 turns the penalties off.
	RepeatLastN int

	// PresencePenalty is subtracted once from the logit of every token
	// that occurs in the penalty window (OpenAI semantics).
	PresencePenalty float32

	// FrequencyPenalty times the number of occurrences in the penalty
	// window is subtracted from a token's logit (OpenAI semantics).
	FrequencyPenalty float32

	// LogitBias is added to the logits of the tokens it names, before the
	// penalties; -100 effectively bans a token and -Inf bans it outright.
	// Ids must not be negative; an id outside the row makes Sample fail.
	LogitBias map[int32]float32

	// Seed seeds the random stream; a negative seed asks for one drawn from
	// crypto/rand (see [Sampler.Seed]). Any non-negative value, 0
	// included, gives a reproducible stream.
	Seed int64

	// Logprobs asks Sample to record the chosen token's log-probability
	// (see [Sampler.Logprobs]).
	Logprobs bool

	// TopLogprobs is how many of the most likely tokens to record with
	// their log-probabilities; it requires Logprobs and must not be
	// negative.
	TopLogprobs int

	// RawLogprobs takes the log-probabilities from the logits as the model
	// produced them, before bias and penalties, instead of after.
	RawLogprobs bool
}

// DefaultParams returns llama.cpp's default settings: temperature 0.8,
// top-k 40, top-p 0.95, min-p 0.05, no repetition penalty over a window of
// 64 tokens, no presence or frequency penalty, and a random seed.
func DefaultParams() Params {
	return Params{
		Temperature:   0.8,
		TopK:          40,
		TopP:          0.95,
		MinP:          0.05,
		RepeatPenalty: 1,
		RepeatLastN:   64,
		Seed:          -1,
	}
}

// Validate reports the first setting that is out of range, naming it as
// the OpenAI and llama.cpp APIs do.
func (p Params) Validate() error {
	switch {
	case !finite(p.Temperature) || p.Temperature < 0:
		return fmt.Errorf("sample: temperature %v must be a finite number >= 0", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("sample: top_k %d must be >= 0", p.TopK)
	case !(p.TopP > 0 && p.TopP <= 1):
		return fmt.Errorf("sample: top_p %v must be in (0, 1]", p.TopP)
	case !(p.MinP >= 0 && p.MinP <= 1):
		return fmt.Errorf("sample: min_p %v must be in [0, 1]", p.MinP)
	case !finite(p.RepeatPenalty) || p.RepeatPenalty <= 0:
		return fmt.Errorf("sample: repeat_penalty %v must be a finite number > 0", p.RepeatPenalty)
	case p.RepeatLastN < -1:
		return fmt.Errorf("sample: repeat_last_n %d must be >= -1", p.RepeatLastN)
	case !finite(p.PresencePenalty):
		return fmt.Errorf("sample: presence_penalty %v must be finite", p.PresencePenalty)
	case !finite(p.FrequencyPenalty):
		return fmt.Errorf("sample: frequency_penalty %v must be finite", p.FrequencyPenalty)
	case p.TopLogprobs < 0:
		return fmt.Errorf("sample: top_logprobs %d must be >= 0", p.TopLogprobs)
	case p.TopLogprobs > 0 && !p.Logprobs:
		return fmt.Errorf("sample: top_logprobs %d requires logprobs", p.TopLogprobs)
	}
	for id, b := range p.LogitBias {
		if id < 0 {
			return fmt.Errorf("sample: logit_bias names token %d; token ids are >= 0", id)
		}
		if math.IsNaN(float64(b)) || math.IsInf(float64(b), 1) {
			return fmt.Errorf("sample: logit_bias of token %d is %v; it must be finite or -Inf", id, b)
		}
	}
	return nil
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}
