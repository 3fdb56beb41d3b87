package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/carryon/carryon/models/ggml"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment used when general.alignment is absent.
const DefaultAlignment = 32

// maxDims is the largest number of dimensions a ggml tensor may have.
const maxDims = 4

// maxStringLen bounds a single metadata string or tensor name. Real files
// hold chat templates of tens of kilobytes; nothing legitimate is near this.
const maxStringLen = 64 << 20

// File is a parsed GGUF file. Tensor data stays in the file's mapping and is
// only valid until Close.
type File struct {
	Version   uint32
	Meta      Metadata
	Tensors   []TensorInfo
	Alignment int

	data    []byte // the whole file
	dataOff int64  // start of the tensor data section in data
	byName  map[string]int
	unmap   func() error
}

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name string
	// Shape lists the dimensions innermost first, as ggml's ne does:
	// Shape[0] is the length of one row.
	Shape  []int
	Type   ggml.Type
	Offset int64 // byte offset within the data section
	Size   int64 // bytes of data
}

// Elements returns the number of elements of the tensor.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Rows returns the number of rows (all dimensions but the first).
func (t TensorInfo) Rows() int {
	n := 1
	for _, d := range t.Shape[1:] {
		n *= d
	}
	return n
}

// Tensor is a tensor's description and a zero-copy view of its bytes.
type Tensor struct {
	TensorInfo
	Data []byte
}

// Open memory-maps and parses the GGUF file at path.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open gguf %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		unmap()
		return nil, fmt.Errorf("read gguf %s: %w", path, err)
	}
	f.unmap = unmap
	return f, nil
}

// Close releases the file's mapping. Tensor views must not be used after it.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	f.data = nil
	return err
}

// Arch returns general.architecture, or "" when absent.
func (f *File) Arch() string {
	s, _ := f.Meta.String("general.architecture")
	return s
}

// Tensor returns the named tensor with a view of its data.
func (f *File) Tensor(name string) (Tensor, error) {
	i, ok := f.byName[name]
	if !ok {
		return Tensor{}, fmt.Errorf("tensor %q not found", name)
	}
	info := f.Tensors[i]
	start := f.dataOff + info.Offset
	return Tensor{TensorInfo: info, Data: f.data[start : start+info.Size : start+info.Size]}, nil
}

// HasTensor reports whether the file holds a tensor called name.
func (f *File) HasTensor(name string) bool {
	_, ok := f.byName[name]
	return ok
}

// Size returns the size of the whole file in bytes.
func (f *File) Size() int64 { return int64(len(f.data)) }

