package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	w := NewWriter()
	w.Metadata = map[string]string{"format": "carryon"}
	a := []float32{1, -2.5, 3.25, 0, float32(math.Inf(1)), -0.0078125}
	if err := w.AddFloat32("a", F32, []int{2, 3}, a); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFloat32("b.half", F16, []int{6}, a); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFloat32("c", BF16, []int{3, 1, 2}, a); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("scalar", I32, nil, []byte{7, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("empty", F32, []int{0, 4}, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "carryon" {
		t.Errorf("metadata %v", f.Metadata)
	}
	names := []string{}
	for _, ts := range f.Tensors {
		names = append(names, ts.Name)
	}
	// Zero-length tensors may sit anywhere among their neighbours.
	if len(names) != 5 {
		t.Fatalf("tensors %v", names)
	}
	for _, name := range []string{"a", "b.half", "c"} {
		ts, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		got, err := ts.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if got[i] != a[i] { // every value is exact in all three types
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], a[i])
			}
		}
	}
	if ts, _ := f.Tensor("c"); len(ts.Shape) != 3 || ts.Shape[0] != 3 || ts.Shape[2] != 2 {
		t.Errorf("shape %v", ts.Shape)
	}
	if ts, _ := f.Tensor("scalar"); len(ts.Shape) != 0 || ts.Elements() != 1 || ts.Data[0] != 7 {
		t.Errorf("scalar %+v", ts)
	}
	if _, err := (Tensor{Name: "x", DType: I32, Shape: []int{1}, Data: make([]byte, 4)}).Float32s(); err == nil {
		t.Error("Float32s of I32 succeeded")
	}

	// Writing twice gives the same bytes.
	var b1, b2 bytes.Buffer
	w.WriteTo(&b1)
	w.WriteTo(&b2)
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Error("output is not deterministic")
	}
	if hl := binary.LittleEndian.Uint64(b1.Bytes()); (8+hl)%8 != 0 {
		t.Errorf("data starts at %d, not 8-byte aligned", 8+hl)
	}
}

func TestWriterRejects(t *testing.T) {
	w := NewWriter()
	if err := w.Add("x", F32, []int{2}, make([]byte, 4)); err == nil {
		t.Error("short data accepted")
	}
	if err := w.Add("x", "F8", []int{1}, make([]byte, 1)); err == nil {
		t.Error("unknown dtype accepted")
	}
	if err := w.Add("__metadata__", F32, []int{1}, make([]byte, 4)); err == nil {
		t.Error("reserved name accepted")
	}
	w.Add("x", F32, []int{1}, make([]byte, 4))
	if err := w.Add("x", F32, []int{1}, make([]byte, 4)); err == nil {
		t.Error("duplicate name accepted")
	}
}

// file assembles a file from a header string and a data section.
func file(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestMalformed(t *testing.T) {
	tooLong := make([]byte, 8)
	binary.LittleEndian.PutUint64(tooLong, 1<<40)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than"},
		{"huge header length", tooLong, "exceeds"},
		{"header past end", file(`{}`, nil)[:9], "runs past"},
		{"not an object", file(`[1]`, nil), "does not start"},
		{"bad json", file(`{"a":`, nil), "header JSON"},
		{"duplicate name", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)), "twice"},
		{"unknown dtype", file(`{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), "unknown dtype"},
		{"unknown field", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), "unknown field"},
		{"missing offsets", file(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), "needs dtype"},
		{"three offsets", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}`, make([]byte, 4)), "2"},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "negative"},
		{"shape mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), "needs 8 bytes"},
		{"offsets past end", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "outside"},
		{"reversed offsets", file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4)), "outside"},
		{"gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "gap"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "overlaps"},
		{"trailing data", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 6)), "after the last"},
		{"huge shape", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), "larger than"},
		{"bad metadata", file(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"bytes after object", file(`{} x`, nil), "after the header"},
		{"empty name", file(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "empty name"},
	}
	for _, c := range cases {
		_, err := Parse(c.data)
		if err == nil {
			t.Errorf("%s: parsed", c.name)
			continue
		}
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want ErrFormat mentioning %q", c.name, err, c.want)
		}
	}
	// Padding after the header object is fine.
	if _, err := Parse(file(`{}    `, nil)); err != nil {
		t.Errorf("padded empty file: %v", err)
	}
}

