package openai

import (
	"net/http"
	"testing"
)

// fuzzSeeds are request bodies that reach every branch of the decoders.
var fuzzSeeds = []string{
	`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"user","content":null}],"stream":true,"stream_options":{"include_usage":true},"n":2,"logprobs":true,"top_logprobs":3,"stop":["x","y"],"seed":7,"logit_bias":{"5":-100},"temperature":0.5,"top_p":0.9,"max_tokens":8,"max_completion_tokens":9,"presence_penalty":1,"frequency_penalty":-1,"top_k":4,"min_p":0.1,"repeat_penalty":1.1,"response_format":{"type":"text"},"user":"u"}`,
	`{"model":"m","prompt":["a","b"],"logprobs":2,"echo":false,"best_of":1,"max_tokens":0}`,
	`{"model":"m","prompt":[[1,2],[3]],"stop":"\n"}`,
	`{"model":"m","prompt":[1,2,3],"suffix":""}`,
	`{"model":"m","input":["a",""],"encoding_format":"base64","dimensions":4}`,
	`{"prompt":"hello","add_special_tokens":false,"with_pieces":true}`,
	`{"messages":[{"role":"user","content":"x"}],"add_generation_prompt":false}`,
	`{"tokens":[1,2,3]}`,
	`{"model":1}`, `[]`, `{`, ``, `{"n":1e400}`, `{"seed":-9223372036854775809}`, `{"max_tokens":2.5}`,
}

// fuzzDecoder checks that a decoder never panics and that every failure is
// a 400 with a message.
func fuzzDecoder(f *testing.F, decode func([]byte) (any, *Error)) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := decode(body)
		if err != nil {
			if err.Status != http.StatusBadRequest || err.Message == "" || err.Code == "" || err.Type == "" {
				t.Fatalf("bad error %+v for %q", err, body)
			}
			return
		}
		if v == nil {
			t.Fatalf("no request and no error for %q", body)
		}
	})
}

func FuzzChatCompletionRequest(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (any, *Error) {
		r, err := ParseChatCompletionRequest(b)
		if err == nil && (r.N < 1 || r.N > MaxN || len(r.Messages) == 0 || r.Model == "" || r.TopLogprobs > MaxTopLogprobs) {
			panic("decoded request breaks its invariants")
		}
		return r, err
	})
}

func FuzzCompletionRequest(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (any, *Error) {
		r, err := ParseCompletionRequest(b)
		if err == nil && (r.N < 1 || len(r.Prompts) == 0 || r.MaxTokens < 0) {
			panic("decoded request breaks its invariants")
		}
		return r, err
	})
}

func FuzzEmbeddingRequest(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (any, *Error) {
		r, err := ParseEmbeddingRequest(b)
		if err == nil {
			for _, in := range r.Inputs {
				if in.Tokens == nil && in.Text == "" {
					panic("empty input accepted")
				}
			}
		}
		return r, err
	})
}

func FuzzTokenizeRequest(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (any, *Error) { return ParseTokenizeRequest(b) })
}

func FuzzDetokenizeRequest(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (any, *Error) {
		r, err := ParseDetokenizeRequest(b)
		if err == nil {
			for _, id := range r.Tokens {
				if id < 0 {
					panic("negative token id accepted")
				}
			}
		}
		return r, err
	})
}
