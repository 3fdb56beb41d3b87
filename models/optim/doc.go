// Package optim holds the optimizer pieces that train carryon's small
// networks (carry-on heads, forecasters): AdamW with decoupled weight decay,
// a learning-rate schedule of linear warmup then cosine decay, and clipping
// of gradients by their global norm. It works on float32 tensors given as
// value/gradient slice pairs and keeps no state beyond the optimizer's
// moments, which it can export for checkpoints.
package optim
