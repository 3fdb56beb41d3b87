package ggml

import (
	"errors"
	"strings"
	"testing"
)

// The blocks in these tests are built field by field from the layouts
// documented on the Block types, and the expected weights are computed
// element by element from those layouts with scales that are powers of two,
// so every expected value is exact and independent of evaluation order.

func randomBytes(r *splitMix, b []byte) {
	for i := range b {
		b[i] = byte(r.next())
	}
}

// packScalesK4 packs eight 6-bit (scale, min) pairs as BlockQ4_K documents.
func packScalesK4(sc, m [8]uint8) [12]uint8 {
	var s [12]uint8
	for i := range 4 {
		s[i] = sc[i] | (sc[i+4]>>4)<<6
		s[i+4] = m[i] | (m[i+4]>>4)<<6
		s[i+8] = sc[i+4]&15 | (m[i+4]&15)<<4
	}
	return s
}

// packScalesQ3K packs sixteen signed 6-bit scales as BlockQ3_K documents.
func packScalesQ3K(sc [16]int8) [12]uint8 {
	var s [12]uint8
	for i, v := range sc {
		u := uint8(v + 32)
		if i < 8 {
			s[i] |= u & 0xf
		} else {
			s[i-8] |= (u & 0xf) << 4
		}
		s[8+i%4] |= (u >> 4) << (2 * (i / 4))
	}
	return s
}

func checkDequantize(t *testing.T, typ Type, src []byte, want []float32) {
	t.Helper()
	got := make([]float32, len(want))
	if err := Dequantize(typ, src, got); err != nil {
		t.Fatalf("Dequantize(%s): %v", typ, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s element %d = %g, want %g", typ, i, got[i], want[i])
		}
	}
}

func TestDequantizeQ4_0(t *testing.T) {
	var src []byte
	var want []float32
	for blk, d := range []float32{0.5, -4} {
		b := BlockQ4_0{D: F32ToF16(d)}
		for j := range b.Qs {
			b.Qs[j] = uint8(j) | uint8(15-j)<<4
		}
		src = b.Append(src)
		for e := range 32 {
			q := int(b.Qs[e%16] & 0xf)
			if e >= 16 {
				q = int(b.Qs[e%16] >> 4)
			}
			want = append(want, float32(float64(q-8)*float64(d)))
		}
		if blk == 0 {
			// Spot checks: element 0 is (0-8)*0.5, element 16 is (15-8)*0.5.
			if want[0] != -4 || want[16] != 3.5 || want[31] != -4 {
				t.Fatalf("expected values are off: %v", want[:32])
			}
		}
	}
	checkDequantize(t, TypeQ4_0, src, want)
}

func TestDequantizeQ4_1(t *testing.T) {
	var src []byte
	var want []float32
	for _, dm := range [][2]float32{{0.25, -1}, {2, 0.5}} {
		b := BlockQ4_1{D: F32ToF16(dm[0]), M: F32ToF16(dm[1])}
		for j := range b.Qs {
			b.Qs[j] = uint8(j) | uint8(15-j)<<4
		}
		src = b.Append(src)
		for e := range 32 {
			q := b.Qs[e%16] & 0xf
			if e >= 16 {
				q = b.Qs[e%16] >> 4
			}
			want = append(want, float32(float64(q)*float64(dm[0])+float64(dm[1])))
		}
	}
	if want[0] != -1 || want[16] != 2.75 {
		t.Fatalf("expected values are off: %v", want[:32])
	}
	checkDequantize(t, TypeQ4_1, src, want)
}

func TestDequantizeQ5_0AndQ5_1(t *testing.T) {
	r := &splitMix{state: 3}
	var src0, src1 []byte
	var want0, want1 []float32
	for _, qh := range []uint32{0xa5a5f00f, 0x0ff0c33c} {
		b0 := BlockQ5_0{D: F32ToF16(0.5), Qh: qh}
		b1 := BlockQ5_1{D: F32ToF16(0.25), M: F32ToF16(-3), Qh: qh}
		randomBytes(r, b0.Qs[:])
		b1.Qs = b0.Qs
		src0, src1 = b0.Append(src0), b1.Append(src1)
		for e := range 32 {
			low := b0.Qs[e%16] & 0xf
			if e >= 16 {
				low = b0.Qs[e%16] >> 4
			}
			q := int(low) | int(qh>>e&1)<<4
			want0 = append(want0, float32(float64(q-16)*0.5))
			want1 = append(want1, float32(float64(q)*0.25-3))
		}
	}
	checkDequantize(t, TypeQ5_0, src0, want0)
	checkDequantize(t, TypeQ5_1, src1, want1)
}

