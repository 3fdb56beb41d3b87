package carryon

import (
	"math"

	"github.com/carryon/carryon/models/kernels"
)

// float is the element type of a trainable network: float32 for training,
// float64 for the gradient checks.
type float interface{ ~float32 | ~float64 }

// dot returns a·b (the vector kernel for float32).
func dot[T float](a, b []T) T {
	if a32, ok := any(a).([]float32); ok {
		return T(kernels.DotF32(a32, any(b).([]float32)))
	}
	var s T
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// axpy adds alpha·x to y (the vector kernel for float32).
func axpy[T float](y []T, alpha T, x []T) {
	if y32, ok := any(y).([]float32); ok {
		kernels.Axpy(y32, float32(alpha), any(x).([]float32))
		return
	}
	for i, v := range x {
		y[i] += alpha * v
	}
}

// matNT sets dst[i·out+o] = x[i]·w[o] (+ bias[o]) for m rows of n values and
// a row-major [out][n] matrix w.
func matNT[T float](dst, x, w, bias []T, m, n, out int) {
	for i := range m {
		xi, di := x[i*n:(i+1)*n], dst[i*out:(i+1)*out]
		for o := range out {
			di[o] = dot(xi, w[o*n:(o+1)*n])
			if bias != nil {
				di[o] += bias[o]
			}
		}
	}
}

// matNTBack is the backward of matNT given dy (m rows of out): it adds
// dy·w to dx (when not nil), dyᵀ·x to dw and the column sums of dy to
// dbias (when not nil).
func matNTBack[T float](dx, dw, dbias, dy, x, w []T, m, n, out int) {
	for i := range m {
		dyi, xi := dy[i*out:(i+1)*out], x[i*n:(i+1)*n]
		var dxi []T
		if dx != nil {
			dxi = dx[i*n : (i+1)*n]
		}
		for o, g := range dyi {
			if g == 0 {
				continue
			}
			if dxi != nil {
				axpy(dxi, g, w[o*n:(o+1)*n])
			}
			axpy(dw[o*n:(o+1)*n], g, xi)
			if dbias != nil {
				dbias[o] += g
			}
		}
	}
}

// rmsNorm sets y = x/rms(x)·w for m rows of len(w) and records each row's
// 1/rms in inv.
func rmsNorm[T float](y, x, w, inv []T, m int, eps float32) {
	r := len(w)
	for i := range m {
		xi, yi := x[i*r:(i+1)*r], y[i*r:(i+1)*r]
		ss := dot(xi, xi)
		s := T(1 / math.Sqrt(float64(ss)/float64(r)+float64(eps)))
		inv[i] = s
		for j := range r {
			yi[j] = xi[j] * s * w[j]
		}
	}
}

// rmsNormBack adds the gradients of rmsNorm given dy to dx and dw.
func rmsNormBack[T float](dx, dw, dy, x, w, inv []T, m int) {
	r := len(w)
	for i := range m {
		xi, dyi, dxi := x[i*r:(i+1)*r], dy[i*r:(i+1)*r], dx[i*r:(i+1)*r]
		s := inv[i]
		var c T
		for j := range r {
			dw[j] += dyi[j] * xi[j] * s
			c += dyi[j] * w[j] * xi[j]
		}
		c *= s * s * s / T(r)
		for j := range r {
			dxi[j] += s*dyi[j]*w[j] - xi[j]*c
		}
	}
}

// ropeT rotates the pairs (j, j+half) of one head's vector by the angles
// whose cosines and sines are given; inverse rotates the other way (the
// backward of a rotation is its transpose).
func ropeT[T float](x, cos, sin []T, inverse bool) {
	half := len(x) / 2
	for j := range half {
		a, b := x[j], x[j+half]
		c, s := cos[j], sin[j]
		if inverse {
			s = -s
		}
		x[j] = a*c - b*s
		x[j+half] = a*s + b*c
	}
}

func sigmoidT[T float](x T) T { return T(1 / (1 + math.Exp(-float64(x)))) }

// netIndex locates each tensor of a head in the params order.
type netIndex struct {
	bridge, in, inBias                        int
	blocks                                    []blockIndex
	outNorm, delta, deltaBias, gate, gateBias int
}

type blockIndex struct {
	attnNorm, q, k, v, o, ffnNorm, ffnGate, ffnUp, ffnDown int
}

// net is a head's network in a form that trains: every tensor in T, in the
// order of Config.params, with α beside them.
type net[T float] struct {
	cfg    *Config
	names  []string
	shapes [][]int
	p      [][]T
	alpha  T
	ix     netIndex
}

// newNet builds the trainable network of cfg with the values of w.
func newNet[T float](cfg *Config, w *weights) *net[T] {
	n := &net[T]{cfg: cfg, alpha: T(cfg.Alpha)}
	at := map[string]int{}
	for i, p := range cfg.params(w) {
		var v []float32
		if p.mat != nil {
			v = p.mat.float32s()
		} else {
			v = *p.vec
		}
		t := make([]T, len(v))
		for j, x := range v {
			t[j] = T(x)
		}
		n.names = append(n.names, p.name)
		n.shapes = append(n.shapes, p.shape)
		n.p = append(n.p, t)
		at[p.name] = i
	}
	ix := &n.ix
	ix.bridge = -1
	if i, ok := at["bridge.weight"]; ok {
		ix.bridge = i
	}
	ix.in, ix.inBias = at["in.weight"], at["in.bias"]
	for l := range cfg.Blocks {
		p := "blk." + itoa(l) + "."
		ix.blocks = append(ix.blocks, blockIndex{
			attnNorm: at[p+"attn_norm.weight"], q: at[p+"attn_q.weight"], k: at[p+"attn_k.weight"],
			v: at[p+"attn_v.weight"], o: at[p+"attn_output.weight"], ffnNorm: at[p+"ffn_norm.weight"],
			ffnGate: at[p+"ffn_gate.weight"], ffnUp: at[p+"ffn_up.weight"], ffnDown: at[p+"ffn_down.weight"],
		})
	}
	ix.outNorm, ix.delta, ix.deltaBias = at["out_norm.weight"], at["delta.weight"], at["delta.bias"]
	ix.gate, ix.gateBias = at["gate.weight"], at["gate.bias"]
	return n
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// weights returns the network's values as head weights in cfg's type.
func (n *net[T]) weights() *weights {
	w := &weights{}
	for i, p := range n.cfg.params(w) {
		v := make([]float32, len(n.p[i]))
		for j, x := range n.p[i] {
			v[j] = float32(x)
		}
		if p.mat != nil {
			n.cfg.setMatrix(p.mat, v)
		} else {
			*p.vec = v
		}
	}
	return w
}

// zeros returns zeroed tensors shaped like the parameters.
func (n *net[T]) zeros() [][]T {
	g := make([][]T, len(n.p))
	for i, p := range n.p {
		g[i] = make([]T, len(p))
	}
	return g
}

// blockTrace holds what one block's backward needs from its forward.
type blockTrace[T float] struct {
	xIn, a1, inv1, q, k, v, probs, att, xMid, a2, inv2, g1, u1, h []T
}

// trace holds a sequence's forward values for its backward.
type trace[T float] struct {
	n              int
	u, z           []T // bridged input; z is the linear bridge's output (or u)
	cos, sin       []T
	blocks         []blockTrace[T]
	xOut, aO, invO []T
	d, g           []T
}

// forward runs one whole sequence of n positions (from position 0) whose
// bridged inputs are u, returning the head's output α·sigmoid(g)⊙Δ per
// position and the trace for backward.
func (nt *net[T]) forward(u []T, n int) ([]T, *trace[T]) {
	c, p, ix := nt.cfg, nt.p, &nt.ix
	in, b, r, f, d := c.InputDim(), c.bridgeDim(), c.Width, c.FFN, c.Base.Dim
	hd := r / c.Heads
	half := hd / 2
	tr := &trace[T]{n: n, u: u, z: u}
	if ix.bridge >= 0 {
		tr.z = make([]T, n*b)
		matNT(tr.z, u, p[ix.bridge], nil, n, in, b)
	}
	x := make([]T, n*r)
	matNT(x, tr.z, p[ix.in], p[ix.inBias], n, b, r)
	tr.cos, tr.sin = make([]T, n*half), make([]T, n*half)
	for i := range n {
		for j := range half {
			theta := float64(i) * math.Pow(float64(c.RopeTheta), -2*float64(j)/float64(hd))
			tr.cos[i*half+j] = T(float32(math.Cos(theta)))
			tr.sin[i*half+j] = T(float32(math.Sin(theta)))
		}
	}
	scale := T(1 / math.Sqrt(float64(hd)))
	for l := range c.Blocks {
		bi := &ix.blocks[l]
		bt := blockTrace[T]{xIn: append([]T(nil), x...)}
		bt.a1, bt.inv1 = make([]T, n*r), make([]T, n)
		rmsNorm(bt.a1, x, p[bi.attnNorm], bt.inv1, n, c.NormEps)
		bt.q, bt.k, bt.v = make([]T, n*r), make([]T, n*r), make([]T, n*r)
		matNT(bt.q, bt.a1, p[bi.q], nil, n, r, r)
		matNT(bt.k, bt.a1, p[bi.k], nil, n, r, r)
		matNT(bt.v, bt.a1, p[bi.v], nil, n, r, r)
		for i := range n {
			cs, sn := tr.cos[i*half:(i+1)*half], tr.sin[i*half:(i+1)*half]
			for hh := range c.Heads {
				ropeT(bt.q[i*r+hh*hd:i*r+(hh+1)*hd], cs, sn, false)
				ropeT(bt.k[i*r+hh*hd:i*r+(hh+1)*hd], cs, sn, false)
			}
		}
		bt.probs = make([]T, c.Heads*n*n)
		bt.att = make([]T, n*r)
		for hh := range c.Heads {
			o := hh * hd
			for i := range n {
				pr := bt.probs[(hh*n+i)*n : (hh*n+i)*n+i+1]
				qi := bt.q[i*r+o : i*r+o+hd]
				mx := T(math.Inf(-1))
				for j := range pr {
					pr[j] = scale * dot(qi, bt.k[j*r+o:j*r+o+hd])
					mx = max(mx, pr[j])
				}
				var z T
				for j := range pr {
					pr[j] = T(math.Exp(float64(pr[j] - mx)))
					z += pr[j]
				}
				ai := bt.att[i*r+o : i*r+o+hd]
				for j := range pr {
					pr[j] /= z
					axpy(ai, pr[j], bt.v[j*r+o:j*r+o+hd])
				}
			}
		}
		tmp := make([]T, n*r)
		matNT(tmp, bt.att, p[bi.o], nil, n, r, r)
		for i := range x {
			x[i] += tmp[i]
		}
		bt.xMid = append([]T(nil), x...)
		bt.a2, bt.inv2 = make([]T, n*r), make([]T, n)
		rmsNorm(bt.a2, x, p[bi.ffnNorm], bt.inv2, n, c.NormEps)
		bt.g1, bt.u1, bt.h = make([]T, n*f), make([]T, n*f), make([]T, n*f)
		matNT(bt.g1, bt.a2, p[bi.ffnGate], nil, n, r, f)
		matNT(bt.u1, bt.a2, p[bi.ffnUp], nil, n, r, f)
		for i, g := range bt.g1 {
			bt.h[i] = g * sigmoidT(g) * bt.u1[i]
		}
		matNT(tmp, bt.h, p[bi.ffnDown], nil, n, f, r)
		for i := range x {
			x[i] += tmp[i]
		}
		tr.blocks = append(tr.blocks, bt)
	}
	tr.xOut = x
	tr.aO, tr.invO = make([]T, n*r), make([]T, n)
	rmsNorm(tr.aO, x, p[ix.outNorm], tr.invO, n, c.NormEps)
	tr.d, tr.g = make([]T, n*d), make([]T, n*d)
	matNT(tr.d, tr.aO, p[ix.delta], p[ix.deltaBias], n, r, d)
	matNT(tr.g, tr.aO, p[ix.gate], p[ix.gateBias], n, r, d)
	out := make([]T, n*d)
	for i := range out {
		out[i] = nt.alpha * sigmoidT(tr.g[i]) * tr.d[i]
	}
	return out, tr
}

// backward adds to grads (shaped like the parameters) the gradient of the
// loss whose gradient with respect to the forward's output is dOut, and
// returns the gradient with respect to α.
func (nt *net[T]) backward(tr *trace[T], dOut []T, grads [][]T) T {
	c, p, ix := nt.cfg, nt.p, &nt.ix
	n := tr.n
	in, b, r, f, d := c.InputDim(), c.bridgeDim(), c.Width, c.FFN, c.Base.Dim
	hd := r / c.Heads
	half := hd / 2
	scale := T(1 / math.Sqrt(float64(hd)))

	var dAlpha T
	dD, dG := make([]T, n*d), make([]T, n*d)
	for i, g := range dOut {
		s := sigmoidT(tr.g[i])
		dAlpha += s * tr.d[i] * g
		dD[i] = nt.alpha * s * g
		dG[i] = nt.alpha * tr.d[i] * g * s * (1 - s)
	}
	daO := make([]T, n*r)
	matNTBack(daO, grads[ix.delta], grads[ix.deltaBias], dD, tr.aO, p[ix.delta], n, r, d)
	matNTBack(daO, grads[ix.gate], grads[ix.gateBias], dG, tr.aO, p[ix.gate], n, r, d)
	dx := make([]T, n*r)
	rmsNormBack(dx, grads[ix.outNorm], daO, tr.xOut, p[ix.outNorm], tr.invO, n)

	da := make([]T, n*r)
	dh := make([]T, n*f)
	dg1, du1 := make([]T, n*f), make([]T, n*f)
	datt := make([]T, n*r)
	dq, dk, dv := make([]T, n*r), make([]T, n*r), make([]T, n*r)
	dp := make([]T, n)
	for l := c.Blocks - 1; l >= 0; l-- {
		bi, bt := &ix.blocks[l], &tr.blocks[l]
		// MLP: x += down(silu(gate(a2))·up(a2)).
		clear(dh)
		matNTBack(dh, grads[bi.ffnDown], nil, dx, bt.h, p[bi.ffnDown], n, f, r)
		for i, g := range bt.g1 {
			s := sigmoidT(g)
			dg1[i] = dh[i] * bt.u1[i] * s * (1 + g*(1-s))
			du1[i] = dh[i] * g * s
		}
		clear(da)
		matNTBack(da, grads[bi.ffnGate], nil, dg1, bt.a2, p[bi.ffnGate], n, r, f)
		matNTBack(da, grads[bi.ffnUp], nil, du1, bt.a2, p[bi.ffnUp], n, r, f)
		rmsNormBack(dx, grads[bi.ffnNorm], da, bt.xMid, p[bi.ffnNorm], bt.inv2, n)

		// Attention: x += o(attention(rope(q(a1)), rope(k(a1)), v(a1))).
		clear(datt)
		matNTBack(datt, grads[bi.o], nil, dx, bt.att, p[bi.o], n, r, r)
		clear(dq)
		clear(dk)
		clear(dv)
		for hh := range c.Heads {
			o := hh * hd
			for i := range n {
				pr := bt.probs[(hh*n+i)*n : (hh*n+i)*n+i+1]
				doi := datt[i*r+o : i*r+o+hd]
				var s T
				for j := range pr {
					dp[j] = dot(doi, bt.v[j*r+o:j*r+o+hd])
					s += pr[j] * dp[j]
					axpy(dv[j*r+o:j*r+o+hd], pr[j], doi)
				}
				qi, dqi := bt.q[i*r+o:i*r+o+hd], dq[i*r+o:i*r+o+hd]
				for j := range pr {
					ds := pr[j] * (dp[j] - s) * scale
					axpy(dqi, ds, bt.k[j*r+o:j*r+o+hd])
					axpy(dk[j*r+o:j*r+o+hd], ds, qi)
				}
			}
		}
		for i := range n {
			cs, sn := tr.cos[i*half:(i+1)*half], tr.sin[i*half:(i+1)*half]
			for hh := range c.Heads {
				ropeT(dq[i*r+hh*hd:i*r+(hh+1)*hd], cs, sn, true)
				ropeT(dk[i*r+hh*hd:i*r+(hh+1)*hd], cs, sn, true)
			}
		}
		clear(da)
		matNTBack(da, grads[bi.q], nil, dq, bt.a1, p[bi.q], n, r, r)
		matNTBack(da, grads[bi.k], nil, dk, bt.a1, p[bi.k], n, r, r)
		matNTBack(da, grads[bi.v], nil, dv, bt.a1, p[bi.v], n, r, r)
		rmsNormBack(dx, grads[bi.attnNorm], da, bt.xIn, p[bi.attnNorm], bt.inv1, n)
	}

	if ix.bridge >= 0 {
		dz := make([]T, n*b)
		matNTBack(dz, grads[ix.in], grads[ix.inBias], dx, tr.z, p[ix.in], n, b, r)
		matNTBack(nil, grads[ix.bridge], nil, dz, tr.u, p[ix.bridge], n, in, b)
	} else {
		matNTBack(nil, grads[ix.in], grads[ix.inBias], dx, tr.z, p[ix.in], n, b, r)
	}
	return dAlpha
}
