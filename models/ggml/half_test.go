package ggml

import (
	"math"
	"testing"
)

// f16Value computes the value of a non-NaN binary16 from its fields in
// float64, independently of the conversion under test.
func f16Value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

func isF16NaN(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }

func TestF16ToF32AllHalves(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got := F16ToF32(h)
		if isF16NaN(h) {
			bits := math.Float32bits(got)
			want := uint32(h&0x8000)<<16 | 0x7fc00000 | uint32(h&0x3ff)<<13
			if bits != want {
				t.Fatalf("F16ToF32(%#04x) = %#08x, want quiet NaN %#08x", h, bits, want)
			}
			continue
		}
		want := f16Value(h)
		if float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
			t.Fatalf("F16ToF32(%#04x) = %g, want %g", h, got, want)
		}
		if f16ToF32Bits(h) != got {
			t.Fatalf("table and arithmetic disagree for %#04x", h)
		}
	}
}

func TestF32ToF16RoundTripsAllHalves(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got := F32ToF16(F16ToF32(h))
		want := h
		if isF16NaN(h) {
			want = h&0x8000 | 0x7e00 // canonical quiet NaN, sign kept
		}
		if got != want {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x, want %#04x", h, got, want)
		}
	}
}

func TestF32ToF16Cases(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"largest finite", 65504, 0x7bff},
		{"just below the overflow tie", math.Nextafter32(65520, 0), 0x7bff},
		{"overflow tie goes to infinity", 65520, 0x7c00},
		{"large", 1e10, 0x7c00},
		{"negative large", -1e10, 0xfc00},
		{"infinity", float32(math.Inf(1)), 0x7c00},
		{"negative infinity", float32(math.Inf(-1)), 0xfc00},
		{"NaN", float32(math.NaN()), 0x7e00},
		{"negative NaN with payload", math.Float32frombits(0xff800123), 0xfe00},
		{"tie rounds to even (down)", 1 + 0x1p-11, 0x3c00},
		{"tie rounds to even (up)", 1 + 3*0x1p-11, 0x3c02},
		{"above a tie rounds up", math.Nextafter32(1+0x1p-11, 2), 0x3c01},
		{"smallest normal", 0x1p-14, 0x0400},
		{"largest subnormal", 0x3ffp-24, 0x03ff},
		{"rounds up into the normals", 0x1p-14 - 0x1p-25, 0x0400},
		{"smallest subnormal", 0x1p-24, 0x0001},
		{"half the smallest subnormal ties to zero", 0x1p-25, 0x0000},
		{"above half the smallest subnormal", math.Nextafter32(0x1p-25, 1), 0x0001},
		{"subnormal tie rounds to even", 3 * 0x1p-25, 0x0002},
		{"negative subnormal", -5 * 0x1p-24, 0x8005},
		{"float32 subnormal", math.Float32frombits(1), 0x0000},
		{"negative tiny", -1e-30, 0x8000},
	}
	for _, tt := range tests {
		if got := F32ToF16(tt.in); got != tt.want {
			t.Errorf("%s: F32ToF16(%g) = %#04x, want %#04x", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestF32ToF16IsNearest checks on many float32 bit patterns that the result
// is a nearest half and that ties go to the even one.
func TestF32ToF16IsNearest(t *testing.T) {
	r := &splitMix{state: 5}
	for range 200000 {
		f := math.Float32frombits(uint32(r.next()))
		if f != f || math.Abs(float64(f)) >= 65520 {
			continue
		}
		h := F32ToF16(f)
		got := f16Value(h)
		err := math.Abs(got - float64(f))
		for _, nb := range []uint16{h - 1, h + 1, h ^ 0x8000} {
			if isF16NaN(nb) || nb&0x7fff > 0x7bff {
				continue
			}
			e := math.Abs(f16Value(nb) - float64(f))
			if e < err || (e == err && nb&1 == 0 && h&1 == 1) {
				t.Fatalf("F32ToF16(%g) = %#04x (%g), but %#04x (%g) is nearer or an even tie", f, h, got, nb, f16Value(nb))
			}
		}
	}
}

func TestBF16RoundTripsAllHalves(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := BF16ToF32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %#08x", h, math.Float32bits(f))
		}
		want := h
		if h&0x7f80 == 0x7f80 && h&0x7f != 0 {
			want = h | 0x40 // NaN: forced quiet
		}
		if got := F32ToBF16(f); got != want {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x, want %#04x", h, got, want)
		}
	}
}

func TestF32ToBF16Cases(t *testing.T) {
	tests := []struct {
		name string
		bits uint32
		want uint16
	}{
		{"one", 0x3f800000, 0x3f80},
		{"tie rounds to even (down)", 0x3f808000, 0x3f80},
		{"tie rounds to even (up)", 0x3f818000, 0x3f82},
		{"above a tie rounds up", 0x3f808001, 0x3f81},
		{"below a tie rounds down", 0x3f807fff, 0x3f80},
		{"largest float32 rounds to infinity", 0x7f7fffff, 0x7f80},
		{"infinity", 0x7f800000, 0x7f80},
		{"negative infinity", 0xff800000, 0xff80},
		{"signalling NaN is quieted", 0x7f800001, 0x7fc0},
		{"NaN keeps its upper payload", 0x7f812345, 0x7fc1},
		{"negative NaN", 0xffc00000, 0xffc0},
		{"subnormal is kept", 0x00010000, 0x0001},
		{"negative zero", 0x80000000, 0x8000},
	}
	for _, tt := range tests {
		if got := F32ToBF16(math.Float32frombits(tt.bits)); got != tt.want {
			t.Errorf("%s: F32ToBF16(%#08x) = %#04x, want %#04x", tt.name, tt.bits, got, tt.want)
		}
	}
}

func TestHalfRowConverters(t *testing.T) {
	in := []float32{1, -2, 0.5, 65504, float32(math.Inf(-1))}
	f16 := make([]byte, 2*len(in))
	if n := F32RowToF16(in, f16); n != len(in) {
		t.Fatalf("F32RowToF16 converted %d values, want %d", n, len(in))
	}
	want := []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b, 0x00, 0xfc}
	if string(f16) != string(want) {
		t.Fatalf("F32RowToF16 bytes % x, want % x", f16, want)
	}
	out := make([]float32, len(in))
	if n := F16RowToF32(f16, out); n != len(in) {
		t.Fatalf("F16RowToF32 converted %d values", n)
	}
	for i := range in {
		if out[i] != in[i] {
			t.Errorf("F16 row element %d = %g, want %g", i, out[i], in[i])
		}
	}

	bf := make([]byte, 2*len(in))
	F32RowToBF16(in, bf)
	clear(out)
	BF16RowToF32(bf, out)
	for i := range in {
		if out[i] != float32(BF16ToF32(F32ToBF16(in[i]))) {
			t.Errorf("BF16 row element %d = %g", i, out[i])
		}
	}

	// Mismatched lengths convert the common prefix and never panic.
	if n := F16RowToF32(f16[:5], out); n != 2 {
		t.Errorf("F16RowToF32 with 5 bytes converted %d values, want 2", n)
	}
	if n := F32RowToF16(in, make([]byte, 3)); n != 1 {
		t.Errorf("F32RowToF16 into 3 bytes converted %d values, want 1", n)
	}
	if n := BF16RowToF32(bf, out[:1]); n != 1 {
		t.Errorf("BF16RowToF32 into 1 value converted %d", n)
	}
	if n := F32RowFromBytes(make([]byte, 7), out); n != 1 {
		t.Errorf("F32RowFromBytes with 7 bytes converted %d values, want 1", n)
	}
}