func TestDequantizeQ8_0(t *testing.T) {
	b := BlockQ8_0{D: F32ToF16(0.125)}
	want := make([]float32, 32)
	for j := range b.Qs {
		b.Qs[j] = int8(j*9 - 128)
		want[j] = float32(b.Qs[j]) * 0.125
	}
	b.Qs[31] = 127
	want[31] = 15.875
	checkDequantize(t, TypeQ8_0, b.Append(nil), want)
}

func TestDequantizeQ2_K(t *testing.T) {
	r := &splitMix{state: 4}
	var src []byte
	var want []float32
	for _, dd := range [][2]float32{{0.5, 0.25}, {-2, 1}} {
		b := BlockQ2_K{D: F32ToF16(dd[0]), DMin: F32ToF16(dd[1])}
		for i := range b.Scales {
			b.Scales[i] = uint8(i) | uint8(i*5%16)<<4
		}
		randomBytes(r, b.Qs[:])
		src = b.Append(src)
		for e := range QK_K {
			h, s, l := e/128, e%128/32, e%32
			q := float64(b.Qs[32*h+l] >> (2 * s) & 3)
			sub := e / 16
			sc, mn := float64(b.Scales[sub]&0xf), float64(b.Scales[sub]>>4)
			want = append(want, float32(float64(dd[0])*sc*q-float64(dd[1])*mn))
		}
	}
	checkDequantize(t, TypeQ2_K, src, want)
}

func TestDequantizeQ3_K(t *testing.T) {
	r := &splitMix{state: 5}
	var sc [16]int8
	for i := range sc {
		sc[i] = int8(i*4 - 29) // -29..31, both ends of the 6-bit range in use
	}
	sc[0] = -32
	var src []byte
	var want []float32
	for _, d := range []float32{0.25, -0.5} {
		b := BlockQ3_K{D: F32ToF16(d), Scales: packScalesQ3K(sc)}
		randomBytes(r, b.HMask[:])
		randomBytes(r, b.Qs[:])
		src = b.Append(src)
		for e := range QK_K {
			h, s, l := e/128, e%128/32, e%32
			low := int(b.Qs[32*h+l] >> (2 * s) & 3)
			high := int(b.HMask[e%32] >> (e / 32) & 1)
			q := low + 4*high - 4
			want = append(want, float32(float64(d)*float64(sc[e/16])*float64(q)))
		}
	}
	for j := range 16 {
		if got := ScaleQ3_K(j, src[96:108]); got != sc[j] {
			t.Fatalf("ScaleQ3_K(%d) = %d, want %d", j, got, sc[j])
		}
	}
	checkDequantize(t, TypeQ3_K, src, want)
}

// kQuantScales are the sub-block scales and mins of the Q4_K and Q5_K test
// blocks: zeros, the 6-bit maximum and values that need the high bits.
var (
	kQuantSc = [8]uint8{1, 63, 17, 32, 5, 40, 63, 0}
	kQuantM  = [8]uint8{0, 7, 63, 31, 48, 1, 33, 62}
)

func TestDequantizeQ4_K(t *testing.T) {
	r := &splitMix{state: 6}
	var src []byte
	var want []float32
	for blk, dd := range [][2]float32{{0.5, 0.125}, {0.0625, 4}} {
		b := BlockQ4_K{D: F32ToF16(dd[0]), DMin: F32ToF16(dd[1]), Scales: packScalesK4(kQuantSc, kQuantM)}
		randomBytes(r, b.Qs[:])
		if blk == 0 {
			b.Qs[0] = 0x9c
		}
		src = b.Append(src)
		for e := range QK_K {
			c, hi, l := e/64, e%64/32, e%32
			q := b.Qs[32*c+l] & 0xf
			if hi == 1 {
				q = b.Qs[32*c+l] >> 4
			}
			sub := e / 32
			want = append(want, float32(float64(dd[0])*float64(kQuantSc[sub])*float64(q)-float64(dd[1])*float64(kQuantM[sub])))
		}
	}
	// By hand: byte 0 of qs is 0x9c. Element 0 takes its low nibble (12) in
	// sub-block 0 (sc 1, m 0): 0.5*1*12 - 0.125*0 = 6. Element 32 takes its
	// high nibble (9) in sub-block 1 (sc 63, m 7): 0.5*63*9 - 0.125*7.
	if want[0] != 6 || want[32] != 282.625 {
		t.Fatalf("expected values are off: %g %g", want[0], want[32])
	}
	checkDequantize(t, TypeQ4_K, src, want)
}

