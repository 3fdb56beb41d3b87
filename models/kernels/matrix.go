package kernels

import (
	"fmt"
	"unsafe"

	"github.com/carryon/carryon/models/ggml"
)

// Matrix is a read-only view of a row-major weight matrix: Rows() rows of
// Cols() elements stored in one ggml type, as it lies in a GGUF file (row
// i is the i-th run of whole blocks of the data). Its fields are fixed by
// NewMatrix, which checks them, so products never read out of bounds.
type Matrix struct {
	typ      ggml.Type
	rows     int
	cols     int
	rowBytes int
	data     []byte
	// packed holds the weights in the active kernels' own layout, or nil
	// (see PackMatrix). The portable code always reads data.
	packed []byte
}

// Type returns the weights' storage type.
func (w *Matrix) Type() ggml.Type { return w.typ }

// Rows returns the number of rows (output features).
func (w *Matrix) Rows() int { return w.rows }

// Cols returns the length of a row (input features).
func (w *Matrix) Cols() int { return w.cols }

// NewMatrix checks that data holds a rows×cols matrix of type t that this
// package can multiply and returns a view of it. It does not copy data.
func NewMatrix(t ggml.Type, rows, cols int, data []byte) (*Matrix, error) {
	if !Supports(t) {
		return nil, fmt.Errorf("matrix %dx%d: type %s is not supported", rows, cols, t)
	}
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("matrix %dx%d %s: dimensions must be positive", rows, cols, t)
	}
	rb, err := t.RowSize(cols)
	if err != nil {
		return nil, fmt.Errorf("matrix %dx%d: %w", rows, cols, err)
	}
	if rows > len(data)/rb {
		return nil, fmt.Errorf("matrix %dx%d %s: need %d bytes, have %d", rows, cols, t, rows*rb, len(data))
	}
	return &Matrix{typ: t, rows: rows, cols: cols, rowBytes: rb, data: data[: rows*rb : rows*rb]}, nil
}

// Supports reports whether MatMul accepts weights of type t.
func Supports(t ggml.Type) bool {
	switch t {
	case ggml.TypeF32, ggml.TypeF16, ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0,
		ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K:
		return true
	}
	return false
}

// actKind is the form in which activations meet a weight type.
type actKind uint8

const (
	actF32  actKind = iota // plain float32 rows (F32 and F16 weights)
	actQ8_0                // Q8_0 quantization, laid out for the 32-element block types
	actQ8_K                // Q8_K quantization, laid out for the k-quant types
)

// Internal activation layouts. Both keep ggml's quantization values
// (QuantizeQ8_0, QuantizeQ8_K) but arrange them for the vector kernels.
//
// actQ8_0: a row is a run of pairs of blocks, 192 bytes each:
//
//	[0,64)    the 64 int8 quants of blocks 2p and 2p+1
//	[64,128)  16 int32 bias lanes: lane 0 = −K·Σq of block 2p, lane 8 = that of
//	          block 2p+1, all other lanes 0 (K = 128 for Q8_0 weights, 8 for
//	          Q4_0, 16 for Q5_0: the offset that makes weight quants unsigned)
//	[128,192) 16 float32 scale lanes: lanes 0..7 = d of block 2p, 8..15 = d
//	          of block 2p+1 (fp16-rounded, as ggml stores it)
//
// A row with an odd number of blocks ends with a half-filled pair whose
// second block is all zero.
//
// actQ8_K: a row is a run of 320-byte super-blocks:
//
//	[0,256)   the 256 int8 quants
//	[256,288) 16 int16 sums of groups of 16 quants
//	[288,304) 8 int16 sums of groups of 32 quants
//	[304,308) float32 d
const (
	q8PairBytes  = 192
	q8KBytes     = 320
	q8KBsums     = 256
	q8KSums32    = 288
	q8KD         = 304
	actAlignment = 64
)

// Activations holds a batch of activation rows prepared for products with
// weights of one type: copied as float32 for F32 and F16 weights, quantized
// the way ggml quantizes them (Q8_0 or Q8_K) for quantized weights.
// The zero value is empty and ready for Prepare; an Activations reuses its
// memory across calls, so steady-state use does not allocate. An
// Activations must not be prepared while products read it.
type Activations struct {
	kind   actKind
	wtype  ggml.Type
	m      int
	cols   int
	f32    []float32
	q      []byte // quantized rows, actAlignment-aligned
	stride int    // bytes per quantized row
	mem    []byte
}

// Rows returns the number of activation rows held.
func (a *Activations) Rows() int { return a.m }

// Cols returns the length of each activation row.
func (a *Activations) Cols() int { return a.cols }

// WeightType returns the weight type the activations were prepared for.
func (a *Activations) WeightType() ggml.Type { return a.wtype }

// Prepare fills a with the m rows of cols values in x (row r is
// x[r·cols:(r+1)·cols]) in the form that weights of type t multiply.
func (a *Activations) Prepare(t ggml.Type, x []float32, m, cols int) error {
	if err := a.reset(t, x, m, cols); err != nil {
		return err
	}
	a.fill(x, 0, m)
	return nil
}

