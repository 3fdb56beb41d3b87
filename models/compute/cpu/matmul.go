package cpu

import (
	"fmt"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/kernels"
)

// preparedInput is the input of a call prepared for one weight type.
type preparedInput struct {
	used bool
	act  kernels.Activations
}

// product is one weight of a mulTask and where its row groups start in
// the task's combined range.
type product struct {
	dst   []float32
	w     *weight
	act   *kernels.Activations // nil for weights without kernels
	start int
}

// rowGroup is the number of output features a mulTask hands to a thread
// as one item: whole panels of packed weights (kernels.PackMatrix, 16
// rows), whole panels of the kernels' blocked product of float weights
// with large batches (32 rows, which a range of an odd number of 16-row
// groups would end with half empty), and enough work to make the claim of
// an item cheap.
const rowGroup = 32

// mulTask computes several products of one input over the concatenation
// of their weights' row groups, so that one parallel pass covers them all.
type mulTask struct {
	b     *Backend
	x     []float32 // the input rows, for weights without kernels
	m     int       // activation rows
	prods []product
}

// MatMul computes dst = x · wᵀ for rows activation rows, splitting the
// weight's rows over the threads.
func (b *Backend) MatMul(dst []float32, w compute.Weight, x []float32, rows int) {
	b.mm.prods = append(b.mm.prods[:0], product{dst: dst, w: asWeight(w)})
	b.mul(x, rows)
}

// MatMuls computes every product of ps from the same input x: the input
// is prepared once per weight type and the products share one parallel
// pass.
func (b *Backend) MatMuls(x []float32, rows int, ps []compute.Product) {
	b.mm.prods = b.mm.prods[:0]
	for _, p := range ps {
		b.mm.prods = append(b.mm.prods, product{dst: p.Dst, w: asWeight(p.W)})
	}
	b.mul(x, rows)
}

// mul runs the products in b.mm.prods over rows rows of x.
func (b *Backend) mul(x []float32, rows int) {
	t := &b.mm
	if rows > 0 && len(t.prods) > 0 {
		b.mulPrepared(x, rows)
	}
	clear(t.prods) // drop the references to the caller's slices
	t.prods, t.x = t.prods[:0], nil
}

// mulPrepared prepares the input of the products in b.mm.prods and runs
// them.
func (b *Backend) mulPrepared(x []float32, rows int) {
	t := &b.mm
	cols := t.prods[0].w.cols
	_ = x[rows*cols-1]
	for i := range b.acts {
		b.acts[i].used = false
	}
	total := 0
	for i := range t.prods {
		p := &t.prods[i]
		if p.w.cols != cols {
			panic(fmt.Sprintf("cpu backend: products of one input with %d and %d columns", cols, p.w.cols))
		}
		_ = p.dst[rows*p.w.rows-1]
		if p.w.mat != nil {
			p.act = b.prepared(p.w.typ, x, rows, cols)
		}
		p.start = total
		total += (p.w.rows + rowGroup - 1) / rowGroup
	}
	t.x, t.m = x, rows
	b.run(total, total*rowGroup*cols*rows, t)
}

// prepared returns x prepared for weights of type typ, preparing it on
// the first request of a call.
func (b *Backend) prepared(typ ggml.Type, x []float32, rows, cols int) *kernels.Activations {
	for i := range b.acts {
		if a := &b.acts[i]; a.used && a.act.WeightType() == typ {
			return &a.act
		}
	}
	i := 0
	for i < len(b.acts) && b.acts[i].used {
		i++
	}
	if i == len(b.acts) {
		b.acts = append(b.acts, preparedInput{})
	}
	a := &b.acts[i]
	// The pool quantizes large batches on every thread.
	if err := b.pool.Prepare(&a.act, typ, x, rows, cols); err != nil {
		// The weight's shape was checked when it was loaded and the
		// input's size above: this cannot fail.
		panic(fmt.Sprintf("cpu backend: %v", err))
	}
	a.used = true
	return &a.act
}

// Run computes row groups [lo, hi) of the combined products.
func (t *mulTask) Run(lo, hi, worker int) {
	for i := range t.prods {
		p := &t.prods[i]
		groups := (p.w.rows + rowGroup - 1) / rowGroup
		a, z := max(lo, p.start), min(hi, p.start+groups)
		if a >= z {
			continue
		}
		a, z = (a-p.start)*rowGroup, min((z-p.start)*rowGroup, p.w.rows)
		if p.act != nil {
			if err := kernels.MatMul(p.dst, p.w.mat, p.act, a, z); err != nil {
				panic(fmt.Sprintf("cpu backend: %v", err))
			}
			continue
		}
		t.mulRows(p, a, z, worker)
	}
}

// mulRows is the product for weights without kernels: each weight row is
// converted once into the worker's scratch and dotted with every input
// row.
func (t *mulTask) mulRows(p *product, lo, hi, worker int) {
	w, n := p.w, p.w.cols
	scratch := t.b.rowScratch[worker]
	for o := lo; o < hi; o++ {
		wr := w.row(o, scratch)
		for r := 0; r < t.m; r++ {
			p.dst[r*w.rows+o] = kernels.DotF32(wr, t.x[r*n:(r+1)*n])
		}
	}
}
