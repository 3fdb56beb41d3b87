package carryon

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Type is the head type this package implements, as config.json names it.
const Type = "carryon"

// FinalLayer is the tap of the base model's final-norm hidden state.
const FinalLayer = -1

// MaxBlocks bounds the transformer blocks of a head.
const MaxBlocks = 4

// Bridge kinds.
const (
	BridgeIdentity = "identity"
	BridgeInt8     = "int8"
	BridgeLinear   = "linear"
)

// Weight types: the type a head keeps and multiplies its matrices in
// (vectors are always F32). F16 halves the memory a Forward over many heads
// reads, which is what bounds it.
const (
	DTypeF32 = "f32"
	DTypeF16 = "f16"
)

// ErrConfig is wrapped by every error about an invalid head configuration.
var ErrConfig = errors.New("invalid carry-on head config")

// Base identifies the frozen base model a head reads.
type Base struct {
	// Arch is general.architecture.
	Arch string `json:"arch"`
	// Dim is the width d of the hidden states.
	Dim int `json:"dim"`
	// Vocab is the vocabulary size.
	Vocab int `json:"vocab"`
	// Layers is the number of transformer blocks.
	Layers int `json:"layers"`
	// Context is the base's context length.
	Context int `json:"context,omitempty"`
	// Fingerprint is a hash of the base's LM head (see Fingerprint).
	Fingerprint string `json:"fingerprint"`
}

// Bridge configures σ, what the head does to its input before the input
// projection.
type Bridge struct {
	// Kind is BridgeIdentity, BridgeInt8 (each tap's row quantized to int8
	// with its own scale, then dequantized: what an int8 transfer of the
	// states would deliver) or BridgeLinear (a learned projection to Dim).
	Kind string `json:"kind"`
	// Dim is the output width of a linear bridge; 0 means the head's Width.
	Dim int `json:"dim,omitempty"`
}

// Config is a head's config.json.
type Config struct {
	// Type is always "carryon".
	Type string `json:"type"`
	// Base is the base model the head was made for.
	Base Base `json:"base"`
	// Taps lists the base layers the head reads, concatenated in order:
	// FinalLayer (-1) for the final-norm state, n ≥ 0 for the residual
	// stream after layer n. Empty means {FinalLayer}.
	Taps []int `json:"taps"`
	// Bridge is σ.
	Bridge Bridge `json:"bridge"`
	// Width is r, the width of the head's transformer.
	Width int `json:"width"`
	// Blocks is the number of transformer blocks, 1 to MaxBlocks.
	Blocks int `json:"blocks"`
	// Heads is the number of attention heads; Width/Heads must be even.
	Heads int `json:"heads"`
	// FFN is the hidden width of the MLP.
	FFN int `json:"ffn"`
	// RopeTheta is the base of the rotary position frequencies.
	RopeTheta float32 `json:"rope_theta"`
	// NormEps is the epsilon of the RMS norms.
	NormEps float32 `json:"norm_eps"`
	// Context bounds a sequence's positions; 0 means the base's context
	// length, or no bound when that is unknown.
	Context int `json:"context,omitempty"`
	// Alpha scales the delta; 0 makes the head return exactly zero.
	Alpha float32 `json:"alpha"`
	// DType is the weight type of the matrices, DTypeF32 or DTypeF16;
	// empty means DTypeF32.
	DType string `json:"dtype,omitempty"`
	// Seed seeded the random initial weights.
	Seed uint64 `json:"seed"`
}

// DefaultConfig returns the configuration of a fresh head for base: width
// 64, two blocks of four attention heads, an MLP of 4×width, an identity
// bridge over the final-norm state, α = 1, F16 matrices.
func DefaultConfig(base Base) Config {
	return Config{
		Type:      Type,
		Base:      base,
		Taps:      []int{FinalLayer},
		Bridge:    Bridge{Kind: BridgeIdentity},
		Width:     64,
		Blocks:    2,
		Heads:     4,
		FFN:       256,
		RopeTheta: 10000,
		NormEps:   1e-5,
		Alpha:     1,
		DType:     DTypeF16,
	}
}