// Parse parses a GGUF file held in data. The File refers to data; it must
// stay unchanged while the File is used.
func Parse(data []byte) (*File, error) {
	r := &cursor{buf: data}
	magic := r.bytes(4)
	if r.err != nil {
		return nil, errors.New("file too short for a GGUF header")
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("not a GGUF file (magic %q)", magic)
	}
	f := &File{data: data, Alignment: DefaultAlignment}
	f.Version = r.u32()
	switch f.Version {
	case 2, 3:
	case 1:
		return nil, errors.New("GGUF version 1 is not supported (convert the file to version 3)")
	default:
		if f.Version>>16 != 0 && f.Version&0xffff == 0 {
			return nil, errors.New("big-endian GGUF files are not supported")
		}
		return nil, fmt.Errorf("unsupported GGUF version %d", f.Version)
	}
	nTensors := r.u64()
	nKV := r.u64()
	if r.err != nil {
		return nil, fmt.Errorf("header: %w", r.err)
	}
	// Every key/value pair takes at least 12 bytes and every tensor info at
	// least 24, so counts beyond what the file can hold are rejected before
	// anything is allocated for them.
	if nKV > uint64(r.left())/12 {
		return nil, fmt.Errorf("header claims %d metadata pairs, more than the file can hold", nKV)
	}
	if nTensors > uint64(r.left())/24 {
		return nil, fmt.Errorf("header claims %d tensors, more than the file can hold", nTensors)
	}

	f.Meta.values = make(map[string]any, nKV)
	for i := uint64(0); i < nKV; i++ {
		key := r.str()
		vt := ValueType(r.u32())
		if r.err != nil {
			return nil, fmt.Errorf("metadata pair %d: %w", i, r.err)
		}
		v, err := r.value(vt, 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		if _, dup := f.Meta.values[key]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice", key)
		}
		f.Meta.keys = append(f.Meta.keys, key)
		f.Meta.values[key] = v
	}
	if v, ok := f.Meta.values["general.alignment"]; ok {
		a, ok := toInt(v)
		if !ok || a <= 0 || a > 1<<16 || a&(a-1) != 0 {
			return nil, fmt.Errorf("general.alignment %v is not a power of two up to 65536", v)
		}
		f.Alignment = int(a)
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.byName = make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		info, err := r.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, err)
		}
		if _, dup := f.byName[info.Name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", info.Name)
		}
		if info.Offset%int64(f.Alignment) != 0 {
			return nil, fmt.Errorf("tensor %q: offset %d is not aligned to %d", info.Name, info.Offset, f.Alignment)
		}
		f.byName[info.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, info)
	}

	f.dataOff = alignUp(int64(r.off), int64(f.Alignment))
	if f.dataOff > int64(len(data)) {
		if len(f.Tensors) > 0 {
			return nil, errors.New("file ends before its tensor data section")
		}
		f.dataOff = int64(len(data))
	}
	dataLen := int64(len(data)) - f.dataOff
	for _, t := range f.Tensors {
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return nil, fmt.Errorf("tensor %q: data [%d, %d) lies outside the %d bytes of the data section (file truncated?)",
				t.Name, t.Offset, t.Offset+t.Size, dataLen)
		}
	}
	return f, nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// cursor reads little-endian values from a byte slice, remembering the
// first error; reads after an error return zero values.
type cursor struct {
	buf []byte
	off int
	err error
}

var errShort = errors.New("unexpected end of file")

func (r *cursor) left() int { return len(r.buf) - r.off }

func (r *cursor) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.left() {
		r.err = errShort
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

func (r *cursor) u8() uint8 {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *cursor) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *cursor) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *cursor) u64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (r *cursor) str() string {
	n := r.u64()
	if r.err != nil {
		return ""
	}
	if n > maxStringLen {
		r.err = fmt.Errorf("string of %d bytes is too long", n)
		return ""
	}
	return string(r.bytes(int(n)))
}

// fixedSize returns the encoded size of a scalar value type, or 0 for
// strings and arrays.
func fixedSize(t ValueType) int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

func (r *cursor) value(t ValueType, depth int) (any, error) {
	var v any
	switch t {
	case TypeUint8:
		v = r.u8()
	case TypeInt8:
		v = int8(r.u8())
	case TypeUint16:
		v = r.u16()
	case TypeInt16:
		v = int16(r.u16())
	case TypeUint32:
		v = r.u32()
	case TypeInt32:
		v = int32(r.u32())
	case TypeFloat32:
		v = math.Float32frombits(r.u32())
	case TypeUint64:
		v = r.u64()
	case TypeInt64:
		v = int64(r.u64())
	case TypeFloat64:
		v = math.Float64frombits(r.u64())
	case TypeBool:
		b := r.u8()
		if r.err == nil && b > 1 {
			return nil, fmt.Errorf("bool value %d is neither 0 nor 1", b)
		}
		v = b == 1
	case TypeString:
		v = r.str()
	case TypeArray:
		if depth > 2 {
			return nil, errors.New("arrays nested too deeply")
		}
		return r.array(depth)
	default:
		return nil, fmt.Errorf("unknown value type %d", uint32(t))
	}
	return v, r.err
}

