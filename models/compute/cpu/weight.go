package cpu

import (
	"fmt"

	"github.com/carryon/carryon/models/compute"
	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/kernels"
)

// rowDecoders holds the row converter of every weight type the backend
// computes with.
var rowDecoders = map[ggml.Type]func(src []byte, dst []float32) int{
	ggml.TypeF32:  ggml.F32RowFromBytes,
	ggml.TypeF16:  ggml.F16RowToF32,
	ggml.TypeBF16: ggml.BF16RowToF32,
	ggml.TypeQ4_0: ggml.DequantizeQ4_0,
	ggml.TypeQ4_1: ggml.DequantizeQ4_1,
	ggml.TypeQ5_0: ggml.DequantizeQ5_0,
	ggml.TypeQ5_1: ggml.DequantizeQ5_1,
	ggml.TypeQ8_0: ggml.DequantizeQ8_0,
	ggml.TypeQ2_K: ggml.DequantizeQ2_K,
	ggml.TypeQ3_K: ggml.DequantizeQ3_K,
	ggml.TypeQ4_K: ggml.DequantizeQ4_K,
	ggml.TypeQ5_K: ggml.DequantizeQ5_K,
	ggml.TypeQ6_K: ggml.DequantizeQ6_K,
}

// weight is a matrix read in place from its tensor's bytes.
type weight struct {
	typ        ggml.Type
	rows, cols int
	rowBytes   int
	data       []byte
	// mat is the kernels' view of the weight, nil for the types the
	// kernels do not multiply; those go through decode.
	mat    *kernels.Matrix
	decode func(src []byte, dst []float32) int
}

var _ compute.Weight = (*weight)(nil)

func (w *weight) Type() ggml.Type { return w.typ }
func (w *weight) Rows() int       { return w.rows }
func (w *weight) Cols() int       { return w.cols }

// row converts row i to float32s in dst[:w.cols].
func (w *weight) row(i int, dst []float32) []float32 {
	w.decode(w.data[i*w.rowBytes:(i+1)*w.rowBytes], dst[:w.cols])
	return dst[:w.cols]
}

func loadWeight(t gguf.Tensor) (*weight, error) {
	if len(t.Shape) != 2 {
		return nil, fmt.Errorf("load weight %q: shape %v is not two-dimensional", t.Name, t.Shape)
	}
	dec, ok := rowDecoders[t.Type]
	if !ok {
		return nil, fmt.Errorf("load weight %q: tensor type %s is not supported by the cpu backend", t.Name, t.Type)
	}
	cols, rows := t.Shape[0], t.Shape[1]
	if cols <= 0 || rows <= 0 {
		return nil, fmt.Errorf("load weight %q: shape %v is empty", t.Name, t.Shape)
	}
	rb, err := t.Type.RowSize(cols)
	if err != nil {
		return nil, fmt.Errorf("load weight %q: %w", t.Name, err)
	}
	if len(t.Data) != rb*rows {
		return nil, fmt.Errorf("load weight %q: %d bytes of data, %s %v needs %d", t.Name, len(t.Data), t.Type, t.Shape, rb*rows)
	}
	w := &weight{typ: t.Type, rows: rows, cols: cols, rowBytes: rb, data: t.Data, decode: dec}
	if kernels.Supports(t.Type) {
		if w.mat, err = kernels.PackMatrix(t.Type, rows, cols, t.Data); err != nil {
			return nil, fmt.Errorf("load weight %q: %w", t.Name, err)
		}
	}
	return w, nil
}
