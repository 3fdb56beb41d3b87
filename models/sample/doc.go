// Package sample turns a row of next-token logits into a token id, with the
// knobs that llama.cpp and OpenAI-compatible servers expose: temperature,
// top-k, top-p, min-p, repetition, presence and frequency penalties, logit
// bias and a seed, plus the log-probabilities that the OpenAI API reports.
//
// # Order of operations
//
// A [Sampler] applies the steps of llama.cpp's default sampler chain, in the
// same order:
//
//  1. logit bias: LogitBias[id] is added to the logit of id;
//  2. penalties over the last RepeatLastN tokens of the history: the
//     repetition penalty divides a positive logit and multiplies a negative
//     one, then FrequencyPenalty*count + PresencePenalty is subtracted from
//     every token that occurs in the window;
//  3. top-k: keep the TopK tokens with the highest logits;
//  4. top-p: keep the smallest set of most likely tokens whose probability
//     adds up to at least TopP, probabilities being the softmax of the logits
//     that survived top-k, without temperature;
//  5. min-p: keep the tokens whose probability is at least MinP times that of
//     the most likely one;
//  6. temperature: divide the surviving logits by Temperature;
//  7. draw one token from the softmax of what is left.
//
// Steps 1 and 2 change the caller's logits row in place; the later steps
// work on the Sampler's own buffers. Temperature 0 is greedy decoding: the
// token with the highest logit after steps 1 and 2, ties going to the lowest
// id, which is also what top-k 1 and a tiny top-p select. vLLM applies bias
// and penalties in the same order.
//
// # Log-probabilities
//
// When Params.Logprobs is set, each Sample also records the log-probability
// of the chosen token and of the TopLogprobs most likely tokens. By default
// they come from the log-softmax of the full row after bias and penalties,
// before top-k, top-p, min-p and temperature: the model's distribution as
// the request's bias and penalties shaped it, independent of how adventurous
// the sampling was. With Params.RawLogprobs they come from the row exactly as
// the model produced it, before bias and penalties, which is what vLLM
// reports by default.
//
// # Seeds and reproducibility
//
// A Sampler owns its random stream. A non-negative Params.Seed makes the
// sequence of choices a function of the seed, the parameters and the logits
// alone; a negative seed (the default) is replaced by one drawn from
// crypto/rand, reported by [Sampler.Seed] so a run can be replayed. Each
// non-greedy call to Sample consumes exactly one random number.
//
// # Cost
//
// Sample allocates nothing once its buffers have grown to the largest
// candidate set seen. Top-k keeps a bounded heap over the row rather than
// sorting it. Top-p without top-k histograms the probability mass by
// magnitude and sorts only the tokens of the one bucket where the nucleus
// ends. Softmax over the whole row (top-p or plain temperature without
// top-k, and log-probabilities) costs one pass of a float32 exp per token,
// and a draw from the whole row keeps per-block sums so that it needs no
// second pass.
package sample
