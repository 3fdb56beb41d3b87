package carryon

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/carryon/carryon/models/kernels"
)

// unit is the rows of one sequence of one head in a Forward call: they run
// in order, and units run in parallel.
type unit struct {
	h    *Head
	seq  SeqID
	rows []int
	st   *seqState
}

// forward runs row i through heads[i] for every row. It checks everything
// first and changes no state when a check fails. workers ≤ 0 means
// GOMAXPROCS.
func forward(ctx context.Context, rows []Row, heads []*Head, workers int) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type key struct {
		h   *Head
		seq SeqID
	}
	index := make(map[key]int)
	var units []unit
	total := 0
	for i, r := range rows {
		h := heads[i]
		if len(r.Input) != h.cfg.InputDim() {
			return nil, fmt.Errorf("%w: row %d (head %q, sequence %d): %d input floats, the head reads %d", ErrRows, i, r.Head, r.Seq, len(r.Input), h.cfg.InputDim())
		}
		if r.Pos < 0 {
			return nil, fmt.Errorf("%w: row %d (head %q, sequence %d): negative position %d", ErrRows, i, r.Head, r.Seq, r.Pos)
		}
		k := key{h, r.Seq}
		u, ok := index[k]
		if !ok {
			u = len(units)
			index[k] = u
			units = append(units, unit{h: h, seq: r.Seq})
		} else if prev := rows[units[u].rows[len(units[u].rows)-1]].Pos; r.Pos != prev+1 {
			return nil, fmt.Errorf("%w: row %d (head %q, sequence %d): position %d follows position %d", ErrRows, i, r.Head, r.Seq, r.Pos, prev)
		}
		units[u].rows = append(units[u].rows, i)
		total += h.cfg.Base.Dim
	}

	// Lock the heads in address order (Go's heap does not move objects), so
	// that concurrent calls over overlapping heads cannot deadlock.
	locked := make([]*Head, 0, 4)
	for _, u := range units {
		if !slices.Contains(locked, u.h) {
			locked = append(locked, u.h)
		}
	}
	slices.SortFunc(locked, func(a, b *Head) int {
		pa, pb := uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(b))
		switch {
		case pa < pb:
			return -1
		case pa > pb:
			return 1
		}
		return 0
	})
	for _, h := range locked {
		h.mu.Lock()
	}
	defer func() {
		for _, h := range locked {
			h.mu.Unlock()
		}
	}()

	for _, u := range units {
		held := 0
		if st := u.h.seqs[u.seq]; st != nil {
			held = st.n
		}
		r0 := rows[u.rows[0]]
		if r0.Pos > held {
			return nil, fmt.Errorf("%w: row %d (head %q, sequence %d): position %d, but the sequence holds %d positions", ErrRows, u.rows[0], r0.Head, u.seq, r0.Pos, held)
		}
		if limit := u.h.cfg.maxPositions(); limit > 0 && r0.Pos+len(u.rows) > limit {
			return nil, fmt.Errorf("%w: head %q, sequence %d: positions up to %d exceed the head's context of %d", ErrRows, r0.Head, u.seq, r0.Pos+len(u.rows)-1, limit)
		}
	}
	// Every check passed: from here on nothing fails.
	for i := range units {
		u := &units[i]
		st := u.h.seqs[u.seq]
		if st == nil {
			st = &seqState{k: make([][]float32, u.h.cfg.Blocks), v: make([][]float32, u.h.cfg.Blocks)}
			u.h.seqs[u.seq] = st
		}
		st.truncate(rows[u.rows[0]].Pos, u.h.cfg.Width)
		u.st = st
	}

	flat := make([]float32, total)
	out := make([][]float32, len(rows))
	off := 0
	for i := range rows {
		d := heads[i].cfg.Base.Dim
		out[i] = flat[off : off+d : off+d]
		off += d
	}

	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(units))
	if workers <= 1 {
		var s scratch
		for i := range units {
			units[i].h.run(&units[i], rows, out, &s)
		}
		return out, nil
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s scratch
			for {
				i := int(next.Add(1) - 1)
				if i >= len(units) {
					return
				}
				units[i].h.run(&units[i], rows, out, &s)
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// truncate keeps the first n positions.
func (st *seqState) truncate(n, width int) {
	if n >= st.n {
		return
	}
	st.n = n
	for l := range st.k {
		st.k[l] = st.k[l][:n*width]
		st.v[l] = st.v[l][:n*width]
	}
}

// scratch is a worker's temporary storage, grown as needed.
type scratch struct {
	u, x, a, q, k, v, att, f1, f2 []float32
	d, g, tmp                     []float32
	scores, cos, sin              []float32
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// run computes the rows of one unit (consecutive positions of one sequence,
// whose cache holds exactly the positions before the first) and appends
// their keys and values to the cache.
func (h *Head) run(u *unit, rows []Row, out [][]float32, s *scratch) {
	c, w := &h.cfg, h.w
	m := len(u.rows)
	in, b, r, f, d := c.InputDim(), c.bridgeDim(), c.Width, c.FFN, c.Base.Dim
	hd := r / c.Heads
	pos0 := rows[u.rows[0]].Pos

	// σ, then the input projection.
	s.u = grow(s.u, m*in)
	for i, ri := range u.rows {
		copy(s.u[i*in:(i+1)*in], rows[ri].Input)
	}
	src, width := s.u, in
	switch c.Bridge.Kind {
	case BridgeInt8:
		for i := range m {
			for t := 0; t < in; t += c.Base.Dim {
				int8RoundTrip(s.u[i*in+t : i*in+t+c.Base.Dim])
			}
		}
	case BridgeLinear:
		s.a = grow(s.a, m*b)
		linear(s.a, &w.bridge, nil, s.u, m, in, b)
		src, width = s.a, b
	}
	s.x = grow(s.x, m*r)
	linear(s.x, &w.in, w.inBias, src, m, width, r)

	// Rotary angles per row and frequency.
	half := hd / 2
	s.cos, s.sin = grow(s.cos, m*half), grow(s.sin, m*half)
	for i := range m {
		p := float64(pos0 + i)
		for j := range half {
			theta := p * math.Pow(float64(c.RopeTheta), -2*float64(j)/float64(hd))
			s.cos[i*half+j] = float32(math.Cos(theta))
			s.sin[i*half+j] = float32(math.Sin(theta))
		}
	}

	s.a = grow(s.a, m*r)
	s.q, s.k, s.v, s.att = grow(s.q, m*r), grow(s.k, m*r), grow(s.v, m*r), grow(s.att, m*r)
	s.f1, s.f2 = grow(s.f1, m*f), grow(s.f2, m*f)
	s.scores = grow(s.scores, pos0+m)
	s.tmp = grow(s.tmp, r)
	scale := float32(1 / math.Sqrt(float64(hd)))
	st := u.st
	for l := range w.blocks {
		bw := &w.blocks[l]
		for i := range m {
			kernels.RMSNorm(s.a[i*r:(i+1)*r], s.x[i*r:(i+1)*r], bw.attnNorm, c.NormEps)
		}
		linear(s.q, &bw.q, nil, s.a, m, r, r)
		linear(s.k, &bw.k, nil, s.a, m, r, r)
		linear(s.v, &bw.v, nil, s.a, m, r, r)
		for i := range m {
			cs, sn := s.cos[i*half:(i+1)*half], s.sin[i*half:(i+1)*half]
			for hh := range c.Heads {
				rope(s.q[i*r+hh*hd:i*r+(hh+1)*hd], cs, sn)
				rope(s.k[i*r+hh*hd:i*r+(hh+1)*hd], cs, sn)
			}
		}
		st.k[l] = append(st.k[l], s.k[:m*r]...)
		st.v[l] = append(st.v[l], s.v[:m*r]...)
		for i := range m {
			n := pos0 + i + 1 // causal: positions 0..pos
			for hh := range c.Heads {
				o := hh * hd
				kernels.AttendF32(s.att[i*r+o:i*r+o+hd], s.q[i*r+o:i*r+o+hd], st.k[l][o:], st.v[l][o:], n, r, scale, s.scores[:n])
			}
		}
		linearAdd(s.x, &bw.o, s.att, m, r, r, s.tmp)
		for i := range m {
			kernels.RMSNorm(s.a[i*r:(i+1)*r], s.x[i*r:(i+1)*r], bw.ffnNorm, c.NormEps)
		}
		linear(s.f1, &bw.ffnGate, nil, s.a, m, r, f)
		linear(s.f2, &bw.ffnUp, nil, s.a, m, r, f)
		kernels.SwiGLU(s.f1, s.f1, s.f2)
		linearAdd(s.x, &bw.ffnDown, s.f1, m, f, r, s.tmp)
	}
	st.n = pos0 + m

	for i := range m {
		kernels.RMSNorm(s.a[i*r:(i+1)*r], s.x[i*r:(i+1)*r], w.outNorm, c.NormEps)
	}
	s.d, s.g = grow(s.d, m*d), grow(s.g, m*d)
	linear(s.d, &w.delta, w.deltaBias, s.a, m, r, d)
	linear(s.g, &w.gate, w.gateBias, s.a, m, r, d)
	for i, ri := range u.rows {
		dst := out[ri]
		if c.Alpha == 0 {
			clear(dst) // exactly zero, whatever Δ holds
			continue
		}
		dl, g := s.d[i*d:(i+1)*d], s.g[i*d:(i+1)*d]
		for j := range dst {
			dst[j] = c.Alpha * sigmoid(g[j]) * dl[j]
		}
	}
}

// linear sets dst[i·out+o] = w[o]·x[i] + bias[o] for m rows x[i] of n
// floats and a weight matrix w of out rows.
func linear(dst []float32, w *matrix, bias, x []float32, m, n, out int) {
	for i := range m {
		di := dst[i*out : (i+1)*out]
		w.dotRows(di, x[i*n:(i+1)*n])
		if bias != nil {
			for o := range out {
				di[o] += bias[o]
			}
		}
	}
}

// linearAdd adds w·x[i] to dst's rows (a residual connection), using tmp
// (out floats) as scratch.
func linearAdd(dst []float32, w *matrix, x []float32, m, n, out int, tmp []float32) {
	for i := range m {
		w.dotRows(tmp[:out], x[i*n:(i+1)*n])
		di := dst[i*out : (i+1)*out]
		for o := range out {
			di[o] += tmp[o]
		}
	}
}

// rope rotates the pairs (j, j+len/2) of one attention head's vector by the
// row's angles (the GPT-NeoX layout).
func rope(x, cos, sin []float32) {
	half := len(x) / 2
	for j := range half {
		a, b := x[j], x[j+half]
		x[j] = a*cos[j] - b*sin[j]
		x[j+half] = a*sin[j] + b*cos[j]
	}
}

func sigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// int8RoundTrip quantizes x to int8 with one scale (max |x| / 127) and
// replaces it by the dequantized values, as an int8 transfer of the row
// would deliver it.
func int8RoundTrip(x []float32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	if amax == 0 {
		return
	}
	scale := amax / 127
	inv := 1 / scale
	for i, v := range x {
		q := float32(math.RoundToEven(float64(v * inv)))
		q = min(max(q, -127), 127)
		x[i] = q * scale
	}
}
