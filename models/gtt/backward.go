package gtt

import "github.com/carryon/carryon/models/kernels"

// backward adds to grads (laid out as the model's parameters) the gradient
// of a loss whose gradient with respect to ws.out is dout (rows × PatchLen),
// for the batch b that the last forward pass (with ws.train set) ran.
func (m *Model) backward(b *batch, ws *workspace, dout []float32, grads paramViews) {
	cfg := m.cfg
	d, f, pl := cfg.Dim, cfg.MLPDim, cfg.PatchLen
	n, r := b.n, b.rows
	nl := cfg.Layers
	th := m.threads

	ws.dres = grow(ws.dres, n*d)
	ws.dh = grow(ws.dh, r*d)
	ws.da = grow(ws.da, n*d)
	ws.dqkv = grow(ws.dqkv, n*3*d)
	ws.datt = grow(ws.datt, n*d)
	ws.du = grow(ws.du, n*f)
	ws.dg = grow(ws.dg, n*f)
	ws.wT = grow(ws.wT, max(d*f, d*3*d, d*pl))
	scratch := make([]float32, d)

	// Head and output norm, on the last tokens only.
	m.linearBackward(ws, grads.headW, grads.headB, ws.lastA, dout, m.w.headW, r, d, pl)
	dLast := ws.da[:r*d]
	linearInputGrad(ws, dLast, dout, m.w.headW, r, d, pl, th)
	clear(ws.dh)
	layerNormBackward(ws.dh, grads.normOutW, grads.normOutB, dLast, ws.lastHat, ws.lastRstd, m.w.normOutW, r, d, scratch)

	m.finalLayerBackward(b, ws, &m.w.layers[nl-1], &grads.layers[nl-1], &ws.layers[nl-1], ws.dh, scratch)
	for l := nl - 2; l >= 0; l-- {
		m.layerBackward(b, ws, &m.w.layers[l], &grads.layers[l], &ws.layers[l], ws.resid[l], scratch)
	}

	// Embedding.
	m.linearBackward(ws, grads.embedW, grads.embedB, b.x, ws.dres, m.w.embedW, n, 2*pl, d)
}

// finalLayerBackward turns dr, the gradient of the last layer's output at
// each channel's last token (rows × d, used as scratch), into ws.dres, the
// gradient of the layer's input at every token, adding the layer's weight
// gradients to g.
func (m *Model) finalLayerBackward(b *batch, ws *workspace, lp, g *layerParams, c *layerCache, dr, scratch []float32) {
	cfg := m.cfg
	d, f := cfg.Dim, cfg.MLPDim
	n, r := b.n, b.rows
	th := m.threads
	fc := &ws.final

	// MLP.
	m.linearBackward(ws, g.downW, g.downB, fc.g, dr, lp.downW, r, f, d)
	dgL, duL, daL := ws.dg[:r*f], ws.du[:r*f], ws.da[:r*d]
	linearInputGrad(ws, dgL, dr, lp.downW, r, f, d, th)
	geluBackward(duL, dgL, fc.u, fc.t)
	m.linearBackward(ws, g.upW, g.upB, fc.a3, duL, lp.upW, r, d, f)
	linearInputGrad(ws, daL, duL, lp.upW, r, d, f, th)
	layerNormBackward(dr, g.normMLPW, g.normMLPB, daL, fc.xhat3, fc.rstd3, lp.normMLPW, r, d, scratch)

	// Channel attention among the last tokens.
	m.linearBackward(ws, g.outW, g.outB, fc.att2, dr, lp.outW, r, d, d)
	dattL := ws.datt[:r*d]
	linearInputGrad(ws, dattL, dr, lp.outW, r, d, d, th)
	dq2 := ws.dqkv[:r*3*d]
	clear(dq2)
	seqs := lastChannelSequences(b, cfg.Heads, nil)
	parallel(len(seqs), th, func(lo, hi int) {
		dp := make([]float32, maxLen(seqs))
		for _, s := range seqs[lo:hi] {
			attendSeqBackward(cfg, s, dq2, dattL, fc.qkv2, fc.p2, fc.present, dp)
		}
	})
	m.linearBackward(ws, g.qkvW, g.qkvB, fc.a2, dq2, lp.qkvW, r, d, 3*d)
	linearInputGrad(ws, daL, dq2, lp.qkvW, r, d, 3*d, th)
	layerNormBackward(dr, g.normChanW, g.normChanB, daL, fc.xhat2, fc.rstd2, lp.normChanW, r, d, scratch)

	// Time attention: the last token's query over every token's key.
	m.linearBackward(ws, g.outW, g.outB, fc.att1, dr, lp.outW, r, d, d)
	linearInputGrad(ws, dattL, dr, lp.outW, r, d, d, th)
	clear(ws.dqkv)
	m.attendLastBackward(b, ws.dqkv, dattL, c.qkv1, fc.p1)
	m.linearBackward(ws, g.qkvW, g.qkvB, c.a1, ws.dqkv, lp.qkvW, n, d, 3*d)
	linearInputGrad(ws, ws.da, ws.dqkv, lp.qkvW, n, d, 3*d, th)
	clear(ws.dres)
	layerNormBackward(ws.dres, g.normTimeW, g.normTimeB, ws.da, c.xhat1, c.rstd1, lp.normTimeW, n, d, scratch)
	for i, t := range b.last {
		row := ws.dres[int(t)*d : int(t+1)*d]
		for k, v := range dr[i*d : (i+1)*d] {
			row[k] += v
		}
	}
}

