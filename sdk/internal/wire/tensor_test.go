package wire

import (
	"errors"
	"math"
	"testing"

	"github.com/carryon/carryon/models/ggml"
	pb "github.com/carryon/carryon/proto/carryon/v1"
)

func TestPackUnpack(t *testing.T) {
	x := []float32{0, -1.5, 3.25, float32(math.Inf(-1)), 1e-8, 65504, 7e4}
	got, err := UnpackF32(PackF32(x, 7), nil, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if got[i] != x[i] {
			t.Fatalf("F32 [%d] %v → %v", i, x[i], got[i])
		}
	}
	rows := PackF32Rows(2, 3, func(i int) []float32 { return x[i*3 : i*3+3] })
	got, err = UnpackF32(rows, got, 2, 3)
	if err != nil || got[4] != x[4] {
		t.Fatalf("rows: %v %v", got, err)
	}
	// F16 must round exactly like ggml's reference conversion.
	h, err := UnpackF32(PackF16(x, 7), nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		want := ggml.F16ToF32(ggml.F32ToF16(x[i]))
		if h[i] != want && !(math.IsNaN(float64(h[i])) && math.IsNaN(float64(want))) {
			t.Errorf("F16 [%d] %v → %v, ggml gives %v", i, x[i], h[i], want)
		}
	}
}

func TestF16MatchesGGML(t *testing.T) {
	for b := uint32(0); b < 1<<32-1<<16; b += 0x10001 {
		f := math.Float32frombits(b)
		if math.IsNaN(float64(f)) {
			continue
		}
		if got, want := f32ToF16(f), ggml.F32ToF16(f); got != want {
			t.Fatalf("f32ToF16(%v) = %#x, ggml %#x", f, got, want)
		}
	}
	for h := range uint32(1 << 16) {
		got, want := f16ToF32(uint16(h)), ggml.F16ToF32(uint16(h))
		if math.Float32bits(got) != math.Float32bits(want) && !math.IsNaN(float64(want)) {
			t.Fatalf("f16ToF32(%#x) = %v, ggml %v", h, got, want)
		}
	}
}

func TestMalformedTensors(t *testing.T) {
	cases := map[string]*pb.Tensor{
		"nil":       nil,
		"short":     {Data: make([]byte, 7), Shape: []int64{2}, Dtype: pb.DType_DTYPE_F32},
		"negative":  {Data: nil, Shape: []int64{-1}, Dtype: pb.DType_DTYPE_F32},
		"no dtype":  {Data: make([]byte, 8), Shape: []int64{2}},
		"overflow":  {Data: nil, Shape: []int64{1 << 40, 1 << 40}, Dtype: pb.DType_DTYPE_F32},
		"int dtype": {Data: make([]byte, 8), Shape: []int64{2}, Dtype: pb.DType_DTYPE_I32},
	}
	for name, tt := range cases {
		if _, err := UnpackF32(tt, nil); !errors.Is(err, ErrTensor) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := UnpackF32(PackF32(make([]float32, 6), 2, 3), nil, 3, -1); !errors.Is(err, ErrTensor) {
		t.Errorf("wrong shape accepted: %v", err)
	}
}
