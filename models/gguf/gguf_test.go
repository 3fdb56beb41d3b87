package gguf

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	"github.com/carryon/carryon/models/testenv"
)

// sampleFile builds a small file with every metadata kind and two tensors.
func sampleFile(t testing.TB) []byte {
	t.Helper()
	w := NewWriter()
	m := w.Meta()
	m.Set("general.architecture", "llama")
	m.Set("u8", uint8(7))
	m.Set("i8", int8(-7))
	m.Set("u16", uint16(700))
	m.Set("i16", int16(-700))
	m.Set("u32", uint32(70000))
	m.Set("i32", int32(-70000))
	m.Set("f32", float32(1.5))
	m.Set("u64", uint64(1)<<40)
	m.Set("i64", int64(-1)<<40)
	m.Set("f64", 2.25)
	m.Set("flag", true)
	m.Set("tokens", []string{"a", "b", ""})
	m.Set("scores", []float32{0.5, -1})
	m.Set("types", []int32{1, 2, 3})
	m.Set("nested", []any{[]uint8{1, 2}, []string{"x"}})
	f32 := make([]byte, 4*8)
	for i := 0; i < 8; i++ {
		binary.LittleEndian.PutUint32(f32[i*4:], uint32(i))
	}
	if err := w.AddTensor("a", ggml.TypeF32, []int{4, 2}, f32); err != nil {
		t.Fatal(err)
	}
	q := make([]byte, 34*2)
	q[0] = 0xAB
	if err := w.AddTensor("b.weight", ggml.TypeQ8_0, []int{32, 2}, q); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data := sampleFile(t)
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Arch() != "llama" {
		t.Fatalf("version %d arch %q", f.Version, f.Arch())
	}
	want := map[string]any{
		"u8": uint8(7), "i8": int8(-7), "u16": uint16(700), "i16": int16(-700), "u32": uint32(70000),
		"i32": int32(-70000), "f32": float32(1.5), "u64": uint64(1) << 40, "i64": int64(-1) << 40,
		"f64": 2.25, "flag": true, "tokens": []string{"a", "b", ""}, "scores": []float32{0.5, -1},
		"types": []int32{1, 2, 3}, "nested": []any{[]uint8{1, 2}, []string{"x"}},
	}
	for k, v := range want {
		got, ok := f.Meta.Value(k)
		if !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	if keys := f.Meta.Keys(); keys[0] != "general.architecture" || keys[len(keys)-1] != "nested" {
		t.Errorf("key order lost: %v", keys)
	}
	if n, ok := f.Meta.Uint("u16"); !ok || n != 700 {
		t.Errorf("Uint(u16) = %d %v", n, ok)
	}
	if _, ok := f.Meta.Uint("i8"); ok {
		t.Errorf("Uint of a negative value must fail")
	}
	if x, ok := f.Meta.Float("u32"); !ok || x != 70000 {
		t.Errorf("Float(u32) = %v %v", x, ok)
	}
	if s, ok := f.Meta.Int32s("nested"); ok {
		t.Errorf("Int32s(nested) = %v", s)
	}
	a, err := f.Tensor("a")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Shape, []int{4, 2}) || a.Type != ggml.TypeF32 || len(a.Data) != 32 || a.Rows() != 2 {
		t.Fatalf("tensor a: %+v", a.TensorInfo)
	}
	if binary.LittleEndian.Uint32(a.Data[28:]) != 7 {
		t.Errorf("tensor a data wrong")
	}
	b, err := f.Tensor("b.weight")
	if err != nil {
		t.Fatal(err)
	}
	if b.Offset%DefaultAlignment != 0 || b.Data[0] != 0xAB || len(b.Data) != 68 {
		t.Errorf("tensor b: offset %d first byte %x len %d", b.Offset, b.Data[0], len(b.Data))
	}
	if _, err := f.Tensor("missing"); err == nil {
		t.Error("missing tensor must be an error")
	}
}