// attendLastBackward adds to dqkv (every token) the gradient of attendLast
// given dout (rows × d), the gradient of its output.
func (m *Model) attendLastBackward(b *batch, dqkv, dout, qkv, probs []float32) {
	cfg := m.cfg
	d, hd, mp := cfg.Dim, cfg.HeadDim(), cfg.MaxPatches()
	scale := float32(1 / sqrt64(float64(hd)))
	parallel(len(b.groups), m.threads, func(lo, hi int) {
		dp := make([]float32, mp)
		for _, g := range b.groups[lo:hi] {
			for c := 0; c < g.channels; c++ {
				row := g.row + c
				base := g.tok + c*g.patches
				ti := base + g.patches - 1
				for hh := 0; hh < cfg.Heads; hh++ {
					qo, ko, vo := hh*hd, d+hh*hd, 2*d+hh*hd
					p := probs[(row*cfg.Heads+hh)*mp : (row*cfg.Heads+hh)*mp+g.patches]
					do := dout[row*d+qo : row*d+qo+hd]
					var sum float32
					for j, pj := range p {
						if pj == 0 {
							dp[j] = 0
							continue
						}
						tj := base + j
						dp[j] = kernels.DotF32(do, qkv[tj*3*d+vo:tj*3*d+vo+hd])
						kernels.Axpy(dqkv[tj*3*d+vo:tj*3*d+vo+hd], pj, do)
						sum += pj * dp[j]
					}
					q := qkv[ti*3*d+qo : ti*3*d+qo+hd]
					dq := dqkv[ti*3*d+qo : ti*3*d+qo+hd]
					for j, pj := range p {
						if pj == 0 {
							continue
						}
						ds := pj * (dp[j] - sum) * scale
						tj := base + j
						kernels.Axpy(dq, ds, qkv[tj*3*d+ko:tj*3*d+ko+hd])
						kernels.Axpy(dqkv[tj*3*d+ko:tj*3*d+ko+hd], ds, q)
					}
				}
			}
		}
	})
}

// linearBackward adds to dW and db the gradients of y = x·W + b (x: n×in)
// given dy (n×out).
func (m *Model) linearBackward(ws *workspace, dW, db, x, dy, w []float32, n, in, out int) {
	addRowsTo(db, dy, n, out)
	gemmTA(dW, out, x, in, dy, out, in, out, n, m.threads)
}

// linearInputGrad sets dx = dy·Wᵀ for y = x·W + b (W: in×out).
func linearInputGrad(ws *workspace, dx, dy, w []float32, n, in, out, threads int) {
	wT := ws.wT[:out*in]
	transpose(wT, in, w, out, in, out)
	clear(dx[:n*in])
	gemm(dx, in, dy, out, wT, in, n, in, out, threads)
}

