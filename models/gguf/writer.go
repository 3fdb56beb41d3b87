package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/carryon/carryon/models/ggml"
)

// Writer builds a GGUF version 3 file: set metadata through Meta, add
// tensors, then write it out once.
type Writer struct {
	meta      Metadata
	tensors   []writerTensor
	names     map[string]bool
	alignment int
}

type writerTensor struct {
	info TensorInfo
	data []byte
	fill func(io.Writer) error // produces the data during WriteTo when data is nil
}

// NewWriter returns an empty Writer with the default alignment.
func NewWriter() *Writer {
	return &Writer{names: map[string]bool{}, alignment: DefaultAlignment}
}

// Meta returns the metadata to be written; set pairs with Set.
func (w *Writer) Meta() *Metadata { return &w.meta }

// AddTensor appends a tensor. shape is innermost first (shape[0] is the row
// length); data must hold exactly the bytes that shape and type call for.
func (w *Writer) AddTensor(name string, typ ggml.Type, shape []int, data []byte) error {
	size, err := w.checkTensor(name, typ, shape)
	if err != nil {
		return err
	}
	if len(data) != size {
		return fmt.Errorf("add tensor %q: %d bytes of data, %s %v needs %d", name, len(data), typ, shape, size)
	}
	w.appendTensor(name, typ, shape, size, data, nil)
	return nil
}

// AddTensorFunc appends a tensor whose data is produced while the file is
// written, so that large files need not be held in memory: each WriteTo
// calls fill once, in tensor order, and fill must write exactly the bytes that
// shape and type call for to its writer (WriteTo fails otherwise). An error
// from fill ends WriteTo with that error.
func (w *Writer) AddTensorFunc(name string, typ ggml.Type, shape []int, fill func(io.Writer) error) error {
	size, err := w.checkTensor(name, typ, shape)
	if err != nil {
		return err
	}
	if fill == nil {
		return fmt.Errorf("add tensor %q: nil fill function", name)
	}
	w.appendTensor(name, typ, shape, size, nil, fill)
	return nil
}

func (w *Writer) appendTensor(name string, typ ggml.Type, shape []int, size int, data []byte, fill func(io.Writer) error) {
	w.names[name] = true
	w.tensors = append(w.tensors, writerTensor{
		info: TensorInfo{Name: name, Shape: append([]int(nil), shape...), Type: typ, Size: int64(size)},
		data: data,
		fill: fill,
	})
}

// checkTensor validates a new tensor's name and shape and returns its size
// in bytes.
func (w *Writer) checkTensor(name string, typ ggml.Type, shape []int) (int, error) {
	if w.names[name] {
		return 0, fmt.Errorf("add tensor %q: name already used", name)
	}
	if len(shape) == 0 || len(shape) > maxDims {
		return 0, fmt.Errorf("add tensor %q: %d dimensions (1 to %d allowed)", name, len(shape), maxDims)
	}
	rows := 1
	for _, d := range shape[1:] {
		if d <= 0 {
			return 0, fmt.Errorf("add tensor %q: bad shape %v", name, shape)
		}
		rows *= d
	}
	if shape[0] <= 0 {
		return 0, fmt.Errorf("add tensor %q: bad shape %v", name, shape)
	}
	rowBytes, err := typ.RowSize(shape[0])
	if err != nil {
		return 0, fmt.Errorf("add tensor %q: %w", name, err)
	}
	if rows > math.MaxInt/rowBytes {
		return 0, fmt.Errorf("add tensor %q: size of %s %v overflows", name, typ, shape)
	}
	return rowBytes * rows, nil
}

// WriteFile writes the file to path.
func (w *Writer) WriteFile(path string) error {
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write gguf: %w", err)
	}
	if _, err := w.WriteTo(fh); err != nil {
		fh.Close()
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	return nil
}