func TestWriterRejects(t *testing.T) {
	w := NewWriter()
	if err := w.AddTensor("x", ggml.TypeQ8_0, []int{31}, make([]byte, 34)); err == nil {
		t.Error("row length not a multiple of the block size accepted")
	}
	if err := w.AddTensor("x", ggml.TypeF32, []int{4}, make([]byte, 15)); err == nil {
		t.Error("short data accepted")
	}
	if err := w.AddTensor("x", ggml.TypeF32, []int{4}, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("x", ggml.TypeF32, []int{4}, make([]byte, 16)); err == nil {
		t.Error("duplicate name accepted")
	}
}

// TestTruncated checks that every prefix of a valid file is rejected
// cleanly.
func TestTruncated(t *testing.T) {
	data := sampleFile(t)
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	end := int(f.dataOff + last.Offset + last.Size) // trailing padding is optional
	for n := 0; n < end; n++ {
		if _, err := Parse(data[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed without error", n, len(data))
		}
	}
}

func TestBadFiles(t *testing.T) {
	good := sampleFile(t)
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"magic":   {mutate(func(b []byte) []byte { b[0] = 'X'; return b }), "not a GGUF file"},
		"version": {mutate(func(b []byte) []byte { b[4] = 9; return b }), "unsupported GGUF version"},
		"v1":      {mutate(func(b []byte) []byte { b[4] = 1; return b }), "version 1"},
		"tensors": {mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[8:], 1<<60); return b }), "more than the file can hold"},
		"kvs":     {mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 1<<62); return b }), "more than the file can hold"},
		"strlen":  {mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[24:], 1<<50); return b }), "too long"},
		"empty":   {nil, "too short"},
	}
	for name, c := range cases {
		_, err := Parse(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

// TestTensorOutOfBounds builds a file whose tensor points past the end.
func TestTensorOutOfBounds(t *testing.T) {
	w := NewWriter()
	if err := w.AddTensor("t", ggml.TypeF32, []int{64}, make([]byte, 256)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w.WriteTo(&buf)
	data := buf.Bytes()
	_, err := Parse(data[:len(data)-1])
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("err = %v", err)
	}
	// Unknown tensor type: the type field sits right before the offset.
	idx := bytes.Index(data, []byte("t")) // name bytes
	typeOff := idx + 1 + 4 + 8
	bad := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[typeOff:], 99)
	if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Fatalf("unknown type: err = %v", err)
	}
}

func TestOpenStories(t *testing.T) {
	path := testenv.Path(t, "stories260K.gguf")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Arch() != "llama" {
		t.Errorf("arch %q", f.Arch())
	}
	if n, ok := f.Meta.Uint("llama.embedding_length"); !ok || n != 64 {
		t.Errorf("embedding_length = %d", n)
	}
	toks, ok := f.Meta.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != 512 {
		t.Errorf("tokens: %d", len(toks))
	}
	emb, err := f.Tensor("token_embd.weight")
	if err != nil {
		t.Fatal(err)
	}
	if emb.Shape[0] != 64 || emb.Shape[1] != 512 {
		t.Errorf("token_embd shape %v", emb.Shape)
	}
}

func TestOpenVocabs(t *testing.T) {
	dir := filepath.Dir(testenv.Path(t, "vocab/ggml-vocab-llama-spm.gguf"))
	matches, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
	for _, p := range matches {
		f, err := Open(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if _, ok := f.Meta.Strings("tokenizer.ggml.tokens"); !ok {
			t.Errorf("%s: no tokens", p)
		}
		f.Close()
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sampleFile(f))
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		for _, ti := range file.Tensors {
			tn, err := file.Tensor(ti.Name)
			if err != nil || int64(len(tn.Data)) != ti.Size {
				t.Fatalf("tensor %q: %v", ti.Name, err)
			}
		}
	})
}
