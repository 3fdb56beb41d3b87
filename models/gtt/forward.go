package gtt

import (
	"math"
	"sync"

	"github.com/carryon/carryon/models/kernels"
)

// layerCache holds what one encoder layer's backward pass needs.
type layerCache struct {
	xhat1, rstd1, a1, qkv1, p1, att1, h1 []float32
	xhat2, rstd2, a2, qkv2, p2, att2, h2 []float32
	xhat3, rstd3, a3, u, t, g            []float32
}

// finalCache holds the last layer's activations on the channels' last
// tokens only (rows × ...): the only outputs the head reads, so the last
// layer computes keys and values for every token but everything else for
// one token per channel.
type finalCache struct {
	in, qL, p1, att1, h1       []float32
	xhat2, rstd2, a2, qkv2, p2 []float32
	att2, h2, xhat3, rstd3, a3 []float32
	u, t, g                    []float32
	present                    []bool
}

// workspace holds a forward pass's activations (all layers' when training,
// one reused set when not) and the backward pass's scratch. Its buffers grow
// to the largest batch seen and are reused.
type workspace struct {
	train  bool
	resid  [][]float32 // residual stream: the input of each layer
	layers []layerCache
	final  finalCache

	lastX, lastHat, lastRstd, lastA []float32 // rows × d at the output
	out                             []float32 // rows × PatchLen, normalized

	// time and channel attention probability offsets per group
	pOffTime, pOffChan []int

	// backward scratch
	dres, dh, da, dqkv, datt, du, dg []float32
	wT                               []float32
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// forward runs the encoder on b and leaves the normalized predictions of
// the next PatchLen steps of every channel in ws.out (rows × PatchLen).
// With ws.train set it keeps every layer's activations for backward.
func (m *Model) forward(b *batch, ws *workspace) {
	cfg := m.cfg
	d, f, pl, h := cfg.Dim, cfg.MLPDim, cfg.PatchLen, cfg.Heads
	n, r := b.n, b.rows
	nl := cfg.Layers

	// Attention probability layout (only kept when training).
	ws.pOffTime = ws.pOffTime[:0]
	ws.pOffChan = ws.pOffChan[:0]
	pt, pc := 0, 0
	for _, g := range b.groups {
		ws.pOffTime = append(ws.pOffTime, pt)
		ws.pOffChan = append(ws.pOffChan, pc)
		pt += g.channels * g.patches * g.patches * h
		pc += g.patches * g.channels * g.channels * h
	}

	nres, ncache := 2, 1
	if ws.train {
		nres, ncache = nl, nl
	}
	if len(ws.resid) < nres {
		ws.resid = append(ws.resid, make([][]float32, nres-len(ws.resid))...)
	}
	for i := 0; i < nres; i++ {
		ws.resid[i] = grow(ws.resid[i], n*d)
	}
	if len(ws.layers) < ncache {
		ws.layers = append(ws.layers, make([]layerCache, ncache-len(ws.layers))...)
	}
	for i := 0; i < ncache; i++ {
		c := &ws.layers[i]
		c.xhat1, c.rstd1, c.a1 = grow(c.xhat1, n*d), grow(c.rstd1, n), grow(c.a1, n*d)
		c.qkv1 = grow(c.qkv1, n*3*d)
		if i == nl-1 && ws.train {
			continue // the last layer keeps the rest in ws.final
		}
		c.att1, c.h1 = grow(c.att1, n*d), grow(c.h1, n*d)
		c.xhat2, c.rstd2, c.a2 = grow(c.xhat2, n*d), grow(c.rstd2, n), grow(c.a2, n*d)
		c.qkv2, c.att2, c.h2 = grow(c.qkv2, n*3*d), grow(c.att2, n*d), grow(c.h2, n*d)
		c.xhat3, c.rstd3, c.a3 = grow(c.xhat3, n*d), grow(c.rstd3, n), grow(c.a3, n*d)
		c.u, c.t, c.g = grow(c.u, n*f), grow(c.t, n*f), grow(c.g, n*f)
		if ws.train {
			c.p1, c.p2 = grow(c.p1, pt), grow(c.p2, pc)
		} else {
			c.p1, c.p2 = nil, nil
		}
	}
	fc := &ws.final
	fc.in, fc.qL, fc.att1, fc.h1 = grow(fc.in, r*d), grow(fc.qL, r*d), grow(fc.att1, r*d), grow(fc.h1, r*d)
	fc.xhat2, fc.rstd2, fc.a2 = grow(fc.xhat2, r*d), grow(fc.rstd2, r), grow(fc.a2, r*d)
	fc.qkv2, fc.att2, fc.h2 = grow(fc.qkv2, r*3*d), grow(fc.att2, r*d), grow(fc.h2, r*d)
	fc.xhat3, fc.rstd3, fc.a3 = grow(fc.xhat3, r*d), grow(fc.rstd3, r), grow(fc.a3, r*d)
	fc.u, fc.t, fc.g = grow(fc.u, r*f), grow(fc.t, r*f), grow(fc.g, r*f)
	fc.p1 = grow(fc.p1, r*cfg.MaxPatches()*h)
	pcl := 0
	for _, g := range b.groups {
		pcl += g.channels * g.channels * h
	}
	fc.p2 = grow(fc.p2, pcl)
	fc.present = fc.present[:0]
	for _, t := range b.last {
		fc.present = append(fc.present, b.present[t])
	}

	// Patch embedding plus positions.
	h0 := ws.resid[0]
	setRows(h0, m.w.embedB, n, d)
	for i := 0; i < n; i++ {
		p := m.pos[int(b.posIdx[i])*d:]
		row := h0[i*d : (i+1)*d]
		for k := range row {
			row[k] += p[k]
		}
	}
	gemm(h0, d, b.x, 2*pl, m.w.embedW, d, n, d, 2*pl, m.threads)

	for l := 0; l < nl-1; l++ {
		in, out := ws.resid[l%2], ws.resid[(l+1)%2]
		c := &ws.layers[0]
		if ws.train {
			in, out, c = ws.resid[l], ws.resid[l+1], &ws.layers[l]
		}
		m.layerForward(b, ws, &m.w.layers[l], c, in, out)
	}
	in, c := ws.resid[(nl-1)%2], &ws.layers[0]
	if ws.train {
		in, c = ws.resid[nl-1], &ws.layers[nl-1]
	}
	m.finalLayerForward(b, ws, &m.w.layers[nl-1], c, in)

	// Output head on each channel's last token.
	ws.lastHat = grow(ws.lastHat, r*d)
	ws.lastRstd = grow(ws.lastRstd, r)
	ws.lastA = grow(ws.lastA, r*d)
	ws.out = grow(ws.out, r*pl)
	layerNorm(ws.lastA, ws.lastX, m.w.normOutW, m.w.normOutB, r, d, ws.lastHat, ws.lastRstd)
	// The head predicts the change from the last observed value, so that
	// an untrained head (and a random walk) forecasts the naive value.
	for i := 0; i < r; i++ {
		row := ws.out[i*pl : (i+1)*pl]
		for k := range row {
			row[k] = m.w.headB[k] + b.lastVal[i]
		}
	}
	gemm(ws.out, pl, ws.lastA, d, m.w.headW, pl, r, pl, d, m.threads)
}

// finalLayerForward runs the last encoder layer, computing its output only
// at each channel's last token, into ws.lastX (rows × d). Keys and values
// of the time attention come from every token.
func (m *Model) finalLayerForward(b *batch, ws *workspace, lp *layerParams, c *layerCache, in []float32) {
	cfg := m.cfg
	d, f := cfg.Dim, cfg.MLPDim
	n, r := b.n, b.rows
	th := m.threads
	fc := &ws.final

	// Time attention: keys and values of every token, the query of the last.
	layerNorm(c.a1, in, lp.normTimeW, lp.normTimeB, n, d, c.xhat1, c.rstd1)
	for i := 0; i < n; i++ {
		clear(c.qkv1[i*3*d : i*3*d+d])
		copy(c.qkv1[i*3*d+d:(i+1)*3*d], lp.qkvB[d:])
	}
	gemm(c.qkv1[d:], 3*d, c.a1, d, lp.qkvW[d:], 3*d, n, 2*d, d, th)
	for i, t := range b.last {
		copy(fc.in[i*d:(i+1)*d], in[int(t)*d:int(t+1)*d])
		copy(fc.h1[i*d:(i+1)*d], c.a1[int(t)*d:int(t+1)*d]) // the queries' normalized inputs
	}
	setRows(fc.qL, lp.qkvB[:d], r, d)
	gemm(fc.qL, d, fc.h1, d, lp.qkvW, 3*d, r, d, d, th)
	for i, t := range b.last {
		copy(c.qkv1[int(t)*3*d:int(t)*3*d+d], fc.qL[i*d:(i+1)*d])
	}
	m.attendLast(b, fc.att1, c.qkv1, fc.p1)
	copy(fc.h1, fc.in)
	addBiasRows(fc.h1, lp.outB, r, d)
	gemm(fc.h1, d, fc.att1, d, lp.outW, d, r, d, d, th)

	// Channel attention among the last tokens of each group.
	layerNorm(fc.a2, fc.h1, lp.normChanW, lp.normChanB, r, d, fc.xhat2, fc.rstd2)
	setRows(fc.qkv2, lp.qkvB, r, 3*d)
	gemm(fc.qkv2, 3*d, fc.a2, d, lp.qkvW, 3*d, r, 3*d, d, th)
	seqs := lastChannelSequences(b, cfg.Heads, nil)
	parallel(len(seqs), th, func(lo, hi int) {
		scores := make([]float32, maxLen(seqs))
		for _, s := range seqs[lo:hi] {
			attendSeq(cfg, s, fc.att2, fc.qkv2, fc.p2, fc.present, scores)
		}
	})
	copy(fc.h2, fc.h1)
	addBiasRows(fc.h2, lp.outB, r, d)
	gemm(fc.h2, d, fc.att2, d, lp.outW, d, r, d, d, th)

	// MLP.
	layerNorm(fc.a3, fc.h2, lp.normMLPW, lp.normMLPB, r, d, fc.xhat3, fc.rstd3)
	setRows(fc.u, lp.upB, r, f)
	gemm(fc.u, f, fc.a3, d, lp.upW, f, r, f, d, th)
	gelu(fc.g, fc.t, fc.u)
	ws.lastX = grow(ws.lastX, r*d)
	copy(ws.lastX, fc.h2)
	addBiasRows(ws.lastX, lp.downB, r, d)
	gemm(ws.lastX, d, fc.g, f, lp.downW, d, r, d, f, th)
}

// lastChannelSequences lists, per group, the attention sequence across
// channels among the rows of their last tokens.
func lastChannelSequences(b *batch, heads int, seqs []attnSeq) []attnSeq {
	seqs = seqs[:0]
	off := 0
	for _, g := range b.groups {
		seqs = append(seqs, attnSeq{base: g.row, stride: 1, s: g.channels, poff: off})
		off += g.channels * g.channels * heads
	}
	return seqs
}

func maxLen(seqs []attnSeq) int {
	m := 0
	for _, s := range seqs {
		m = max(m, s.s)
	}
	return m
}

// attendLast runs the time attention of each channel's last token over its
// channel's tokens, writing row i of out (rows × d) for channel row i, and
// the weights (MaxPatches per head and row) into probs.
func (m *Model) attendLast(b *batch, out, qkv, probs []float32) {
	cfg := m.cfg
	d, hd, mp := cfg.Dim, cfg.HeadDim(), cfg.MaxPatches()
	scale := float32(1 / math.Sqrt(float64(hd)))
	parallel(len(b.groups), m.threads, func(lo, hi int) {
		for _, g := range b.groups[lo:hi] {
			for c := 0; c < g.channels; c++ {
				row := g.row + c
				base := g.tok + c*g.patches
				ti := base + g.patches - 1
				for hh := 0; hh < cfg.Heads; hh++ {
					qo, ko, vo := hh*hd, d+hh*hd, 2*d+hh*hd
					q := qkv[ti*3*d+qo : ti*3*d+qo+hd]
					p := probs[(row*cfg.Heads+hh)*mp : (row*cfg.Heads+hh)*mp+g.patches]
					softmaxScores(p, q, qkv, base, 1, g.patches, ko, 3*d, b.present, scale)
					o := out[row*d+qo : row*d+qo+hd]
					clear(o)
					for j, pj := range p {
						if pj != 0 {
							tj := base + j
							kernels.Axpy(o, pj, qkv[tj*3*d+vo:tj*3*d+vo+hd])
						}
					}
				}
			}
		}
	})
}

// softmaxScores sets p[j] to the attention weight of query q on the key at
// token base+j·stride (keys at offset ko in rows of width w); absent keys
// get 0, and all weights are 0 when no key is present.
func softmaxScores(p, q, kv []float32, base, stride, s, ko, w int, present []bool, scale float32) {
	hd := len(q)
	mx := float32(math.Inf(-1))
	for j := 0; j < s; j++ {
		tj := base + j*stride
		if !present[tj] {
			p[j] = float32(math.Inf(-1))
			continue
		}
		v := kernels.DotF32(q, kv[tj*w+ko:tj*w+ko+hd]) * scale
		p[j] = v
		mx = max(mx, v)
	}
	if math.IsInf(float64(mx), -1) {
		clear(p[:s])
		return
	}
	var sum float32
	for j := 0; j < s; j++ {
		if math.IsInf(float64(p[j]), -1) {
			p[j] = 0
			continue
		}
		e := exp32(p[j] - mx)
		p[j] = e
		sum += e
	}
	inv := 1 / sum
	for j := 0; j < s; j++ {
		p[j] *= inv
	}
}

// layerForward runs one pre-LN encoder layer from in to out.
func (m *Model) layerForward(b *batch, ws *workspace, lp *layerParams, c *layerCache, in, out []float32) {
	cfg := m.cfg
	d, f := cfg.Dim, cfg.MLPDim
	n := b.n
	th := m.threads

	// Attention over time within each channel.
	layerNorm(c.a1, in, lp.normTimeW, lp.normTimeB, n, d, c.xhat1, c.rstd1)
	setRows(c.qkv1, lp.qkvB, n, 3*d)
	gemm(c.qkv1, 3*d, c.a1, d, lp.qkvW, 3*d, n, 3*d, d, th)
	m.attendAll(b, ws, c.att1, c.qkv1, c.p1, true)
	copy(c.h1, in)
	addBiasRows(c.h1, lp.outB, n, d)
	gemm(c.h1, d, c.att1, d, lp.outW, d, n, d, d, th)

	// Attention across channels at each patch index (same module).
	layerNorm(c.a2, c.h1, lp.normChanW, lp.normChanB, n, d, c.xhat2, c.rstd2)
	setRows(c.qkv2, lp.qkvB, n, 3*d)
	gemm(c.qkv2, 3*d, c.a2, d, lp.qkvW, 3*d, n, 3*d, d, th)
	m.attendAll(b, ws, c.att2, c.qkv2, c.p2, false)
	copy(c.h2, c.h1)
	addBiasRows(c.h2, lp.outB, n, d)
	gemm(c.h2, d, c.att2, d, lp.outW, d, n, d, d, th)

	// GELU MLP.
	layerNorm(c.a3, c.h2, lp.normMLPW, lp.normMLPB, n, d, c.xhat3, c.rstd3)
	setRows(c.u, lp.upB, n, f)
	gemm(c.u, f, c.a3, d, lp.upW, f, n, f, d, th)
	gelu(c.g, c.t, c.u)
	copy(out, c.h2)
	addBiasRows(out, lp.downB, n, d)
	gemm(out, d, c.g, f, lp.downW, d, n, d, f, th)
}

// addBiasRows adds b to each of the n rows of y (width d).
func addBiasRows(y, b []float32, n, d int) {
	for i := 0; i < n; i++ {
		row := y[i*d : (i+1)*d]
		for k := range row {
			row[k] += b[k]
		}
	}
}

// attnSeq is one attention sequence: S tokens base, base+stride, ...; its
// probabilities (S·S per head) start at probs[poff] when kept.
type attnSeq struct {
	base, stride, s, poff int
}

// sequences lists the attention sequences of b: over time within each
// channel (timeAxis) or across channels at each patch index.
func sequences(b *batch, ws *workspace, heads int, timeAxis bool, seqs []attnSeq) []attnSeq {
	seqs = seqs[:0]
	for gi, g := range b.groups {
		if timeAxis {
			off := ws.pOffTime[gi]
			for c := 0; c < g.channels; c++ {
				seqs = append(seqs, attnSeq{base: g.tok + c*g.patches, stride: 1, s: g.patches, poff: off})
				off += g.patches * g.patches * heads
			}
		} else {
			off := ws.pOffChan[gi]
			for p := 0; p < g.patches; p++ {
				seqs = append(seqs, attnSeq{base: g.tok + p, stride: g.patches, s: g.channels, poff: off})
				off += g.channels * g.channels * heads
			}
		}
	}
	return seqs
}

// parallel runs fn over [0, n) split into up to threads contiguous ranges.
func parallel(n, threads int, fn func(lo, hi int)) {
	if threads <= 1 || n < 2 {
		fn(0, n)
		return
	}
	threads = min(threads, n)
	var wg sync.WaitGroup
	chunk := (n + threads - 1) / threads
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// attendAll runs multi-head attention over every sequence of one axis,
// reading queries, keys and values from qkv (n × 3d) and writing out (n × d).
// Masked (absent) tokens are never attended to; a query with no present key
// gets zeros. probs, when not nil, receives the attention weights.
func (m *Model) attendAll(b *batch, ws *workspace, out, qkv, probs []float32, timeAxis bool) {
	cfg := m.cfg
	seqs := sequences(b, ws, cfg.Heads, timeAxis, nil)
	maxS := 0
	for _, s := range seqs {
		maxS = max(maxS, s.s)
	}
	parallel(len(seqs), m.threads, func(lo, hi int) {
		scores := make([]float32, maxS)
		for _, s := range seqs[lo:hi] {
			attendSeq(cfg, s, out, qkv, probs, b.present, scores)
		}
	})
}

// attendSeq is attention over one sequence whose tokens are rows of out
// (width d) and qkv (width 3d).
func attendSeq(cfg Config, s attnSeq, out, qkv, probs []float32, present []bool, scores []float32) {
	d, hd := cfg.Dim, cfg.HeadDim()
	scale := float32(1 / math.Sqrt(float64(hd)))
	scores = scores[:s.s]
	for hh := 0; hh < cfg.Heads; hh++ {
		qo, ko, vo := hh*hd, d+hh*hd, 2*d+hh*hd
		for i := 0; i < s.s; i++ {
			ti := s.base + i*s.stride
			q := qkv[ti*3*d+qo : ti*3*d+qo+hd]
			softmaxScores(scores, q, qkv, s.base, s.stride, s.s, ko, 3*d, present, scale)
			o := out[ti*d+qo : ti*d+qo+hd]
			clear(o)
			for j, p := range scores {
				if p != 0 {
					tj := s.base + j*s.stride
					kernels.Axpy(o, p, qkv[tj*3*d+vo:tj*3*d+vo+hd])
				}
			}
			if probs != nil {
				copy(probs[s.poff+(hh*s.s+i)*s.s:], scores)
			}
		}
	}
}
