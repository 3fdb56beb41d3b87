package carryon

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/kernels"
	"github.com/carryon/carryon/models/safetensors"
)

// DeltaInitStd is the standard deviation of each element of Δx of a freshly
// initialized head (before the gate and α): small, so that a fresh head
// stays close to the base model.
const DeltaInitStd = 0.01

// matrix is a row-major [out][in] weight matrix held in the head's weight
// type: exactly one of f32 and f16 (IEEE half bit patterns) is set.
type matrix struct {
	f32 []float32
	f16 []uint16
}

// dotRows sets out[o] = row o · x for the len(out) rows of len(x) values.
func (m *matrix) dotRows(out, x []float32) {
	// The shapes come from a validated config; the kernels cannot fail.
	if m.f16 != nil {
		_ = kernels.DotRowsF16(out, x, m.f16, len(x))
		return
	}
	_ = kernels.DotRowsF32(out, x, m.f32, len(x))
}

// float32s returns the matrix's values as float32.
func (m *matrix) float32s() []float32 {
	if m.f16 == nil {
		return m.f32
	}
	out := make([]float32, len(m.f16))
	for i, h := range m.f16 {
		out[i] = ggml.F16ToF32(h)
	}
	return out
}

// weights holds a head's parameters.
type weights struct {
	bridge      matrix    // [b][in], linear bridge only
	in          matrix    // [r][b]
	inBias      []float32 // [r]
	blocks      []blockWeights
	outNorm     []float32 // [r]
	delta, gate matrix    // [d][r]
	deltaBias   []float32 // [d]
	gateBias    []float32 // [d]
}

type blockWeights struct {
	attnNorm       []float32 // [r]
	q, k, v, o     matrix    // [r][r]
	ffnNorm        []float32 // [r]
	ffnGate, ffnUp matrix    // [f][r]
	ffnDown        matrix    // [r][f]
}

// param describes one tensor of weights.safetensors: a matrix (mat set) or a
// vector (vec set), always stored and used as float32.
type param struct {
	name  string
	shape []int   // [out, in] or [n]
	init  float64 // standard deviation of a normal init; 0 zeros, -1 ones
	mat   *matrix
	vec   *[]float32
}

// params lists a configuration's tensors in file order, bound to w.
func (c *Config) params(w *weights) []param {
	in, b, r, f, d := c.InputDim(), c.bridgeDim(), c.Width, c.FFN, c.Base.Dim
	const ones = -1
	residual := 1 / math.Sqrt(2*float64(c.Blocks))
	std := func(fanIn int) float64 { return 1 / math.Sqrt(float64(fanIn)) }
	var ps []param
	if c.Bridge.Kind == BridgeLinear {
		ps = append(ps, param{name: "bridge.weight", shape: []int{b, in}, init: std(in), mat: &w.bridge})
	}
	ps = append(ps,
		param{name: "in.weight", shape: []int{r, b}, init: std(b), mat: &w.in},
		param{name: "in.bias", shape: []int{r}, vec: &w.inBias})
	if len(w.blocks) != c.Blocks {
		w.blocks = make([]blockWeights, c.Blocks)
	}
	for l := range w.blocks {
		bw := &w.blocks[l]
		p := fmt.Sprintf("blk.%d.", l)
		ps = append(ps,
			param{name: p + "attn_norm.weight", shape: []int{r}, init: ones, vec: &bw.attnNorm},
			param{name: p + "attn_q.weight", shape: []int{r, r}, init: std(r), mat: &bw.q},
			param{name: p + "attn_k.weight", shape: []int{r, r}, init: std(r), mat: &bw.k},
			param{name: p + "attn_v.weight", shape: []int{r, r}, init: std(r), mat: &bw.v},
			param{name: p + "attn_output.weight", shape: []int{r, r}, init: residual * std(r), mat: &bw.o},
			param{name: p + "ffn_norm.weight", shape: []int{r}, init: ones, vec: &bw.ffnNorm},
			param{name: p + "ffn_gate.weight", shape: []int{f, r}, init: std(r), mat: &bw.ffnGate},
			param{name: p + "ffn_up.weight", shape: []int{f, r}, init: std(r), mat: &bw.ffnUp},
			param{name: p + "ffn_down.weight", shape: []int{r, f}, init: residual * std(f), mat: &bw.ffnDown})
	}
	ps = append(ps,
		param{name: "out_norm.weight", shape: []int{r}, init: ones, vec: &w.outNorm},
		param{name: "delta.weight", shape: []int{d, r}, init: DeltaInitStd * std(r), mat: &w.delta},
		param{name: "delta.bias", shape: []int{d}, vec: &w.deltaBias},
		param{name: "gate.weight", shape: []int{d, r}, init: std(r), mat: &w.gate},
		param{name: "gate.bias", shape: []int{d}, vec: &w.gateBias})
	return ps
}

func elements(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// setMatrix stores values in m in the config's weight type.
func (c *Config) setMatrix(m *matrix, values []float32) {
	if c.dtype() == DTypeF16 {
		m.f32 = nil
		m.f16 = make([]uint16, len(values))
		for i, v := range values {
			m.f16[i] = ggml.F32ToF16(v)
		}
		return
	}
	m.f32, m.f16 = values, nil
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
		if p.mat != nil {
			c.setMatrix(p.mat, v)
		} else {
			*p.vec = v
		}
	}
	return w
}

// encodeWeights writes w as a safetensors file: matrices in the head's
// weight type, vectors F32.
func encodeWeights(c *Config, w *weights) (*safetensors.Writer, error) {
	out := safetensors.NewWriter()
	out.Metadata = map[string]string{"format": Type}
	for _, p := range c.params(w) {
		var err error
		switch {
		case p.mat != nil && p.mat.f16 != nil:
			data := make([]byte, 2*len(p.mat.f16))
			for i, h := range p.mat.f16 {
				binary.LittleEndian.PutUint16(data[2*i:], h)
			}
			err = out.Add(p.name, safetensors.F16, p.shape, data)
		case p.mat != nil:
			err = out.AddFloat32(p.name, safetensors.F32, p.shape, p.mat.f32)
		default:
			err = out.AddFloat32(p.name, safetensors.F32, p.shape, *p.vec)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeWeights reads the tensors c calls for from f: every one must be
// present with its shape, as F32, F16 or BF16, and nothing else may be.
// Matrices are converted to the head's weight type (F16 tensors of an F16
// head are taken as they are).
func decodeWeights(c *Config, f *safetensors.File) (*weights, error) {
	w := &weights{}
	ps := c.params(w)
	for _, p := range ps {
		if _, ok := f.Tensor(p.name); !ok {
			return nil, fmt.Errorf("weights: missing tensor %s", p.name)
		}
	}
	if len(f.Tensors) != len(ps) {
		var extra []string
		for _, t := range f.Tensors {
			if !slices.ContainsFunc(ps, func(p param) bool { return p.name == t.Name }) {
				extra = append(extra, t.Name)
			}
		}
		return nil, fmt.Errorf("weights: tensors the config does not call for: %v", extra)
	}
	for _, p := range ps {
		t, _ := f.Tensor(p.name)
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
		switch {
		case p.mat != nil && c.dtype() == DTypeF16 && t.DType == safetensors.F16:
			p.mat.f16 = make([]uint16, len(v))
			for i := range p.mat.f16 {
				p.mat.f16[i] = binary.LittleEndian.Uint16(t.Data[2*i:])
			}
		case p.mat != nil:
			c.setMatrix(p.mat, v)
		default:
			*p.vec = v
		}
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