func TestDequantizeQ5_K(t *testing.T) {
	r := &splitMix{state: 7}
	var src []byte
	var want []float32
	for _, dd := range [][2]float32{{0.5, 0.125}, {-1, 2}} {
		b := BlockQ5_K{D: F32ToF16(dd[0]), DMin: F32ToF16(dd[1]), Scales: packScalesK4(kQuantSc, kQuantM)}
		randomBytes(r, b.Qh[:])
		randomBytes(r, b.Qs[:])
		src = b.Append(src)
		for e := range QK_K {
			c, hi, l := e/64, e%64/32, e%32
			q := b.Qs[32*c+l] & 0xf
			if hi == 1 {
				q = b.Qs[32*c+l] >> 4
			}
			q |= (b.Qh[e%32] >> (e / 32) & 1) << 4
			sub := e / 32
			want = append(want, float32(float64(dd[0])*float64(kQuantSc[sub])*float64(q)-float64(dd[1])*float64(kQuantM[sub])))
		}
	}
	checkDequantize(t, TypeQ5_K, src, want)
}

func TestDequantizeQ6_K(t *testing.T) {
	r := &splitMix{state: 8}
	sc := [16]int8{-128, 127, -1, 1, 5, -7, 64, -64, 3, 0, 100, -100, 2, -2, 50, 9}
	var src []byte
	var want []float32
	for blk, d := range []float32{0.0625, -2} {
		b := BlockQ6_K{D: F32ToF16(d), Scales: sc}
		randomBytes(r, b.Ql[:])
		randomBytes(r, b.Qh[:])
		if blk == 0 {
			b.Ql[0], b.Qh[0] = 0x00, 0x00 // element 0: q = 0, the most negative level
		}
		src = b.Append(src)
		for e := range QK_K {
			h, quarter, l := e/128, e%128/32, e%32
			var low uint8
			switch quarter {
			case 0:
				low = b.Ql[64*h+l] & 0xf
			case 1:
				low = b.Ql[64*h+32+l] & 0xf
			case 2:
				low = b.Ql[64*h+l] >> 4
			case 3:
				low = b.Ql[64*h+32+l] >> 4
			}
			high := b.Qh[32*h+l] >> (2 * quarter) & 3
			q := int(low|high<<4) - 32
			want = append(want, float32(float64(d)*float64(sc[e/16])*float64(q)))
		}
	}
	// By hand: element 0 has q = 0 - 32 in sub-block 0 (scale -128):
	// 0.0625 * -128 * -32 = 256.
	if want[0] != 256 {
		t.Fatalf("expected values are off: %g", want[0])
	}
	checkDequantize(t, TypeQ6_K, src, want)
}

func TestDequantizeQ8_K(t *testing.T) {
	r := &splitMix{state: 9}
	b := BlockQ8_K{D: 0.375}
	want := make([]float32, QK_K)
	for j := range b.Qs {
		b.Qs[j] = int8(r.next())
		want[j] = float32(float64(b.Qs[j]) * 0.375)
	}
	checkDequantize(t, TypeQ8_K, b.Append(nil), want)
}

func TestDequantizeFloats(t *testing.T) {
	want := []float32{1.5, -0.25, 65504, 0}
	f32 := make([]byte, 16)
	F32RowToBytes(want, f32)
	checkDequantize(t, TypeF32, f32, want)
	f16 := make([]byte, 8)
	F32RowToF16(want, f16)
	checkDequantize(t, TypeF16, f16, want)
	bf := make([]byte, 8)
	F32RowToBF16([]float32{1.5, -0.25, 65536, 0}, bf)
	checkDequantize(t, TypeBF16, bf, []float32{1.5, -0.25, 65536, 0})
}

func TestScaleMinK4RoundTrip(t *testing.T) {
	r := &splitMix{state: 10}
	for range 2000 {
		var sc, m [8]uint8
		for i := range 8 {
			sc[i], m[i] = uint8(r.next()&63), uint8(r.next()&63)
		}
		packed := packScalesK4(sc, m)
		for i := range 8 {
			gs, gm := ScaleMinK4(i, packed[:])
			if gs != sc[i] || gm != m[i] {
				t.Fatalf("ScaleMinK4(%d) = (%d, %d), want (%d, %d)", i, gs, gm, sc[i], m[i])
			}
		}
	}
}

