package gguf

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/carryon/carryon/models/ggml"
)

// TestAddTensorFunc checks that a streamed tensor is written exactly like
// the same bytes given to AddTensor.
func TestAddTensorFunc(t *testing.T) {
	data := make([]byte, 4*6)
	for i := range data {
		data[i] = byte(i * 7)
	}
	build := func(stream bool) []byte {
		w := NewWriter()
		w.Meta().Set("general.architecture", "llama")
		if err := w.AddTensor("first", ggml.TypeF32, []int{3}, make([]byte, 12)); err != nil {
			t.Fatal(err)
		}
		var err error
		if stream {
			err = w.AddTensorFunc("x", ggml.TypeF32, []int{3, 2}, func(out io.Writer) error {
				// Write in two pieces, as a row-by-row generator would.
				if _, err := out.Write(data[:10]); err != nil {
					return err
				}
				_, err := out.Write(data[10:])
				return err
			})
		} else {
			err = w.AddTensor("x", ggml.TypeF32, []int{3, 2}, data)
		}
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	streamed, whole := build(true), build(false)
	if !bytes.Equal(streamed, whole) {
		t.Fatal("streamed tensor written differently from AddTensor")
	}
	f, err := Parse(streamed)
	if err != nil {
		t.Fatal(err)
	}
	x, err := f.Tensor("x")
	if err != nil || !bytes.Equal(x.Data, data) {
		t.Fatalf("tensor x: %v %v", x.Data, err)
	}
}

func TestAddTensorFuncErrors(t *testing.T) {
	short := NewWriter()
	if err := short.AddTensorFunc("x", ggml.TypeF32, []int{4}, func(out io.Writer) error {
		_, err := out.Write(make([]byte, 15))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := short.WriteTo(io.Discard); err == nil || !strings.Contains(err.Error(), "wrote 15 bytes") {
		t.Errorf("short fill: err = %v", err)
	}

	boom := errors.New("boom")
	failing := NewWriter()
	failing.AddTensorFunc("x", ggml.TypeF32, []int{4}, func(io.Writer) error { return boom })
	if _, err := failing.WriteTo(io.Discard); !errors.Is(err, boom) {
		t.Errorf("failing fill: err = %v", err)
	}

	w := NewWriter()
	if err := w.AddTensorFunc("x", ggml.TypeQ8_0, []int{31}, func(io.Writer) error { return nil }); err == nil {
		t.Error("bad row length accepted")
	}
	if err := w.AddTensorFunc("x", ggml.TypeF32, []int{4}, nil); err == nil {
		t.Error("nil fill accepted")
	}
}
