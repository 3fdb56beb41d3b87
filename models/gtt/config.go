package gtt

import (
	"encoding/json"
	"fmt"
)

// Config fixes the shape of a GTT model.
type Config struct {
	// Dim is the width of the token vectors (d).
	Dim int `json:"dim"`
	// Layers is the number of encoder layers.
	Layers int `json:"layers"`
	// Heads is the number of attention heads; it must divide Dim.
	Heads int `json:"heads"`
	// MLPDim is the hidden width of each layer's GELU MLP.
	MLPDim int `json:"mlp_dim"`
	// PatchLen is the number of steps in one patch (one token), which is
	// also the number of steps one forward pass predicts.
	PatchLen int `json:"patch_len"`
	// Context is the longest history the model reads, a multiple of
	// PatchLen; longer histories are cut to their last Context steps.
	Context int `json:"context"`
}

// Preset sizes. TinyConfig and the larger ones are the published GTT
// shapes; SmallCPUConfig is the size of the embedded checkpoint, chosen to
// train on one CPU core in minutes.
var (
	// SmallCPUConfig is d=128, 3 layers, 4 heads (0.62M parameters).
	SmallCPUConfig = Config{Dim: 128, Layers: 3, Heads: 4, MLPDim: 512, PatchLen: 64, Context: 1024}
	// TinyConfig is GTT-Tiny: d=384, 4 layers, 6 heads (7M parameters).
	TinyConfig = Config{Dim: 384, Layers: 4, Heads: 6, MLPDim: 1536, PatchLen: 64, Context: 1024}
	// PaperSmallConfig is GTT-Small: d=512, 6 layers, 8 heads (19M parameters).
	PaperSmallConfig = Config{Dim: 512, Layers: 6, Heads: 8, MLPDim: 2048, PatchLen: 64, Context: 1024}
)

// ConfigByName returns a preset by name: "small-cpu", "tiny" or "small".
func ConfigByName(name string) (Config, error) {
	switch name {
	case "small-cpu":
		return SmallCPUConfig, nil
	case "tiny":
		return TinyConfig, nil
	case "small":
		return PaperSmallConfig, nil
	}
	return Config{}, fmt.Errorf("gtt config %q: unknown preset (want small-cpu, tiny or small)", name)
}

// MaxPatches returns the number of patches in a full context.
func (c Config) MaxPatches() int { return c.Context / c.PatchLen }

// HeadDim returns the width of one attention head.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// Validate reports whether the shape is usable.
func (c Config) Validate() error {
	switch {
	case c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.MLPDim <= 0 || c.PatchLen <= 0 || c.Context <= 0:
		return fmt.Errorf("gtt config %+v: every size must be positive", c)
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("gtt config: heads %d do not divide dim %d", c.Heads, c.Dim)
	case c.Context%c.PatchLen != 0:
		return fmt.Errorf("gtt config: context %d is not a multiple of the patch length %d", c.Context, c.PatchLen)
	case c.Dim > 1<<14 || c.MLPDim > 1<<16 || c.Layers > 256 || c.Context > 1<<16:
		return fmt.Errorf("gtt config %+v: sizes out of range", c)
	}
	return nil
}

func (c Config) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}