// WriteTo writes the file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align := int64(w.alignment)
	if v, ok := w.meta.Int("general.alignment"); ok && v > 0 && v&(v-1) == 0 {
		align = v
	}
	ew := &encoder{w: bufio.NewWriterSize(out, 1<<20)}
	ew.raw([]byte(Magic))
	ew.u32(3)
	ew.u64(uint64(len(w.tensors)))
	ew.u64(uint64(len(w.meta.keys)))
	for _, k := range w.meta.keys {
		ew.str(k)
		if err := ew.value(w.meta.values[k]); err != nil {
			return ew.n, fmt.Errorf("metadata %q: %w", k, err)
		}
	}
	var off int64
	for i := range w.tensors {
		t := &w.tensors[i]
		t.info.Offset = off
		ew.str(t.info.Name)
		ew.u32(uint32(len(t.info.Shape)))
		for _, d := range t.info.Shape {
			ew.u64(uint64(d))
		}
		ew.u32(uint32(t.info.Type))
		ew.u64(uint64(off))
		off = alignUp(off+t.info.Size, align)
	}
	ew.pad(align)
	for _, t := range w.tensors {
		if t.fill == nil {
			ew.raw(t.data)
		} else if err := ew.fillTensor(t); err != nil {
			return ew.n, err
		}
		ew.pad(align)
	}
	if ew.err != nil {
		return ew.n, ew.err
	}
	return ew.n, ew.w.Flush()
}

type encoder struct {
	w   *bufio.Writer
	n   int64
	err error
	b   [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err != nil {
		return
	}
	n, err := e.w.Write(p)
	e.n += int64(n)
	e.err = err
}

// Write lets fill functions write tensor data through the encoder.
func (e *encoder) Write(p []byte) (int, error) {
	e.raw(p)
	if e.err != nil {
		return 0, e.err
	}
	return len(p), nil
}

// fillTensor writes a streamed tensor's data and checks its size.
func (e *encoder) fillTensor(t writerTensor) error {
	start := e.n
	if err := t.fill(e); err != nil {
		return fmt.Errorf("tensor %q: %w", t.info.Name, err)
	}
	if e.err != nil {
		return e.err
	}
	if got := e.n - start; got != t.info.Size {
		return fmt.Errorf("tensor %q: fill wrote %d bytes, %s %v needs %d", t.info.Name, got, t.info.Type, t.info.Shape, t.info.Size)
	}
	return nil
}

func (e *encoder) pad(align int64) {
	if r := e.n % align; r != 0 {
		e.raw(make([]byte, align-r))
	}
}

func (e *encoder) u8(v uint8)   { e.b[0] = v; e.raw(e.b[:1]) }
func (e *encoder) u16(v uint16) { binary.LittleEndian.PutUint16(e.b[:], v); e.raw(e.b[:2]) }
func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.b[:], v); e.raw(e.b[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.b[:], v); e.raw(e.b[:8]) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// valueType returns the GGUF type tag of a scalar Go value.
func valueType(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, true
	case int8:
		return TypeInt8, true
	case uint16:
		return TypeUint16, true
	case int16:
		return TypeInt16, true
	case uint32:
		return TypeUint32, true
	case int32:
		return TypeInt32, true
	case float32:
		return TypeFloat32, true
	case uint64:
		return TypeUint64, true
	case int64:
		return TypeInt64, true
	case float64:
		return TypeFloat64, true
	case bool:
		return TypeBool, true
	case string:
		return TypeString, true
	}
	return 0, false
}

func (e *encoder) scalar(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case bool:
		e.u8(boolByte(x))
	case string:
		e.str(x)
	}
}

func (e *encoder) value(v any) error {
	if t, ok := valueType(v); ok {
		e.u32(uint32(t))
		e.scalar(v)
		return nil
	}
	e.u32(uint32(TypeArray))
	return e.array(v)
}

func writeSlice[T any](e *encoder, t ValueType, s []T) {
	e.u32(uint32(t))
	e.u64(uint64(len(s)))
	for _, x := range s {
		e.scalar(x)
	}
}

func (e *encoder) array(v any) error {
	switch s := v.(type) {
	case []uint8:
		writeSlice(e, TypeUint8, s)
	case []int8:
		writeSlice(e, TypeInt8, s)
	case []uint16:
		writeSlice(e, TypeUint16, s)
	case []int16:
		writeSlice(e, TypeInt16, s)
	case []uint32:
		writeSlice(e, TypeUint32, s)
	case []int32:
		writeSlice(e, TypeInt32, s)
	case []float32:
		writeSlice(e, TypeFloat32, s)
	case []uint64:
		writeSlice(e, TypeUint64, s)
	case []int64:
		writeSlice(e, TypeInt64, s)
	case []float64:
		writeSlice(e, TypeFloat64, s)
	case []bool:
		writeSlice(e, TypeBool, s)
	case []string:
		writeSlice(e, TypeString, s)
	case []any:
		e.u32(uint32(TypeArray))
		e.u64(uint64(len(s)))
		for _, x := range s {
			if err := e.array(x); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
	return nil
}
