package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/carryon/carryon/models/ggml"
)

// DType is a tensor element type, named as the format names it.
type DType string

// The element types of the format.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size returns the bytes of one element, or 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// MaxHeaderBytes bounds the JSON header the reader accepts.
const MaxHeaderBytes = 100 << 20

// maxRank bounds the dimensions of one tensor.
const maxRank = 16

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed safetensors")

// Tensor is one tensor of a file: its name, element type, shape (outermost
// first, as the format and NumPy order it) and packed little-endian data.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Elements returns the number of elements.
func (t Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Float32s converts an F32, F16 or BF16 tensor's data to float32 values.
func (t Tensor) Float32s() ([]float32, error) {
	n := t.Elements()
	out := make([]float32, n)
	switch t.DType {
	case F32:
		ggml.F32RowFromBytes(t.Data, out)
	case F16:
		ggml.F16RowToF32(t.Data, out)
	case BF16:
		ggml.BF16RowToF32(t.Data, out)
	default:
		return nil, fmt.Errorf("tensor %s: dtype %s is not F32, F16 or BF16", t.Name, t.DType)
	}
	return out, nil
}

// File is a parsed safetensors file.
type File struct {
	// Metadata holds the header's free-form "__metadata__" strings.
	Metadata map[string]string
	// Tensors lists the tensors in data order.
	Tensors []Tensor
	byName  map[string]int
}

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (Tensor, bool) {
	i, ok := f.byName[name]
	if !ok {
		return Tensor{}, false
	}
	return f.Tensors[i], true
}

// ReadFile reads and parses the file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read safetensors: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, nil
}

// headerEntry is one tensor's description in the JSON header.
type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// Parse parses a whole file held in data. Tensor data refers to data, which
// must stay unchanged while the File is used.
func Parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header length", ErrFormat, len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("%w: header length %d exceeds the %d-byte limit", ErrFormat, n, MaxHeaderBytes)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("%w: header length %d runs past the end of the %d-byte file", ErrFormat, n, len(data))
	}
	header := data[8 : 8+n]
	body := data[8+n:]
	if len(header) == 0 || header[0] != '{' {
		return nil, fmt.Errorf("%w: header does not start with '{'", ErrFormat)
	}
	entries, meta, err := parseHeader(header)
	if err != nil {
		return nil, err
	}

	f := &File{Metadata: meta, Tensors: make([]Tensor, 0, len(entries)), byName: make(map[string]int, len(entries))}
	type span struct {
		begin, end uint64
		name       string
	}
	spans := make([]span, 0, len(entries))
	for _, e := range entries {
		h := e.entry
		size := h.DType.Size()
		if size == 0 {
			return nil, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, e.name, h.DType)
		}
		if len(h.Shape) > maxRank {
			return nil, fmt.Errorf("%w: tensor %q: rank %d exceeds %d", ErrFormat, e.name, len(h.Shape), maxRank)
		}
		if len(h.DataOffsets) != 2 {
			return nil, fmt.Errorf("%w: tensor %q: data_offsets has %d entries, want 2", ErrFormat, e.name, len(h.DataOffsets))
		}
		begin, end := h.DataOffsets[0], h.DataOffsets[1]
		if begin > end || end > uint64(len(body)) {
			return nil, fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] outside the %d-byte data section", ErrFormat, e.name, begin, end, len(body))
		}
		elems := uint64(1)
		shape := make([]int, len(h.Shape))
		for i, d := range h.Shape {
			if d < 0 {
				return nil, fmt.Errorf("%w: tensor %q: negative dimension in shape %v", ErrFormat, e.name, h.Shape)
			}
			if d > 0 && elems > uint64(len(body))/uint64(d) {
				return nil, fmt.Errorf("%w: tensor %q: shape %v is larger than the data section", ErrFormat, e.name, h.Shape)
			}
			elems *= uint64(d)
			shape[i] = int(d)
		}
		if elems*uint64(size) != end-begin {
			return nil, fmt.Errorf("%w: tensor %q: shape %v of %s needs %d bytes, data_offsets give %d", ErrFormat, e.name, h.Shape, h.DType, elems*uint64(size), end-begin)
		}
		spans = append(spans, span{begin, end, e.name})
		f.Tensors = append(f.Tensors, Tensor{Name: e.name, DType: h.DType, Shape: shape, Data: body[begin:end:end]})
	}
	// The tensors must tile the data section: sorted by offset, each starts
	// where the previous one ended, and the last ends the file.
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		sa, sb := spans[order[a]], spans[order[b]]
		if sa.begin != sb.begin {
			return sa.begin < sb.begin
		}
		return sa.end < sb.end
	})
	pos := uint64(0)
	for _, i := range order {
		s := spans[i]
		if s.begin != pos {
			if s.begin < pos {
				return nil, fmt.Errorf("%w: tensor %q overlaps the tensor before it (starts at %d, previous ends at %d)", ErrFormat, s.name, s.begin, pos)
			}
			return nil, fmt.Errorf("%w: a gap in the data section before tensor %q (bytes %d to %d)", ErrFormat, s.name, pos, s.begin)
		}
		pos = s.end
	}
	if pos != uint64(len(body)) {
		return nil, fmt.Errorf("%w: %d bytes after the last tensor", ErrFormat, uint64(len(body))-pos)
	}
	sorted := make([]Tensor, len(order))
	for k, i := range order {
		sorted[k] = f.Tensors[i]
		f.byName[sorted[k].Name] = k
	}
	f.Tensors = sorted
	return f, nil
}