// reset checks the arguments of Prepare and sizes a for them.
func (a *Activations) reset(t ggml.Type, x []float32, m, cols int) error {
	if !Supports(t) {
		return fmt.Errorf("prepare activations: weight type %s is not supported", t)
	}
	if m <= 0 || cols <= 0 {
		return fmt.Errorf("prepare activations: %d rows of %d values", m, cols)
	}
	if len(x) < m*cols {
		return fmt.Errorf("prepare activations: %d rows of %d values need %d values, have %d", m, cols, m*cols, len(x))
	}
	if bs := t.BlockSize(); cols%bs != 0 {
		return fmt.Errorf("prepare activations for %s: row length %d is not a multiple of %d", t, cols, bs)
	}
	a.wtype, a.m, a.cols = t, m, cols
	switch t {
	case ggml.TypeF32, ggml.TypeF16:
		a.kind = actF32
		if cap(a.f32) < m*cols {
			a.f32 = make([]float32, m*cols)
		}
		a.f32 = a.f32[:m*cols]
	case ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0:
		a.kind = actQ8_0
		a.grow(m, (cols/qk8_0+1)/2*q8PairBytes)
	default:
		a.kind = actQ8_K
		a.grow(m, cols/qkK*q8KBytes)
	}
	return nil
}

// fill prepares rows [lo, hi) of x into a, which reset sized. Disjoint
// ranges may be filled concurrently.
func (a *Activations) fill(x []float32, lo, hi int) {
	cols := a.cols
	switch a.kind {
	case actF32:
		copy(a.f32[lo*cols:hi*cols], x[lo*cols:hi*cols])
	case actQ8_0:
		var k int32
		switch a.wtype {
		case ggml.TypeQ8_0:
			k = 128
		case ggml.TypeQ4_0:
			k = 8
		default:
			k = 16
		}
		for r := lo; r < hi; r++ {
			active.prepQ8_0(a.q[r*a.stride:(r+1)*a.stride], x[r*cols:(r+1)*cols], k)
		}
	default:
		for r := lo; r < hi; r++ {
			active.prepQ8_K(a.q[r*a.stride:(r+1)*a.stride], x[r*cols:(r+1)*cols])
		}
	}
}

// grow makes a.q hold m rows of stride bytes, aligned for vector loads.
func (a *Activations) grow(m, stride int) {
	need := m*stride + actAlignment
	if cap(a.mem) < need {
		a.mem = make([]byte, need)
	}
	a.mem = a.mem[:need]
	off := int(-uintptr(unsafe.Pointer(&a.mem[0])) & (actAlignment - 1))
	a.stride = stride
	a.q = a.mem[off : off+m*stride : off+m*stride]
}

func putI32(b []byte, v int32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// prepareQ8_0Row quantizes one row into the actQ8_0 layout with bias
// factor k.
func prepareQ8_0Row(dst []byte, x []float32, k int32) {
	nb := len(x) / qk8_0
	clear(dst)
	for b := 0; b < nb; b++ {
		p := dst[b/2*q8PairBytes:]
		h := b % 2
		qs := p[32*h : 32*h+32]
		d := f16ToF32(quantizeBlockQ8_0(qs, x[b*qk8_0:(b+1)*qk8_0]))
		var s int32
		for _, q := range qs {
			s += int32(int8(q))
		}
		putI32(p[64+32*h:], -k*s)
		for l := range 8 {
			put32f(p[128+32*h+4*l:], d)
		}
	}
}

// prepareQ8_KRow quantizes one row into the actQ8_K layout.
func prepareQ8_KRow(dst []byte, x []float32) {
	var bsums [16]int16
	for b := 0; b < len(x)/qkK; b++ {
		blk := dst[b*q8KBytes : (b+1)*q8KBytes]
		d := quantizeBlockQ8_K(blk[:qkK], &bsums, x[b*qkK:(b+1)*qkK])
		for g, s := range bsums {
			put16(blk[q8KBsums+2*g:], uint16(s))
		}
		for j := range 8 {
			put16(blk[q8KSums32+2*j:], uint16(bsums[2*j]+bsums[2*j+1]))
		}
		put32f(blk[q8KD:], d)
		clear(blk[q8KD+4:])
	}
}

// checkMul validates the operands of a product.
func checkMul(dst []float32, w *Matrix, a *Activations, lo, hi int) error {
	if w == nil || a == nil {
		return fmt.Errorf("matmul: missing operand")
	}
	if a.m == 0 || a.wtype != w.typ || a.cols != w.cols {
		return fmt.Errorf("matmul %dx%d %s: activations are %d rows of %d prepared for %s",
			w.rows, w.cols, w.typ, a.m, a.cols, a.wtype)
	}
	if lo < 0 || hi > w.rows || lo > hi {
		return fmt.Errorf("matmul %dx%d %s: row range [%d,%d) out of bounds", w.rows, w.cols, w.typ, lo, hi)
	}
	if len(dst) < a.m*w.rows {
		return fmt.Errorf("matmul %dx%d %s: output holds %d values, need %d", w.rows, w.cols, w.typ, len(dst), a.m*w.rows)
	}
	return nil
}

// MatMul computes dst[r·w.rows+i] = dot(row i of w, activation row r) for
// every activation row r and every weight row i in [lo, hi). Disjoint row
// ranges may run concurrently (see Pool.MatMul). Each weight row is read
// once for the whole batch of activations, so a batch costs little more
// memory traffic than one row.
func MatMul(dst []float32, w *Matrix, a *Activations, lo, hi int) error {
	if err := checkMul(dst, w, a, lo, hi); err != nil {
		return err
	}
	active.mul(dst, w, a, lo, hi)
	return nil
}

// MatVec computes dst[i] = dot(row i of w, x) for every row i of w,
// quantizing x into scratch first when w is quantized. It is MatMul for
// one activation row on the calling goroutine.
func MatVec(dst []float32, w *Matrix, x []float32, scratch *Activations) error {
	if err := scratch.Prepare(w.typ, x, 1, w.cols); err != nil {
		return fmt.Errorf("matvec %dx%d %s: %w", w.rows, w.cols, w.typ, err)
	}
	return MatMul(dst, w, scratch, 0, w.rows)
}
