package sample

import (
	"math"
	"strings"
	"testing"
)

func TestDefaultParamsAreValid(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
}

func TestValidateRejectsOutOfRange(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	cases := []struct {
		name   string
		change func(*Params)
		want   string // substring of the error
	}{
		{"negative temperature", func(p *Params) { p.Temperature = -0.1 }, "temperature"},
		{"NaN temperature", func(p *Params) { p.Temperature = nan }, "temperature"},
		{"infinite temperature", func(p *Params) { p.Temperature = inf }, "temperature"},
		{"negative top_k", func(p *Params) { p.TopK = -1 }, "top_k"},
		{"zero top_p", func(p *Params) { p.TopP = 0 }, "top_p"},
		{"top_p above 1", func(p *Params) { p.TopP = 1.01 }, "top_p"},
		{"negative top_p", func(p *Params) { p.TopP = -0.5 }, "top_p"},
		{"NaN top_p", func(p *Params) { p.TopP = nan }, "top_p"},
		{"negative min_p", func(p *Params) { p.MinP = -0.01 }, "min_p"},
		{"min_p above 1", func(p *Params) { p.MinP = 1.5 }, "min_p"},
		{"zero repeat_penalty", func(p *Params) { p.RepeatPenalty = 0 }, "repeat_penalty"},
		{"negative repeat_penalty", func(p *Params) { p.RepeatPenalty = -1 }, "repeat_penalty"},
		{"repeat_last_n below -1", func(p *Params) { p.RepeatLastN = -2 }, "repeat_last_n"},
		{"NaN presence_penalty", func(p *Params) { p.PresencePenalty = nan }, "presence_penalty"},
		{"infinite frequency_penalty", func(p *Params) { p.FrequencyPenalty = -inf }, "frequency_penalty"},
		{"negative top_logprobs", func(p *Params) { p.Logprobs = true; p.TopLogprobs = -1 }, "top_logprobs"},
		{"top_logprobs without logprobs", func(p *Params) { p.TopLogprobs = 3 }, "requires logprobs"},
		{"negative bias id", func(p *Params) { p.LogitBias = map[int32]float32{-3: 1} }, "logit_bias"},
		{"NaN bias", func(p *Params) { p.LogitBias = map[int32]float32{3: nan} }, "logit_bias"},
		{"+Inf bias", func(p *Params) { p.LogitBias = map[int32]float32{3: inf} }, "logit_bias"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.change(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tc.want)
			}
			if s, err := New(p); err == nil || s != nil {
				t.Fatalf("New() = %v, %v; want nil and an error", s, err)
			}
		})
	}
}

func TestValidateAcceptsEdges(t *testing.T) {
	for _, change := range []func(*Params){
		func(p *Params) { p.Temperature = 0 },
		func(p *Params) { p.TopP = 1 },
		func(p *Params) { p.TopP = 1e-9 },
		func(p *Params) { p.MinP = 0 },
		func(p *Params) { p.MinP = 1 },
		func(p *Params) { p.TopK = 0 },
		func(p *Params) { p.RepeatLastN = -1 },
		func(p *Params) { p.RepeatLastN = 0 },
		func(p *Params) { p.PresencePenalty, p.FrequencyPenalty = -2, 2 },
		func(p *Params) { p.LogitBias = map[int32]float32{0: -100, 7: float32(math.Inf(-1))} },
		func(p *Params) { p.Seed = 0 },
		func(p *Params) { p.Logprobs, p.TopLogprobs = true, 20 },
	} {
		p := DefaultParams()
		change(&p)
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", p, err)
		}
	}
}
