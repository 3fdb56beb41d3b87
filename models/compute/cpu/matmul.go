package cpu

import "github.com/carryon/carryon/models/compute"

// matMulJob computes dst = x · wᵀ for output rows [lo, hi) of w.
type matMulJob struct {
	b    *Backend
	dst  []float32
	w    *weight
	x    []float32
	rows int
}

// MatMul computes dst = x · wᵀ for rows activation rows, splitting the
// weight's rows over the threads.
func (b *Backend) MatMul(dst []float32, w compute.Weight, x []float32, rows int) {
	cw := asWeight(w)
	if rows <= 0 {
		return
	}
	_ = x[rows*cw.cols-1]
	_ = dst[rows*cw.rows-1]
	b.mm.dst, b.mm.w, b.mm.x, b.mm.rows = dst, cw, x, rows
	b.pool.run(cw.rows, cw.cols*rows, &b.mm)
	b.mm.dst, b.mm.w, b.mm.x = nil, nil, nil
}

func (j *matMulJob) run(lo, hi, worker int) {
	w, n, out := j.w, j.w.cols, j.w.rows
	scratch := j.b.rowScratch[worker]
	for o := lo; o < hi; o++ {
		wr := w.row(o, scratch)
		for r := 0; r < j.rows; r++ {
			j.dst[r*out+o] = dot(wr, j.x[r*n:(r+1)*n])
		}
	}
}

// dot returns the inner product of a and b[:len(a)].
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