type namedEntry struct {
	name  string
	entry headerEntry
}

// parseHeader decodes the JSON header one key at a time, so that duplicate
// names are caught (encoding/json would keep the last silently).
func parseHeader(header []byte) ([]namedEntry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("%w: header is not a JSON object", ErrFormat)
	}
	var entries []namedEntry
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("%w: header JSON: key %v is not a string", ErrFormat, tok)
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("%w: header names %q twice", ErrFormat, name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			continue
		}
		if name == "" {
			return nil, nil, fmt.Errorf("%w: a tensor has an empty name", ErrFormat)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%w: header JSON at tensor %q: %v", ErrFormat, name, err)
		}
		var e headerEntry
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		if e.DType == "" || e.Shape == nil || e.DataOffsets == nil {
			return nil, nil, fmt.Errorf("%w: tensor %q: needs dtype, shape and data_offsets", ErrFormat, name)
		}
		entries = append(entries, namedEntry{name, e})
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
	}
	// Only padding may follow the object.
	if len(bytes.TrimRight(header[dec.InputOffset():], " \t\r\n\x00")) > 0 {
		return nil, nil, fmt.Errorf("%w: bytes after the header object", ErrFormat)
	}
	return entries, meta, nil
}

// Writer builds a safetensors file. Add tensors, set Metadata, then write
// the file once. The output is deterministic: tensors lie in the order they
// were added, and the header's keys are sorted.
type Writer struct {
	// Metadata is written as the header's "__metadata__" when not empty.
	Metadata map[string]string
	tensors  []Tensor
	names    map[string]bool
	// values holds, at a tensor's index, the float32 values that WriteTo
	// encodes as it writes the tensor (AddFloat32Ref); nil for tensors
	// whose bytes are held in Data.
	values [][]float32
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{names: map[string]bool{}}
}

// Add appends a tensor of raw little-endian data, which must hold exactly
// the bytes that shape and dtype call for. The data is not copied.
func (w *Writer) Add(name string, dtype DType, shape []int, data []byte) error {
	if name == "" || name == "__metadata__" {
		return fmt.Errorf("safetensors: add tensor: invalid name %q", name)
	}
	if w.names[name] {
		return fmt.Errorf("safetensors: add tensor %q: name already used", name)
	}
	size := dtype.Size()
	if size == 0 {
		return fmt.Errorf("safetensors: add tensor %q: unknown dtype %q", name, dtype)
	}
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("safetensors: add tensor %q: negative dimension in shape %v", name, shape)
		}
		n *= d
	}
	if n*size != len(data) {
		return fmt.Errorf("safetensors: add tensor %q: shape %v of %s needs %d bytes, got %d", name, shape, dtype, n*size, len(data))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, Tensor{Name: name, DType: dtype, Shape: append([]int(nil), shape...), Data: data})
	w.values = append(w.values, nil)
	return nil
}