// taps returns the taps with the default filled in.
func (c *Config) taps() []int {
	if len(c.Taps) == 0 {
		return []int{FinalLayer}
	}
	return c.Taps
}

// dtype returns the weight type with the default filled in.
func (c *Config) dtype() string {
	if c.DType == "" {
		return DTypeF32
	}
	return c.DType
}

// InputDim returns the width of a row's input: one base width per tap.
func (c *Config) InputDim() int { return len(c.taps()) * c.Base.Dim }

// bridgeDim returns the width of σ's output.
func (c *Config) bridgeDim() int {
	if c.Bridge.Kind == BridgeLinear {
		if c.Bridge.Dim > 0 {
			return c.Bridge.Dim
		}
		return c.Width
	}
	return c.InputDim()
}

// maxPositions returns the bound on a sequence's positions, or 0 for none.
func (c *Config) maxPositions() int {
	if c.Context > 0 {
		return c.Context
	}
	return c.Base.Context
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	const maxWidth = 1 << 16
	switch {
	case c.Type != Type:
		return bad("type %q, want %q", c.Type, Type)
	case c.Base.Dim <= 0 || c.Base.Dim > maxWidth:
		return bad("base dim %d", c.Base.Dim)
	case c.Base.Layers < 0 || c.Base.Vocab < 0 || c.Base.Context < 0:
		return bad("negative base layers, vocab or context")
	case c.Width <= 0 || c.Width > maxWidth:
		return bad("width %d", c.Width)
	case c.Blocks < 1 || c.Blocks > MaxBlocks:
		return bad("%d blocks, want 1 to %d", c.Blocks, MaxBlocks)
	case c.Heads <= 0 || c.Width%c.Heads != 0 || (c.Width/c.Heads)%2 != 0:
		return bad("%d attention heads do not split width %d into even head sizes", c.Heads, c.Width)
	case c.FFN <= 0 || c.FFN > maxWidth:
		return bad("ffn %d", c.FFN)
	case !(c.RopeTheta > 1) || math.IsInf(float64(c.RopeTheta), 0):
		return bad("rope_theta %v", c.RopeTheta)
	case !(c.NormEps > 0) || c.NormEps > 1:
		return bad("norm_eps %v", c.NormEps)
	case c.Context < 0:
		return bad("context %d", c.Context)
	case math.IsNaN(float64(c.Alpha)) || math.IsInf(float64(c.Alpha), 0):
		return bad("alpha %v", c.Alpha)
	case len(c.Taps) > 64:
		return bad("%d taps", len(c.Taps))
	case c.DType != "" && c.DType != DTypeF32 && c.DType != DTypeF16:
		return bad("dtype %q (f32 or f16)", c.DType)
	}
	seen := map[int]bool{}
	for _, t := range c.taps() {
		if t < FinalLayer || (c.Base.Layers > 0 && t >= c.Base.Layers) {
			return bad("tap %d outside the base's %d layers", t, c.Base.Layers)
		}
		if seen[t] {
			return bad("tap %d listed twice", t)
		}
		seen[t] = true
	}
	if c.InputDim() > maxWidth*4 {
		return bad("input width %d", c.InputDim())
	}
	switch c.Bridge.Kind {
	case BridgeIdentity, BridgeInt8:
		if c.Bridge.Dim != 0 {
			return bad("bridge %s takes no dim", c.Bridge.Kind)
		}
	case BridgeLinear:
		if c.Bridge.Dim < 0 || c.Bridge.Dim > maxWidth {
			return bad("bridge dim %d", c.Bridge.Dim)
		}
	default:
		return bad("bridge kind %q (identity, int8 or linear)", c.Bridge.Kind)
	}
	return nil
}

// parseConfig decodes and validates config.json.
func parseConfig(data []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