// layerBackward turns ws.dres, the gradient of layer l's output, into the
// gradient of its input, adding the layer's weight gradients to g.
func (m *Model) layerBackward(b *batch, ws *workspace, lp, g *layerParams, c *layerCache, in []float32, scratch []float32) {
	cfg := m.cfg
	d, f := cfg.Dim, cfg.MLPDim
	n := b.n
	th := m.threads
	dres := ws.dres

	// MLP: out = h2 + gelu(a3·Wup + bup)·Wdown + bdown.
	m.linearBackward(ws, g.downW, g.downB, c.g, dres, lp.downW, n, f, d)
	linearInputGrad(ws, ws.dg, dres, lp.downW, n, f, d, th)
	geluBackward(ws.du, ws.dg, c.u, c.t)
	m.linearBackward(ws, g.upW, g.upB, c.a3, ws.du, lp.upW, n, d, f)
	linearInputGrad(ws, ws.da, ws.du, lp.upW, n, d, f, th)
	// dres now becomes d(h2): the residual path plus the norm's input grad.
	layerNormBackward(dres, g.normMLPW, g.normMLPB, ws.da, c.xhat3, c.rstd3, lp.normMLPW, n, d, scratch)

	// Channel attention: h2 = h1 + att2·Wo + bo.
	m.attentionBackward(b, ws, lp, g, c.a2, c.qkv2, c.p2, c.att2, false)
	layerNormBackward(dres, g.normChanW, g.normChanB, ws.da, c.xhat2, c.rstd2, lp.normChanW, n, d, scratch)

	// Time attention: h1 = in + att1·Wo + bo.
	m.attentionBackward(b, ws, lp, g, c.a1, c.qkv1, c.p1, c.att1, true)
	layerNormBackward(dres, g.normTimeW, g.normTimeB, ws.da, c.xhat1, c.rstd1, lp.normTimeW, n, d, scratch)
}

// attentionBackward handles y = x + attn(LN(x))·Wo + bo for one axis: given
// ws.dres = dy it adds the gradients of Wo, bo, Wqkv and bqkv to g and
// leaves in ws.da the gradient of the norm's output a.
func (m *Model) attentionBackward(b *batch, ws *workspace, lp, g *layerParams, a, qkv, probs, att []float32, timeAxis bool) {
	cfg := m.cfg
	d := cfg.Dim
	n := b.n
	th := m.threads
	m.linearBackward(ws, g.outW, g.outB, att, ws.dres, lp.outW, n, d, d)
	linearInputGrad(ws, ws.datt, ws.dres, lp.outW, n, d, d, th)
	clear(ws.dqkv)
	seqs := sequences(b, ws, cfg.Heads, timeAxis, nil)
	maxS := 0
	for _, s := range seqs {
		maxS = max(maxS, s.s)
	}
	parallel(len(seqs), th, func(lo, hi int) {
		dp := make([]float32, maxS)
		for _, s := range seqs[lo:hi] {
			attendSeqBackward(cfg, s, ws.dqkv, ws.datt, qkv, probs, b.present, dp)
		}
	})
	m.linearBackward(ws, g.qkvW, g.qkvB, a, ws.dqkv, lp.qkvW, n, d, 3*d)
	linearInputGrad(ws, ws.da, ws.dqkv, lp.qkvW, n, d, 3*d, th)
}

// attendSeqBackward adds to dqkv the gradient of one sequence's attention
// given dout, the gradient of its output, and the kept probabilities.
func attendSeqBackward(cfg Config, s attnSeq, dqkv, dout, qkv, probs []float32, present []bool, dp []float32) {
	d, hd := cfg.Dim, cfg.HeadDim()
	scale := float32(1 / sqrt64(float64(hd)))
	dp = dp[:s.s]
	for hh := 0; hh < cfg.Heads; hh++ {
		qo, ko, vo := hh*hd, d+hh*hd, 2*d+hh*hd
		for i := 0; i < s.s; i++ {
			ti := s.base + i*s.stride
			p := probs[s.poff+(hh*s.s+i)*s.s : s.poff+(hh*s.s+i+1)*s.s]
			do := dout[ti*d+qo : ti*d+qo+hd]
			var sum float32
			for j := 0; j < s.s; j++ {
				if p[j] == 0 {
					dp[j] = 0
					continue
				}
				tj := s.base + j*s.stride
				dot := kernels.DotF32(do, qkv[tj*3*d+vo:tj*3*d+vo+hd])
				kernels.Axpy(dqkv[tj*3*d+vo:tj*3*d+vo+hd], p[j], do)
				dp[j] = dot
				sum += p[j] * dot
			}
			q := qkv[ti*3*d+qo : ti*3*d+qo+hd]
			dq := dqkv[ti*3*d+qo : ti*3*d+qo+hd]
			for j := 0; j < s.s; j++ {
				if p[j] == 0 {
					continue
				}
				ds := p[j] * (dp[j] - sum) * scale
				tj := s.base + j*s.stride
				kernels.Axpy(dq, ds, qkv[tj*3*d+ko:tj*3*d+ko+hd])
				kernels.Axpy(dqkv[tj*3*d+ko:tj*3*d+ko+hd], ds, q)
			}
		}
	}
}
