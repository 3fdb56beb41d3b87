// Package gtt is the GTT forecaster (General Time Transformer, arXiv
// 2402.07570): an encoder-only transformer that forecasts multivariate time
// series zero-shot, by predicting the next "curve shape" of each channel.
//
// # Model
//
// A channel's history (up to Context steps) is z-normalized on its own
// (RevIN without affine parameters: the window's mean and standard
// deviation), cut into non-overlapping patches of PatchLen steps aligned to
// its end, and each patch becomes a token: a linear map of its normalized
// values and its observed-mask (missing and left-padding steps are zero
// with mask 0) plus a sinusoidal position counted from the end, as if every
// history were padded to a full context. Each pre-LN encoder layer attends
// over time within each channel, then across channels at the same patch
// index, with one attention module shared by both (each with its own layer
// norm), then applies a GELU MLP. The last token of each channel, through a
// final layer norm and a linear head, predicts the channel's next PatchLen
// steps as changes from its last observed value (so that the untrained
// head starts from the naive forecast), de-normalized with the window's
// statistics. Longer
// horizons roll out autoregressively: the prediction is appended and the
// window is normalized afresh. When timestamps are given, calendar features
// (sin and cos of the time of day, day of week and time of year, those that
// vary at the series' step) enter as extra channels whose future values are
// known.
//
// # Use
//
// Load a checkpoint (Load, or Default for the embedded one) and call
// Forecast for one multivariate input, or ForecastBatch for many inputs in
// one pass. Trainer and Pretrain train a model (forward and backward passes
// are written out by hand, with AdamW); Save writes safetensors.
//
// Quantiles adds quantile levels to a batch of forecasts, calibrated on each
// input's own history by rolling-origin backtests. FineTune customizes a
// model to one tenant's series (frozen encoder, retrained head and affine
// RevIN) into a Tuned model, which LoadPredictor reads back.
package gtt