func FuzzSafetensors(f *testing.F) {
	w := NewWriter()
	w.Metadata = map[string]string{"k": "v"}
	w.AddFloat32("a", F32, []int{2, 2}, []float32{1, 2, 3, 4})
	w.AddFloat32("b", BF16, []int{3}, []float32{1, 2, 3})
	var buf bytes.Buffer
	w.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add(file(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}`, []byte{0, 0x3c}))
	f.Add(file(`{}`, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		// A parsed file converts and writes back to an equivalent file.
		out := NewWriter()
		out.Metadata = sf.Metadata
		for _, ts := range sf.Tensors {
			if ts.Elements()*ts.DType.Size() != len(ts.Data) {
				t.Fatalf("tensor %q: %d bytes for shape %v", ts.Name, len(ts.Data), ts.Shape)
			}
			if ts.DType == F32 || ts.DType == F16 || ts.DType == BF16 {
				if _, err := ts.Float32s(); err != nil {
					t.Fatal(err)
				}
			}
			if err := out.Add(ts.Name, ts.DType, ts.Shape, ts.Data); err != nil {
				t.Fatal(err)
			}
		}
		var b bytes.Buffer
		if _, err := out.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if len(again.Tensors) != len(sf.Tensors) {
			t.Fatalf("%d tensors, then %d", len(sf.Tensors), len(again.Tensors))
		}
		for _, ts := range sf.Tensors {
			t2, ok := again.Tensor(ts.Name)
			if !ok || !bytes.Equal(t2.Data, ts.Data) || t2.DType != ts.DType {
				t.Fatalf("tensor %q changed", ts.Name)
			}
		}
	})
}

// TestAddFloat32Ref checks that tensors encoded while the file is written
// (several chunks long, mixed with tensors held as bytes) give the same
// file as AddFloat32 with F32, and that bad shapes and names are refused.
func TestAddFloat32Ref(t *testing.T) {
	big := make([]float32, 2*writeChunk+7)
	for i := range big {
		big[i] = float32(i)*0.5 - 3
	}
	small := []float32{1, -2, float32(math.Inf(-1))}
	copied, streamed := NewWriter(), NewWriter()
	for _, w := range []*Writer{copied, streamed} {
		w.Metadata = map[string]string{"step": "3"}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(copied.AddFloat32("big", F32, []int{len(big)}, big))
	must(copied.AddFloat32("half", F16, []int{3}, small))
	must(copied.AddFloat32("small", F32, []int{1, 3}, small))
	must(streamed.AddFloat32Ref("big", []int{len(big)}, big))
	must(streamed.AddFloat32("half", F16, []int{3}, small))
	must(streamed.AddFloat32Ref("small", []int{1, 3}, small))
	var a, b bytes.Buffer
	if _, err := copied.WriteTo(&a); err != nil {
		t.Fatal(err)
	}
	n, err := streamed.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("streamed file (%d bytes, %d reported) differs from the copied one (%d bytes)", b.Len(), n, a.Len())
	}
	f, err := Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := f.Tensor("big")
	got, err := tn.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range big {
		if got[i] != big[i] {
			t.Fatalf("big[%d] = %v, want %v", i, got[i], big[i])
		}
	}
	if err := streamed.AddFloat32Ref("bad", []int{2, 2}, small); err == nil {
		t.Error("a shape that does not match the values was accepted")
	}
	if err := streamed.AddFloat32Ref("small", []int{3}, small); err == nil {
		t.Error("a repeated name was accepted")
	}
	if err := streamed.AddFloat32Ref("neg", []int{-3}, small); err == nil {
		t.Error("a negative dimension was accepted")
	}
}
