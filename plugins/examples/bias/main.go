// Command bias is an example head plugin, written the way a third party
// would write one against the carryon SDK. Its head type, "bias", moves
// every final-norm hidden state x by a fixed vector and rescales it:
//
//	delta = (scale − 1)·x + bias
//
// so the core's merged state x + delta is scale·x + bias: a learned logit
// bias (through the LM head) plus a temperature-like scaling.
//
// A bias head directory holds config.json:
//
//	{"type": "bias", "base": {"arch": "llama", "dim": 960, ...}, "scale": 0.9}
//
// and weights.safetensors with one F32/F16/BF16 tensor "bias" of shape [dim].
// The optional config field "fault" ("panic" or "exit") makes Forward crash
// the process, for testing how a host handles a crashing plugin.
package main

import "github.com/carryon/carryon/sdk"

func main() {
	sdk.ServeHead(newBiasHeads(sdk.NewLogger("bias")))
}