func TestBlockAppendSizes(t *testing.T) {
	sizes := map[Type]int{
		TypeQ4_0: len((&BlockQ4_0{}).Append(nil)),
		TypeQ4_1: len((&BlockQ4_1{}).Append(nil)),
		TypeQ5_0: len((&BlockQ5_0{}).Append(nil)),
		TypeQ5_1: len((&BlockQ5_1{}).Append(nil)),
		TypeQ8_0: len((&BlockQ8_0{}).Append(nil)),
		TypeQ8_1: len((&BlockQ8_1{}).Append(nil)),
		TypeQ2_K: len((&BlockQ2_K{}).Append(nil)),
		TypeQ3_K: len((&BlockQ3_K{}).Append(nil)),
		TypeQ4_K: len((&BlockQ4_K{}).Append(nil)),
		TypeQ5_K: len((&BlockQ5_K{}).Append(nil)),
		TypeQ6_K: len((&BlockQ6_K{}).Append(nil)),
		TypeQ8_K: len((&BlockQ8_K{}).Append(nil)),
	}
	for typ, n := range sizes {
		if n != typ.TypeSize() {
			t.Errorf("%s block appends %d bytes, want %d", typ, n, typ.TypeSize())
		}
	}
}

func TestDequantizeErrors(t *testing.T) {
	sentinel := float32(-7)
	dst := make([]float32, QK_K)
	fill := func() {
		for i := range dst {
			dst[i] = sentinel
		}
	}
	tests := []struct {
		name    string
		typ     Type
		src     []byte
		n       int
		wantMsg string
		unsupp  bool
	}{
		{"short source", TypeQ4_K, make([]byte, 143), QK_K, "143 bytes for 256 elements, want 144", false},
		{"long source", TypeQ4_K, make([]byte, 145), QK_K, "145 bytes", false},
		{"empty source", TypeQ6_K, nil, QK_K, "0 bytes", false},
		{"partial block", TypeQ8_0, make([]byte, 34), 31, "not a multiple of the block size", false},
		{"f16 odd", TypeF16, make([]byte, 3), 2, "3 bytes for 2 elements, want 4", false},
		{"iq type", TypeIQ2_XXS, make([]byte, 66), QK_K, "IQ2_XXS", true},
		{"ternary type", TypeTQ1_0, make([]byte, 54), QK_K, "TQ1_0", true},
		{"mxfp4", TypeMXFP4, make([]byte, 17), 32, "MXFP4", true},
		{"integer type", TypeI32, make([]byte, 4), 1, "I32", true},
		{"unknown type", Type(99), make([]byte, 4), 1, "type(99): unknown", false},
	}
	for _, tt := range tests {
		fill()
		err := Dequantize(tt.typ, tt.src, dst[:tt.n])
		if err == nil {
			t.Errorf("%s: Dequantize succeeded, want an error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.wantMsg)
		}
		if errors.Is(err, ErrUnsupported) != tt.unsupp {
			t.Errorf("%s: errors.Is(err, ErrUnsupported) = %v, want %v", tt.name, !tt.unsupp, tt.unsupp)
		}
		for i, v := range dst {
			if v != sentinel {
				t.Fatalf("%s: dst[%d] was written on error", tt.name, i)
			}
		}
	}
	if err := Dequantize(TypeQ4_K, nil, nil); err != nil {
		t.Errorf("Dequantize of zero elements: %v", err)
	}
}

// TestPerTypeDequantizersStopAtShortInput checks that the exported per-type
// functions decode only whole blocks that both slices hold and never panic.
func TestPerTypeDequantizersStopAtShortInput(t *testing.T) {
	for typ, f := range dequantizers {
		ts, bs := typ.TypeSize(), typ.BlockSize()
		src := make([]byte, 3*ts-1) // two whole blocks and a partial one
		dst := make([]float32, 4*bs)
		if n := f(src, dst); n != 2*bs {
			t.Errorf("%s: decoded %d elements from a short source, want %d", typ, n, 2*bs)
		}
		if n := f(make([]byte, 4*ts), dst[:bs+bs/2+1]); bs > 1 && n != bs {
			t.Errorf("%s: decoded %d elements into a short destination, want %d", typ, n, bs)
		}
		if n := f(nil, dst); n != 0 {
			t.Errorf("%s: decoded %d elements from nothing", typ, n)
		}
	}
	if !CanDequantize(TypeQ6_K) || CanDequantize(TypeIQ4_XS) {
		t.Error("CanDequantize disagrees with the supported set")
	}
}

func benchmarkDequantize(b *testing.B, typ Type) {
	const n = 64 * QK_K
	r := &splitMix{state: 1}
	x := make([]float32, n)
	for i := range x {
		x[i] = r.bellish()
	}
	src, err := Quantize(typ, x)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, n)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if err := Dequantize(typ, src, dst); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
}

func BenchmarkDequantizeQ4_K(b *testing.B) { benchmarkDequantize(b, TypeQ4_K) }
func BenchmarkDequantizeQ6_K(b *testing.B) { benchmarkDequantize(b, TypeQ6_K) }
func BenchmarkDequantizeQ8_0(b *testing.B) { benchmarkDequantize(b, TypeQ8_0) }
