package gtt

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Weight matrices are stored input-major: a linear map from n inputs to m
// outputs is an n×m row-major matrix W with y = x·W + b. The tensor names and
// shapes below are those of the safetensors files.

// tensorSpec places one named tensor in the flat parameter vector.
type tensorSpec struct {
	name  string
	shape []int
	off   int
	init  initKind
	scale float64 // standard deviation for initNormal
}

type initKind uint8

const (
	initZero initKind = iota
	initOne
	initNormal
)

func (s tensorSpec) size() int {
	n := 1
	for _, d := range s.shape {
		n *= d
	}
	return n
}

// layout lists every tensor of a model of shape cfg, in file order, and
// returns the total number of parameters.
func layout(cfg Config) ([]tensorSpec, int) {
	var specs []tensorSpec
	total := 0
	add := func(name string, kind initKind, scale float64, shape ...int) {
		s := tensorSpec{name: name, shape: shape, off: total, init: kind, scale: scale}
		specs = append(specs, s)
		total += s.size()
	}
	d, f, p := cfg.Dim, cfg.MLPDim, cfg.PatchLen
	resid := 1 / math.Sqrt(2*float64(cfg.Layers))
	add("embed.weight", initNormal, 1/math.Sqrt(float64(2*p)), 2*p, d)
	add("embed.bias", initZero, 0, d)
	for l := 0; l < cfg.Layers; l++ {
		pre := fmt.Sprintf("layers.%d.", l)
		add(pre+"norm_time.weight", initOne, 0, d)
		add(pre+"norm_time.bias", initZero, 0, d)
		add(pre+"norm_channel.weight", initOne, 0, d)
		add(pre+"norm_channel.bias", initZero, 0, d)
		add(pre+"norm_mlp.weight", initOne, 0, d)
		add(pre+"norm_mlp.bias", initZero, 0, d)
		add(pre+"attn.qkv.weight", initNormal, 1/math.Sqrt(float64(d)), d, 3*d)
		add(pre+"attn.qkv.bias", initZero, 0, 3*d)
		add(pre+"attn.out.weight", initNormal, resid/math.Sqrt(float64(d)), d, d)
		add(pre+"attn.out.bias", initZero, 0, d)
		add(pre+"mlp.up.weight", initNormal, 1/math.Sqrt(float64(d)), d, f)
		add(pre+"mlp.up.bias", initZero, 0, f)
		add(pre+"mlp.down.weight", initNormal, resid/math.Sqrt(float64(f)), f, d)
		add(pre+"mlp.down.bias", initZero, 0, d)
	}
	add("norm_out.weight", initOne, 0, d)
	add("norm_out.bias", initZero, 0, d)
	add("head.weight", initNormal, 0.02, d, p)
	add("head.bias", initZero, 0, p)
	return specs, total
}

// layerParams are views of one encoder layer's tensors.
type layerParams struct {
	normTimeW, normTimeB []float32
	normChanW, normChanB []float32
	normMLPW, normMLPB   []float32
	qkvW, qkvB           []float32
	outW, outB           []float32
	upW, upB             []float32
	downW, downB         []float32
}

// paramViews are views of every tensor of a flat parameter vector (weights,
// gradients or optimizer moments share the layout).
type paramViews struct {
	embedW, embedB []float32
	layers         []layerParams
	normOutW       []float32
	normOutB       []float32
	headW, headB   []float32
}

// bind returns views of data laid out as specs.
func bind(cfg Config, specs []tensorSpec, data []float32) paramViews {
	i := 0
	next := func() []float32 {
		s := specs[i]
		i++
		return data[s.off : s.off+s.size() : s.off+s.size()]
	}
	var v paramViews
	v.embedW, v.embedB = next(), next()
	v.layers = make([]layerParams, cfg.Layers)
	for l := range v.layers {
		lp := &v.layers[l]
		lp.normTimeW, lp.normTimeB = next(), next()
		lp.normChanW, lp.normChanB = next(), next()
		lp.normMLPW, lp.normMLPB = next(), next()
		lp.qkvW, lp.qkvB = next(), next()
		lp.outW, lp.outB = next(), next()
		lp.upW, lp.upB = next(), next()
		lp.downW, lp.downB = next(), next()
	}
	v.normOutW, v.normOutB = next(), next()
	v.headW, v.headB = next(), next()
	return v
}

// initParams fills data with a fresh initialization drawn from seed.
func initParams(specs []tensorSpec, data []float32, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x67747431))
	for _, s := range specs {
		t := data[s.off : s.off+s.size()]
		switch s.init {
		case initZero:
			clear(t)
		case initOne:
			for i := range t {
				t[i] = 1
			}
		case initNormal:
			for i := range t {
				t[i] = float32(rng.NormFloat64() * s.scale)
			}
		}
	}
}