// AddFloat32Ref appends a tensor of float32 values stored as F32 without
// copying them: WriteTo encodes them a chunk at a time as it writes, so a
// large file is never held in memory. The values must hold exactly the
// elements that shape calls for and must not change until the file is
// written. The bytes written are those AddFloat32 with F32 would write.
func (w *Writer) AddFloat32Ref(name string, shape []int, values []float32) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("safetensors: add tensor %q: negative dimension in shape %v", name, shape)
		}
		n *= d
	}
	if n != len(values) {
		return fmt.Errorf("safetensors: add tensor %q: shape %v needs %d values, got %d", name, shape, n, len(values))
	}
	if name == "" || name == "__metadata__" {
		return fmt.Errorf("safetensors: add tensor: invalid name %q", name)
	}
	if w.names[name] {
		return fmt.Errorf("safetensors: add tensor %q: name already used", name)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, Tensor{Name: name, DType: F32, Shape: append([]int(nil), shape...)})
	w.values = append(w.values, values)
	return nil
}

// size returns the number of data bytes of tensor i.
func (w *Writer) size(i int) uint64 {
	if v := w.values[i]; v != nil {
		return 4 * uint64(len(v))
	}
	return uint64(len(w.tensors[i].Data))
}

// AddFloat32 appends a tensor holding values, stored as dtype (F32, F16 or
// BF16; the narrower types round to nearest even).
func (w *Writer) AddFloat32(name string, dtype DType, shape []int, values []float32) error {
	var data []byte
	switch dtype {
	case F32:
		data = make([]byte, 4*len(values))
		ggml.F32RowToBytes(values, data)
	case F16:
		data = make([]byte, 2*len(values))
		ggml.F32RowToF16(values, data)
	case BF16:
		data = make([]byte, 2*len(values))
		ggml.F32RowToBF16(values, data)
	default:
		return fmt.Errorf("safetensors: add tensor %q: dtype %s is not F32, F16 or BF16", name, dtype)
	}
	return w.Add(name, dtype, shape, data)
}

// WriteTo writes the file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	header := map[string]any{}
	if len(w.Metadata) > 0 {
		header["__metadata__"] = w.Metadata
	}
	var off uint64
	for i, t := range w.tensors {
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		end := off + w.size(i)
		header[t.Name] = headerEntry{DType: t.DType, Shape: toInt64(shape), DataOffsets: []uint64{off, end}}
		off = end
	}
	js, err := json.Marshal(header) // map keys come out sorted
	if err != nil {
		return 0, fmt.Errorf("safetensors: encode header: %w", err)
	}
	// Pad the header with spaces so that the data starts 8-byte aligned.
	for (8+len(js))%8 != 0 {
		js = append(js, ' ')
	}
	var total int64
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	write := func(b []byte) error {
		n, err := out.Write(b)
		total += int64(n)
		if err != nil {
			return fmt.Errorf("safetensors: write: %w", err)
		}
		return nil
	}
	if err := write(lenBuf[:]); err != nil {
		return total, err
	}
	if err := write(js); err != nil {
		return total, err
	}
	var chunk []byte
	for i, t := range w.tensors {
		v := w.values[i]
		if v == nil {
			if err := write(t.Data); err != nil {
				return total, err
			}
			continue
		}
		if chunk == nil {
			chunk = make([]byte, 4*writeChunk)
		}
		for len(v) > 0 {
			k := min(len(v), writeChunk)
			ggml.F32RowToBytes(v[:k], chunk[:4*k])
			if err := write(chunk[:4*k]); err != nil {
				return total, err
			}
			v = v[k:]
		}
	}
	return total, nil
}

// writeChunk is the number of float32 values WriteTo encodes at a time.
const writeChunk = 1 << 16

func toInt64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// WriteFile writes the file to path, through a temporary file in the same
// directory that is renamed into place, so that readers never see half a
// file.
func (w *Writer) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := w.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
