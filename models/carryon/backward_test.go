package carryon

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

func tinyTrainConfig(bridge string, taps []int) Config {
	c := DefaultConfig(Base{Arch: "llama", Dim: 8, Vocab: 16, Layers: 2, Fingerprint: "sha256:test"})
	c.Width, c.Heads, c.FFN, c.Blocks = 8, 2, 12, 2
	c.Bridge = Bridge{Kind: bridge}
	if bridge == BridgeLinear {
		c.Bridge.Dim = 6
	}
	c.Taps = taps
	c.DType = DTypeF32
	c.Alpha = 0.7
	c.Seed = 3
	return c
}

// randomize moves every parameter away from its init so that no gradient
// vanishes by symmetry (zero biases, unit norms).
func randomize[T float](n *net[T], seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range n.p {
		for j := range p {
			p[j] += T(rng.NormFloat64() * 0.3)
		}
	}
}

// TestGradientsMatchFiniteDifferences checks the gradient of every
// parameter and of α, for each bridge kind, against central differences of
// a random linear function of the head's output, in float64.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		bridge string
		taps   []int
	}{{BridgeIdentity, nil}, {BridgeLinear, []int{FinalLayer, 0}}} {
		cfg := tinyTrainConfig(tc.bridge, tc.taps)
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nt := newNet[float64](&h.cfg, h.w)
		randomize(nt, 7)
		const n = 5
		rng := rand.New(rand.NewPCG(9, 9))
		u := make([]float64, n*cfg.InputDim())
		for i := range u {
			u[i] = rng.NormFloat64()
		}
		coef := make([]float64, n*cfg.Base.Dim)
		for i := range coef {
			coef[i] = rng.NormFloat64()
		}
		loss := func() float64 {
			out, _ := nt.forward(u, n)
			var s float64
			for i, o := range out {
				s += coef[i] * o
			}
			return s
		}
		_, tr := nt.forward(u, n)
		grads := nt.zeros()
		dAlpha := nt.backward(tr, coef, grads)
		const eps = 1e-6
		check := func(name string, v *float64, g float64) {
			old := *v
			*v = old + eps
			up := loss()
			*v = old - eps
			down := loss()
			*v = old
			fd := (up - down) / (2 * eps)
			if math.Abs(fd-g) > 1e-6*math.Max(1, math.Abs(fd)) {
				t.Errorf("%s bridge: %s: gradient %v, finite differences %v", tc.bridge, name, g, fd)
			}
		}
		for i, p := range nt.p {
			// Every element of small tensors, a sample of larger ones.
			step := max(1, len(p)/17)
			for j := 0; j < len(p); j += step {
				check(nt.names[i], &p[j], grads[i][j])
			}
		}
		check("alpha", &nt.alpha, dAlpha)
	}
}

// TestTrainingForwardMatchesHead checks that the training network computes
// what Head.Forward serves, for each bridge kind.
func TestTrainingForwardMatchesHead(t *testing.T) {
	for _, bridge := range []string{BridgeIdentity, BridgeInt8, BridgeLinear} {
		cfg := tinyTrainConfig(bridge, nil)
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nt := newNet[float32](&h.cfg, h.w)
		randomize(nt, 5)
		h.w = nt.weights()
		const n = 6
		rng := rand.New(rand.NewPCG(4, 4))
		raw := make([]float32, n*cfg.InputDim())
		for i := range raw {
			raw[i] = float32(rng.NormFloat64())
		}
		rows := make([]Row, n)
		for i := range rows {
			rows[i] = Row{Seq: 1, Pos: i, Input: raw[i*cfg.InputDim() : (i+1)*cfg.InputDim()]}
		}
		want, err := h.Forward(context.Background(), rows)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := nt.forward(bridgeInput(&h.cfg, raw), n)
		for i := range n {
			for j := range cfg.Base.Dim {
				if d := math.Abs(float64(got[i*cfg.Base.Dim+j] - want[i][j])); d > 1e-4 {
					t.Fatalf("%s bridge: position %d, element %d: training forward %v, head %v", bridge, i, j, got[i*cfg.Base.Dim+j], want[i][j])
				}
			}
		}
	}
}
