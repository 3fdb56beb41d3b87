package carryon

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/carryon/carryon/models/safetensors"
)

// DeltaInitStd is the standard deviation of each element of Δx of a freshly
// initialized head (before the gate and α): small, so that a fresh head
// stays close to the base model.
const DeltaInitStd = 0.01

// weights holds a head's parameters as float32, matrices row-major
// [out][in].
type weights struct {
	bridge           []float32 // [b][in], linear bridge only
	in, inBias       []float32 // [r][b], [r]
	blocks           []blockWeights
	outNorm          []float32 // [r]
	delta, deltaBias []float32 // [d][r], [d]
	gate, gateBias   []float32 // [d][r], [d]
}

type blockWeights struct {
	attnNorm       []float32 // [r]
	q, k, v, o     []float32 // [r][r]
	ffnNorm        []float32 // [r]
	ffnGate, ffnUp []float32 // [f][r]
	ffnDown        []float32 // [r][f]
}

// param describes one tensor of weights.safetensors.
type param struct {
	name  string
	shape []int      // [out, in] or [n]
	init  float64    // standard deviation of a normal init; 0 zeros, -1 ones
	dst   *[]float32 // where it lives in weights
}

// params lists a configuration's tensors in file order, bound to w.
func (c *Config) params(w *weights) []param {
	in, b, r, f, d := c.InputDim(), c.bridgeDim(), c.Width, c.FFN, c.Base.Dim
	const ones = -1
	residual := 1 / math.Sqrt(2*float64(c.Blocks))
	var ps []param
	if c.Bridge.Kind == BridgeLinear {
		ps = append(ps, param{"bridge.weight", []int{b, in}, 1 / math.Sqrt(float64(in)), &w.bridge})
	}
	ps = append(ps,
		param{"in.weight", []int{r, b}, 1 / math.Sqrt(float64(b)), &w.in},
		param{"in.bias", []int{r}, 0, &w.inBias})
	if len(w.blocks) != c.Blocks {
		w.blocks = make([]blockWeights, c.Blocks)
	}
	for l := range w.blocks {
		bw := &w.blocks[l]
		p := fmt.Sprintf("blk.%d.", l)
		ps = append(ps,
			param{p + "attn_norm.weight", []int{r}, ones, &bw.attnNorm},
			param{p + "attn_q.weight", []int{r, r}, 1 / math.Sqrt(float64(r)), &bw.q},
			param{p + "attn_k.weight", []int{r, r}, 1 / math.Sqrt(float64(r)), &bw.k},
			param{p + "attn_v.weight", []int{r, r}, 1 / math.Sqrt(float64(r)), &bw.v},
			param{p + "attn_output.weight", []int{r, r}, residual / math.Sqrt(float64(r)), &bw.o},
			param{p + "ffn_norm.weight", []int{r}, ones, &bw.ffnNorm},
			param{p + "ffn_gate.weight", []int{f, r}, 1 / math.Sqrt(float64(r)), &bw.ffnGate},
			param{p + "ffn_up.weight", []int{f, r}, 1 / math.Sqrt(float64(r)), &bw.ffnUp},
			param{p + "ffn_down.weight", []int{r, f}, residual / math.Sqrt(float64(f)), &bw.ffnDown})
	}
	ps = append(ps,
		param{"out_norm.weight", []int{r}, ones, &w.outNorm},
		param{"delta.weight", []int{d, r}, DeltaInitStd / math.Sqrt(float64(r)), &w.delta},
		param{"delta.bias", []int{d}, 0, &w.deltaBias},
		param{"gate.weight", []int{d, r}, 1 / math.Sqrt(float64(r)), &w.gate},
		param{"gate.bias", []int{d}, 0, &w.gateBias})
	return ps
}

func elements(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// initWeights draws fresh weights for c from c.Seed. Each tensor has its own
// generator, seeded by the seed and the tensor's name.
func initWeights(c *Config) *weights {
	w := &weights{}
	for _, p := range c.params(w) {
		v := make([]float32, elements(p.shape))
		switch {
		case p.init < 0:
			for i := range v {
				v[i] = 1
			}
		case p.init > 0:
			h := fnv.New64a()
			h.Write([]byte(p.name))
			rng := rand.New(rand.NewPCG(c.Seed, h.Sum64()))
			for i := range v {
				v[i] = float32(rng.NormFloat64() * p.init)
			}
		}
		*p.dst = v
	}
	return w
}

// encodeWeights writes w as a safetensors file, every tensor F32.
func encodeWeights(c *Config, w *weights) (*safetensors.Writer, error) {
	out := safetensors.NewWriter()
	out.Metadata = map[string]string{"format": Type}
	for _, p := range c.params(w) {
		if err := out.AddFloat32(p.name, safetensors.F32, p.shape, *p.dst); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeWeights reads the tensors c calls for from f: every one must be
// present with its shape, as F32, F16 or BF16, and nothing else may be.
func decodeWeights(c *Config, f *safetensors.File) (*weights, error) {
	w := &weights{}
	ps := c.params(w)
	if len(f.Tensors) != len(ps) {
		names := make([]string, 0, len(f.Tensors))
		for _, t := range f.Tensors {
			names = append(names, t.Name)
		}
		for _, p := range ps {
			if _, ok := f.Tensor(p.name); !ok {
				return nil, fmt.Errorf("weights: missing tensor %s", p.name)
			}
		}
		return nil, fmt.Errorf("weights: %d tensors, the config calls for %d (file has %v)", len(f.Tensors), len(ps), names)
	}
	for _, p := range ps {
		t, ok := f.Tensor(p.name)
		if !ok {
			return nil, fmt.Errorf("weights: missing tensor %s", p.name)
		}
		if !slices.Equal(t.Shape, p.shape) {
			return nil, fmt.Errorf("weights: tensor %s has shape %v, the config calls for %v", p.name, t.Shape, p.shape)
		}
		v, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("weights: %w", err)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("weights: tensor %s holds %v", p.name, x)
			}
		}
		*p.dst = v
	}
	return w, nil
}

// count returns the number of parameters.
func (c *Config) count() int64 {
	var n int64
	for _, p := range c.params(&weights{}) {
		n += int64(elements(p.shape))
	}
	return n
}