func (r *cursor) array(depth int) (any, error) {
	et := ValueType(r.u32())
	n := r.u64()
	if r.err != nil {
		return nil, r.err
	}
	// Bound the element count by the bytes left: strings and arrays take at
	// least 8 bytes each, scalars their fixed size.
	min := fixedSize(et)
	if min == 0 {
		min = 8
	}
	if n > uint64(r.left()/min) {
		return nil, fmt.Errorf("array of %d %s elements is larger than the rest of the file", n, et)
	}
	count := int(n)
	switch et {
	case TypeUint8:
		return readScalars(r, count, func(r *cursor) uint8 { return r.u8() })
	case TypeInt8:
		return readScalars(r, count, func(r *cursor) int8 { return int8(r.u8()) })
	case TypeUint16:
		return readScalars(r, count, (*cursor).u16)
	case TypeInt16:
		return readScalars(r, count, func(r *cursor) int16 { return int16(r.u16()) })
	case TypeUint32:
		return readScalars(r, count, (*cursor).u32)
	case TypeInt32:
		return readScalars(r, count, func(r *cursor) int32 { return int32(r.u32()) })
	case TypeFloat32:
		return readScalars(r, count, func(r *cursor) float32 { return math.Float32frombits(r.u32()) })
	case TypeUint64:
		return readScalars(r, count, (*cursor).u64)
	case TypeInt64:
		return readScalars(r, count, func(r *cursor) int64 { return int64(r.u64()) })
	case TypeFloat64:
		return readScalars(r, count, func(r *cursor) float64 { return math.Float64frombits(r.u64()) })
	case TypeBool:
		return readScalars(r, count, func(r *cursor) bool { return r.u8() != 0 })
	case TypeString:
		return readScalars(r, count, (*cursor).str)
	case TypeArray:
		out := make([]any, count)
		for i := range out {
			v, err := r.array(depth + 1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown array element type %d", uint32(et))
}

func readScalars[T any](r *cursor, n int, read func(*cursor) T) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		out[i] = read(r)
	}
	return out, r.err
}

func (r *cursor) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	t.Name = r.str()
	nd := r.u32()
	if r.err != nil {
		return t, r.err
	}
	if nd == 0 || nd > maxDims {
		return t, fmt.Errorf("tensor %q has %d dimensions (1 to %d allowed)", t.Name, nd, maxDims)
	}
	t.Shape = make([]int, nd)
	elems := uint64(1)
	for i := range t.Shape {
		d := r.u64()
		if r.err != nil {
			return t, r.err
		}
		if d == 0 || d > math.MaxInt32*4 {
			return t, fmt.Errorf("tensor %q: dimension %d has size %d", t.Name, i, d)
		}
		if elems > math.MaxInt64/d {
			return t, fmt.Errorf("tensor %q: element count overflows", t.Name)
		}
		elems *= d
		t.Shape[i] = int(d)
	}
	t.Type = ggml.Type(r.u32())
	off := r.u64()
	if r.err != nil {
		return t, r.err
	}
	if !t.Type.Known() {
		return t, fmt.Errorf("tensor %q has unknown type %d", t.Name, uint32(t.Type))
	}
	if t.Shape[0]%t.Type.BlockSize() != 0 {
		return t, fmt.Errorf("tensor %q: row length %d is not a multiple of the %s block size %d",
			t.Name, t.Shape[0], t.Type, t.Type.BlockSize())
	}
	rowBytes, err := t.Type.RowSize(t.Shape[0])
	if err != nil {
		return t, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	rows := elems / uint64(t.Shape[0])
	if rows > 0 && uint64(rowBytes) > math.MaxInt64/rows {
		return t, fmt.Errorf("tensor %q: byte size overflows", t.Name)
	}
	if off > math.MaxInt64 {
		return t, fmt.Errorf("tensor %q: offset %d out of range", t.Name, off)
	}
	t.Size = int64(rowBytes) * int64(rows)
	t.Offset = int64(off)
	return t, nil
}

// ReadFile reads the whole file at path without mapping it; useful on
// systems without mmap.
func readWhole(path string) ([]byte, func() error, error) {
	b, err := os.ReadFile(path)
	return b, func() error { return nil }, err
}