func BenchmarkF16ToF32(b *testing.B) {
	const n = 4096
	r := &splitMix{state: 1}
	src := make([]byte, 2*n)
	for i := range n {
		h := F32ToF16(r.bellish())
		src[2*i], src[2*i+1] = byte(h), byte(h>>8)
	}
	dst := make([]float32, n)
	b.SetBytes(2 * n)
	for b.Loop() {
		F16RowToF32(src, dst)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
}

func BenchmarkF32ToF16(b *testing.B) {
	const n = 4096
	r := &splitMix{state: 1}
	src := make([]float32, n)
	for i := range src {
		src[i] = r.bellish()
	}
	dst := make([]byte, 2*n)
	b.SetBytes(4 * n)
	for b.Loop() {
		F32RowToF16(src, dst)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
}

// TestF32RowToF16MatchesScalar checks the row converter's inline fast path
// against F32ToF16 on random bit patterns and around its range limits.
func TestF32RowToF16MatchesScalar(t *testing.T) {
	r := &splitMix{state: 13}
	var in []float32
	for range 1 << 16 {
		in = append(in, math.Float32frombits(uint32(r.next())))
	}
	for _, edge := range []uint32{0x38800000, 0x477ff000, 0x7f800000} {
		for d := uint32(0); d < 4096; d++ {
			in = append(in, math.Float32frombits(edge-2048+d), math.Float32frombits((edge-2048+d)|0x80000000))
		}
	}
	out := make([]byte, 2*len(in))
	F32RowToF16(in, out)
	for i, f := range in {
		if got, want := uint16(out[2*i])|uint16(out[2*i+1])<<8, F32ToF16(f); got != want {
			t.Fatalf("F32RowToF16 of %#08x = %#04x, F32ToF16 gives %#04x", math.Float32bits(f), got, want)
		}
	}
}
