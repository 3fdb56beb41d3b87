package carryon

import (
	"context"
	"math"
	"testing"
)

// The reference below computes a head in float64, straight from the
// definitions: no cache (every position's attention is recomputed over the
// whole prefix), no kernels, the weights read from the head.

func refLinear(m *matrix, bias []float32, x []float64, out int) []float64 {
	w := m.float32s()
	n := len(x)
	y := make([]float64, out)
	for o := range out {
		s := 0.0
		for i := range n {
			s += float64(w[o*n+i]) * x[i]
		}
		if bias != nil {
			s += float64(bias[o])
		}
		y[o] = s
	}
	return y
}

func refRMSNorm(x []float64, w []float32, eps float32) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	s := 1 / math.Sqrt(ss/float64(len(x))+float64(eps))
	y := make([]float64, len(x))
	for i := range x {
		y[i] = x[i] * s * float64(w[i])
	}
	return y
}

func refRoPE(x []float64, pos int, theta float64) {
	half := len(x) / 2
	for j := range half {
		a := float64(pos) * math.Pow(theta, -2*float64(j)/float64(len(x)))
		c, s := math.Cos(a), math.Sin(a)
		x0, x1 := x[j], x[j+half]
		x[j] = x0*c - x1*s
		x[j+half] = x0*s + x1*c
	}
}

// refForward returns the deltas of one sequence's rows from position 0.
func refForward(h *Head, in [][]float32) [][]float64 {
	c, w := &h.cfg, h.w
	r, f, d := c.Width, c.FFN, c.Base.Dim
	hd := r / c.Heads
	T := len(in)
	xs := make([][]float64, T)
	for t := range T {
		u := make([]float64, len(in[t]))
		for i, v := range in[t] {
			u[i] = float64(v)
		}
		if c.Bridge.Kind == BridgeLinear {
			u = refLinear(&w.bridge, nil, u, c.bridgeDim())
		}
		xs[t] = refLinear(&w.in, w.inBias, u, r)
	}
	for l := range w.blocks {
		bw := &w.blocks[l]
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range T {
			a := refRMSNorm(xs[t], bw.attnNorm, c.NormEps)
			q[t], k[t], v[t] = refLinear(&bw.q, nil, a, r), refLinear(&bw.k, nil, a, r), refLinear(&bw.v, nil, a, r)
			for hh := range c.Heads {
				refRoPE(q[t][hh*hd:(hh+1)*hd], t, float64(c.RopeTheta))
				refRoPE(k[t][hh*hd:(hh+1)*hd], t, float64(c.RopeTheta))
			}
		}
		for t := range T {
			att := make([]float64, r)
			for hh := range c.Heads {
				o := hh * hd
				scores := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					s := 0.0
					for i := range hd {
						s += q[t][o+i] * k[j][o+i]
					}
					scores[j] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, scores[j])
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - mx)
					sum += scores[j]
				}
				for j := range scores {
					for i := range hd {
						att[o+i] += scores[j] / sum * v[j][o+i]
					}
				}
			}
			proj := refLinear(&bw.o, nil, att, r)
			for i := range r {
				xs[t][i] += proj[i]
			}
			m := refRMSNorm(xs[t], bw.ffnNorm, c.NormEps)
			g, u := refLinear(&bw.ffnGate, nil, m, f), refLinear(&bw.ffnUp, nil, m, f)
			for i := range f {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			down := refLinear(&bw.ffnDown, nil, g, r)
			for i := range r {
				xs[t][i] += down[i]
			}
		}
	}
	out := make([][]float64, T)
	for t := range T {
		hn := refRMSNorm(xs[t], w.outNorm, c.NormEps)
		dl := refLinear(&w.delta, w.deltaBias, hn, d)
		gt := refLinear(&w.gate, w.gateBias, hn, d)
		out[t] = make([]float64, d)
		for i := range d {
			out[t][i] = float64(c.Alpha) / (1 + math.Exp(-gt[i])) * dl[i]
		}
	}
	return out
}

func TestAgainstFloat64Reference(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blocks int
		bridge Bridge
		taps   []int
		dtype  string
	}{
		{"one block", 1, Bridge{Kind: BridgeIdentity}, nil, DTypeF32},
		{"two blocks, linear bridge, two taps", 2, Bridge{Kind: BridgeLinear, Dim: 10}, []int{FinalLayer, 2}, DTypeF32},
		{"four blocks", 4, Bridge{Kind: BridgeIdentity}, []int{0}, DTypeF32},
		{"two blocks, f16 weights", 2, Bridge{Kind: BridgeLinear}, nil, DTypeF16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(80)
			c.Blocks, c.Bridge, c.Taps, c.DType = tc.blocks, tc.bridge, tc.taps, tc.dtype
			c.Alpha = 100 // deltas of order one
			h := newHead(t, c)
			// Give biases and norms non-trivial values so that they are
			// checked too.
			for i := range h.w.inBias {
				h.w.inBias[i] = 0.1 * float32(i%3-1)
			}
			for i := range h.w.outNorm {
				h.w.outNorm[i] = 1 + 0.05*float32(i%5)
			}
			for i := range h.w.gateBias {
				h.w.gateBias[i] = 0.3 * float32(i%4-2)
			}
			in := inputs(81, 12, c.InputDim())
			got, err := h.Forward(context.Background(), seqRows("", 1, 0, in))
			if err != nil {
				t.Fatal(err)
			}
			want := refForward(h, in)
			var worst, scale float64
			for i := range want {
				for j := range want[i] {
					worst = math.Max(worst, math.Abs(float64(got[i][j])-want[i][j]))
					scale = math.Max(scale, math.Abs(want[i][j]))
				}
			}
			if scale < 0.05 {
				t.Fatalf("deltas too small to compare: max |Δ| %v", scale)
			}
			if worst > 2e-5*scale {
				t.Fatalf("max error %v against max |Δ| %v", worst, scale)
			}
			t.Logf("max error %.2g, max |Δ| %.2g", worst, scale)
		})
	}
}
