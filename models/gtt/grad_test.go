package gtt

import (
	"math"
	"math/rand/v2"
	"testing"
)

// tinyConfig is small enough to check every gradient by finite differences.
var tinyConfig = Config{Dim: 8, Layers: 2, Heads: 2, MLPDim: 16, PatchLen: 4, Context: 16}

// gradBatch builds a batch with padding, a masked patch and two groups.
func gradBatch(t *testing.T, cfg Config, rng *rand.Rand) *batch {
	t.Helper()
	b := newBatch(cfg)
	nan := float32(math.NaN())
	g1 := make([][]float32, 3)
	for c := range g1 {
		g1[c] = make([]float32, 14)
		for i := range g1[c] {
			g1[c][i] = float32(rng.NormFloat64()) + float32(c)
		}
	}
	g1[1][0], g1[1][1], g1[2][7] = nan, nan, nan
	b.addGroup(g1)
	g2 := [][]float32{make([]float32, 7)}
	for i := range g2[0] {
		g2[0][i] = float32(i) * 0.3
	}
	b.addGroup(g2)
	return b
}

// gradLoss is Σ c·out + ½Σ out², computed in float64; dout is its gradient.
func gradLoss(out, coef []float32, dout []float32) float64 {
	var l float64
	for i, v := range out {
		l += float64(coef[i])*float64(v) + 0.5*float64(v)*float64(v)
		if dout != nil {
			dout[i] = coef[i] + v
		}
	}
	return l
}

func TestGradientMatchesFiniteDifferences(t *testing.T) {
	for _, layers := range []int{1, 2} {
		cfg := tinyConfig
		cfg.Layers = layers
		checkGradient(t, cfg)
	}
}

func checkGradient(t *testing.T, cfg Config) {
	rng := rand.New(rand.NewPCG(7, 8))
	m, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Move norms and biases away from their initial 1s and 0s.
	for i := range m.params {
		m.params[i] += float32(rng.NormFloat64() * 0.2)
	}
	b := gradBatch(t, cfg, rng)
	if b.present[4] {
		t.Fatalf("the second channel's first patch holds only missing values, yet is marked present")
	}
	ws := &workspace{train: true}
	m.forward(b, ws)
	coef := randSlice(rng, len(ws.out))
	dout := make([]float32, len(ws.out))
	gradLoss(ws.out, coef, dout)
	grads := make([]float32, len(m.params))
	m.backward(b, ws, dout, bind(cfg, m.specs, grads))

	lossAt := func() float64 {
		w := &workspace{}
		m.forward(b, w)
		return gradLoss(w.out, coef, nil)
	}
	const eps = 1e-2
	bad := 0
	for _, s := range m.specs {
		for i := s.off; i < s.off+s.size(); i++ {
			old := m.params[i]
			m.params[i] = old + eps
			lp := lossAt()
			m.params[i] = old - eps
			lm := lossAt()
			m.params[i] = old
			num := (lp - lm) / (2 * eps)
			ana := float64(grads[i])
			den := math.Max(math.Max(math.Abs(num), math.Abs(ana)), 0.05)
			if math.Abs(num-ana)/den > 0.03 {
				bad++
				if bad < 10 {
					t.Errorf("%s[%d]: backward %g, finite difference %g", s.name, i-s.off, ana, num)
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d layers: %d of %d gradients disagree", cfg.Layers, bad, len(m.params))
	}
}

// TestLastLayerShortcutMatchesFullLayer checks that computing the last
// layer at the channels' last tokens only gives what the full layer gives
// there.
func TestLastLayerShortcutMatchesFullLayer(t *testing.T) {
	cfg := tinyConfig
	cfg.Layers = 3
	rng := rand.New(rand.NewPCG(5, 6))
	m, _ := New(cfg, 9)
	for i := range m.params {
		m.params[i] += float32(rng.NormFloat64() * 0.2)
	}
	b := gradBatch(t, cfg, rng)
	ws := &workspace{}
	m.forward(b, ws)

	// Reference: every layer in full, then the head on the last tokens.
	full := &workspace{train: true}
	m.forward(b, full) // sizes the per-layer buffers
	d, pl := cfg.Dim, cfg.PatchLen
	in := append([]float32(nil), full.resid[0]...)
	out := make([]float32, len(in))
	c := &layerCache{}
	for l := 0; l < cfg.Layers; l++ {
		n, f := b.n, cfg.MLPDim
		c.xhat1, c.rstd1, c.a1, c.qkv1, c.att1, c.h1 = make([]float32, n*d), make([]float32, n), make([]float32, n*d), make([]float32, n*3*d), make([]float32, n*d), make([]float32, n*d)
		c.xhat2, c.rstd2, c.a2, c.qkv2, c.att2, c.h2 = make([]float32, n*d), make([]float32, n), make([]float32, n*d), make([]float32, n*3*d), make([]float32, n*d), make([]float32, n*d)
		c.xhat3, c.rstd3, c.a3, c.u, c.t, c.g = make([]float32, n*d), make([]float32, n), make([]float32, n*d), make([]float32, n*f), make([]float32, n*f), make([]float32, n*f)
		m.layerForward(b, full, &m.w.layers[l], c, in, out)
		in, out = out, in
	}
	r := b.rows
	last := make([]float32, r*d)
	for i, tk := range b.last {
		copy(last[i*d:], in[int(tk)*d:int(tk+1)*d])
	}
	a := make([]float32, r*d)
	layerNorm(a, last, m.w.normOutW, m.w.normOutB, r, d, nil, nil)
	want := make([]float32, r*pl)
	for i := 0; i < r; i++ {
		for k := 0; k < pl; k++ {
			want[i*pl+k] = m.w.headB[k] + b.lastVal[i]
		}
	}
	refGemm(want, pl, a, d, m.w.headW, pl, r, pl, d)
	for i := range want {
		if math.Abs(float64(want[i]-ws.out[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("output %d: %g with the shortcut, %g with the full layer", i, ws.out[i], want[i])
		}
	}
}
