package ggml

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func bellishRow(seed uint64, n int) []float32 {
	r := &splitMix{state: seed}
	x := make([]float32, n)
	for i := range x {
		x[i] = r.bellish()
	}
	return x
}

// TestRoundTripError quantizes bell-shaped data and checks the relative RMS
// error of the dequantized result against each type's expected precision
// (about 1.25 times what the reference quantizers achieve on this data).
func TestRoundTripError(t *testing.T) {
	x := bellishRow(11, 64*QK_K)
	bounds := map[Type]float64{
		TypeF32:  0,
		TypeF16:  0.00025,
		TypeBF16: 0.002,
		TypeQ8_0: 0.0065,
		TypeQ8_K: 0.008,
		TypeQ6_K: 0.021,
		TypeQ5_K: 0.044,
		TypeQ5_1: 0.046,
		TypeQ5_0: 0.051,
		TypeQ4_K: 0.086,
		TypeQ4_1: 0.095,
		TypeQ4_0: 0.1,
		TypeQ3_K: 0.18,
		TypeQ2_K: 0.36,
	}
	for typ, bound := range bounds {
		q, err := Quantize(typ, x)
		if err != nil {
			t.Fatalf("Quantize(%s): %v", typ, err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(typ, q, y); err != nil {
			t.Fatalf("Dequantize(%s): %v", typ, err)
		}
		var se, sx float64
		for i := range x {
			d := float64(y[i]) - float64(x[i])
			se += d * d
			sx += float64(x[i]) * float64(x[i])
		}
		if rel := math.Sqrt(se / sx); rel > bound {
			t.Errorf("%s: relative RMS error %.5f, want <= %.5f", typ, rel, bound)
		}
	}
}

// TestRoundTripElementBounds checks per-element error bounds that follow
// from the formats: round to nearest on the scale grid, plus the error of
// storing the scale as fp16 where the format does.
func TestRoundTripElementBounds(t *testing.T) {
	x := bellishRow(12, 32*QK_K)
	for i := range x {
		x[i] *= float32(math.Pow(10, float64(i/QK_K%5-2))) // five magnitudes
	}
	check := func(typ Type, block int, bound func(amax float32) float64) {
		q, err := Quantize(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(typ, q, y); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < len(x); b += block {
			var amax float32
			for _, v := range x[b : b+block] {
				amax = max(amax, abs32(v))
			}
			lim := bound(amax)
			for i := b; i < b+block; i++ {
				if e := math.Abs(float64(y[i] - x[i])); e > lim {
					t.Fatalf("%s element %d: |%g - %g| = %g exceeds %g", typ, i, y[i], x[i], e, lim)
				}
			}
		}
	}
	const fp16Rel = 1.0 / 2048 // relative rounding error of an fp16 scale
	// Q8_0: |q| <= 127 steps of d = amax/127, half a step of rounding.
	check(TypeQ8_0, QK8_0, func(a float32) float64 { d := float64(a) / 127; return d * (0.5 + 127*fp16Rel) * 1.0001 })
	// Q8_K: the scale is a float32.
	check(TypeQ8_K, QK_K, func(a float32) float64 { return float64(a) / 127 * 0.5001 })
	// Q4_0 and Q5_0: the extreme value sets d; the other side may clip by one step.
	check(TypeQ4_0, QK4_0, func(a float32) float64 { d := float64(a) / 8; return d * (1 + 8*fp16Rel) * 1.0001 })
	check(TypeQ5_0, QK5_0, func(a float32) float64 { d := float64(a) / 16; return d * (1 + 16*fp16Rel) * 1.0001 })
	// F16 and BF16: half an ulp, relative (absolute 2^-25 among subnormal halves).
	check(TypeF16, 1, func(a float32) float64 { return max(float64(a)*0x1p-11, 0x1p-25) })
	check(TypeBF16, 1, func(a float32) float64 { return float64(a) * 0x1p-8 })
}

func TestQuantizeQ8_0ByHand(t *testing.T) {
	x := make([]float32, 32)
	for j := range x {
		x[j] = float32(j - 16)
	}
	copy(x, []float32{127, 2.5, -2.5, 0.5, -0.5, 1.49, -126.5})
	// amax = 127, so d = 1 and the quants are x rounded half away from zero.
	want := BlockQ8_0{D: 0x3c00}
	for j := range x {
		want.Qs[j] = int8(math.Round(float64(x[j])))
	}
	if want.Qs[1] != 3 || want.Qs[2] != -3 || want.Qs[3] != 1 || want.Qs[6] != -127 {
		t.Fatalf("hand-rounded quants are off: %v", want.Qs[:7])
	}
	got, err := Quantize(TypeQ8_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if w := want.Append(nil); !bytes.Equal(got, w) {
		t.Fatalf("Q8_0 block\n got % x\nwant % x", got, w)
	}
}

func TestQuantizeQ4_0ByHand(t *testing.T) {
	// The first element, -8, has the largest magnitude: d = -8/-8 = 1, and
	// q = min(15, trunc(x + 8.5)), so 0.49 -> 8, 0.5 -> 9, -0.5 -> 8,
	// -0.51 -> 7, 7.9 -> 15 (clipped).
	x := make([]float32, 32)
	copy(x, []float32{-8, 7, 0.49, 0.5, -0.5, -0.51, 7.9, 3})
	wantQ := []uint8{0, 15, 8, 9, 8, 7, 15, 11}
	got, err := Quantize(TypeQ4_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := binary.LittleEndian.Uint16(got); d != 0x3c00 {
		t.Fatalf("d = %#04x, want 0x3c00", d)
	}
	for j, q := range wantQ {
		if g := got[2+j] & 0xf; g != q {
			t.Errorf("element %d: q = %d, want %d", j, g, q)
		}
	}
	for j := 8; j < 16; j++ {
		if g := got[2+j] & 0xf; g != 8 {
			t.Errorf("element %d (zero): q = %d, want 8", j, g)
		}
	}
}

func TestQuantizeQ8_KByHand(t *testing.T) {
	// The element of largest magnitude is -127, so iscale = -127/-127 = 1
	// and the quants are x rounded to nearest with ties to even.
	x := make([]float32, QK_K)
	copy(x, []float32{-127, 127, 2.5, 3.5, -0.5, -1.5, 0.49})
	wantQ := []int8{-127, 127, 2, 4, 0, -2, 0}
	got, err := Quantize(TypeQ8_K, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Float32frombits(binary.LittleEndian.Uint32(got)); d != 1 {
		t.Fatalf("d = %g, want 1", d)
	}
	for j, q := range wantQ {
		if g := int8(got[4+j]); g != q {
			t.Errorf("element %d: q = %d, want %d", j, g, q)
		}
	}
	// bsums[0] = -127 + 127 + 2 + 4 + 0 - 2 + 0.
	if s := int16(binary.LittleEndian.Uint16(got[260:])); s != 4 {
		t.Errorf("bsums[0] = %d, want 4", s)
	}
}

// TestQuantizeQ4_KByHand uses a block on a grid of 0.5 from 0 to 7.5, which
// Q4_K represents with the same scale and a zero min in every sub-block:
// all sub-block scales quantize to 63, the mins to 0, and each quant is 2x.
func TestQuantizeQ4_KByHand(t *testing.T) {
	x := make([]float32, QK_K)
	for e := range x {
		x[e] = float32(e%16) * 0.5
	}
	got, err := Quantize(TypeQ4_K, x)
	if err != nil {
		t.Fatal(err)
	}
	want := BlockQ4_K{D: F32ToF16(float32(0.5) / 63), DMin: 0}
	var sc, m [8]uint8
	for i := range sc {
		sc[i] = 63
	}
	want.Scales = packScalesK4(sc, m)
	for c := range 4 {
		for l := range 32 {
			q := uint8(2 * x[64*c+l])
			want.Qs[32*c+l] = q | uint8(2*x[64*c+32+l])<<4
		}
	}
	if w := want.Append(nil); !bytes.Equal(got, w) {
		t.Fatalf("Q4_K block\n got % x\nwant % x", got, w)
	}
}

// TestQuantizeQ6_KByHand uses a block on a grid of 0.25 from -2 to 1.75: each
// sub-block's best scale is 1/16, the super-block scale is -1/2048 with
// sub-block scales of -128, and the block dequantizes exactly.
func TestQuantizeQ6_KByHand(t *testing.T) {
	x := make([]float32, QK_K)
	for e := range x {
		x[e] = float32(e%16-8) * 0.25
	}
	got, err := Quantize(TypeQ6_K, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := binary.LittleEndian.Uint16(got[208:]); d != 0x9000 {
		t.Errorf("d = %#04x, want 0x9000 (-2^-11)", d)
	}
	for i, s := range got[192:208] {
		if int8(s) != -128 {
			t.Errorf("scale %d = %d, want -128", i, int8(s))
		}
	}
	y := make([]float32, QK_K)
	if err := Dequantize(TypeQ6_K, got, y); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if y[i] != x[i] {
			t.Fatalf("element %d dequantized to %g, want %g", i, y[i], x[i])
		}
	}
}

func TestQuantizeZeros(t *testing.T) {
	x := make([]float32, 2*QK_K)
	for typ := range quantizers {
		q, err := Quantize(typ, x)
		if err != nil {
			t.Fatalf("Quantize(%s): %v", typ, err)
		}
		want := make([]byte, len(q))
		switch typ {
		case TypeQ4_0:
			// d = 0/-8 = -0 (0x8000) and every quant is the zero level 8.
			want = bytes.Repeat((&BlockQ4_0{D: 0x8000, Qs: [16]uint8{0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88}}).Append(nil), len(x)/QK4_0)
		case TypeQ5_0:
			// d = -0 and every quant is the zero level 16: low bits 0, fifth bit 1.
			want = bytes.Repeat((&BlockQ5_0{D: 0x8000, Qh: 0xffffffff}).Append(nil), len(x)/QK5_0)
		}
		if !bytes.Equal(q, want) {
			t.Errorf("%s: zeros quantize to % x, want % x", typ, q[:min(len(q), 40)], want[:min(len(q), 40)])
		}
		if !CanDequantize(typ) {
			continue
		}
		y := make([]float32, len(x))
		if err := Dequantize(typ, q, y); err != nil {
			t.Fatal(err)
		}
		for i, v := range y {
			if v != 0 {
				t.Fatalf("%s: element %d of a zero block is %g", typ, i, v)
			}
		}
	}
}

func TestQuantizeIntoOverwritesDestination(t *testing.T) {
	x := goldenInput()
	for typ := range quantizers {
		want, err := Quantize(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		dst := bytes.Repeat([]byte{0xa5}, len(want))
		if err := QuantizeInto(typ, x, dst); err != nil {
			t.Fatalf("QuantizeInto(%s): %v", typ, err)
		}
		if !bytes.Equal(dst, want) {
			t.Errorf("%s: QuantizeInto over stale bytes differs from Quantize", typ)
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	x := make([]float32, QK_K)
	tests := []struct {
		name    string
		err     error
		wantMsg string
		unsupp  bool
	}{
		{"partial block", func() error { _, err := Quantize(TypeQ4_K, x[:100]); return err }(), "not a multiple of the block size", false},
		{"partial Q8_0 block", func() error { _, err := Quantize(TypeQ8_0, x[:33]); return err }(), "Q8_0", false},
		{"short destination", QuantizeInto(TypeQ8_0, x, make([]byte, 271)), "271 bytes for 256 elements, want 272", false},
		{"long destination", QuantizeInto(TypeQ6_K, x, make([]byte, 211)), "211 bytes", false},
		{"iq type", func() error { _, err := Quantize(TypeIQ4_NL, x); return err }(), "IQ4_NL", true},
		{"mxfp4", QuantizeInto(TypeMXFP4, x[:32], make([]byte, 17)), "MXFP4", true},
		{"unknown type", func() error { _, err := Quantize(Type(77), x); return err }(), "type(77)", false},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if !strings.Contains(tt.err.Error(), tt.wantMsg) {
			t.Errorf("%s: error %q does not mention %q", tt.name, tt.err, tt.wantMsg)
		}
		if errors.Is(tt.err, ErrUnsupported) != tt.unsupp {
			t.Errorf("%s: errors.Is(err, ErrUnsupported) = %v", tt.name, !tt.unsupp)
		}
	}
	if q, err := Quantize(TypeQ4_K, nil); err != nil || len(q) != 0 {
		t.Errorf("Quantize of nothing = %v, %v", q, err)
	}
	if !CanQuantize(TypeQ8_K) || CanQuantize(TypeIQ2_S) {
		t.Error("CanQuantize disagrees with the supported set")
	}
}

func TestPerTypeQuantizersStopAtShortInput(t *testing.T) {
	for typ, f := range quantizers {
		ts, bs := typ.TypeSize(), typ.BlockSize()
		src := make([]float32, 3*bs-1)
		if bs == 1 {
			src = src[:2]
		}
		if n := f(src, make([]byte, 4*ts)); n != 2*ts {
			t.Errorf("%s: wrote %d bytes from a short source, want %d", typ, n, 2*ts)
		}
		if n := f(make([]float32, 4*bs), make([]byte, ts+ts/2)); ts > 1 && n != ts {
			t.Errorf("%s: wrote %d bytes into a short destination, want %d", typ, n, ts)
		}
	}
}

// fusedMultiplyAdd matches the fused multiply-add instructions of the Go
// assemblers (VFMADD231SS, FMADDS, FMSUBD, FNMSUBS, ...).
var fusedMultiplyAdd = regexp.MustCompile(`\sV?FN?M(ADD|SUB)[A-Z0-9]*\s`)

// TestNoFusedMultiplyAdd compiles this package for arm64, where Go fuses
// x*y+z whenever it may (as on amd64 with GOAMD64=v3, riscv64, ppc64 and
// s390x), and checks that no product was fused into an addition: a fused
// operation rounds once instead of twice and breaks bit-exact agreement with
// ggml's reference results. The first run compiles the standard library for
// arm64 (tens of seconds); later runs use the build cache.
func TestNoFusedMultiplyAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package for other targets")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	for _, target := range [][]string{{"GOOS=linux", "GOARCH=arm64"}} {
		cmd := exec.Command(goTool, "build", "-gcflags=-S", "-o", os.DevNull, ".")
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), target...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: go build: %v\n%s", target, err, out)
		}
		if !bytes.Contains(out, []byte("DequantizeQ4_K")) {
			t.Fatalf("%v: the compiler printed no assembly for the package", target)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if fusedMultiplyAdd.MatchString(line) {
				t.Errorf("%v: fused multiply-add: %s", target, strings.TrimSpace(line))
			}
		}
	}
}

func benchmarkQuantize(b *testing.B, typ Type, n int) {
	x := bellishRow(1, n)
	dst := make([]byte, mustRowSize(b, typ, n))
	b.SetBytes(int64(4 * n))
	for b.Loop() {
		if err := QuantizeInto(typ, x, dst); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
}

func mustRowSize(b *testing.B, typ Type, n int) int {
	s, err := typ.RowSize(n)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkQuantizeQ8_0(b *testing.B) { benchmarkQuantize(b, TypeQ8_0, 4096) }
func BenchmarkQuantizeQ8_K(b *testing.B) { benchmarkQuantize(b, TypeQ8_K, 4096) }
func BenchmarkQuantizeQ4_K(b *testing.B) { benchmarkQuantize(b, TypeQ4_K, 4096) }
func BenchmarkQuantizeQ6_K(b *testing.B) { benchmarkQuantize(b, TypeQ6_K, 4096) }

// TestAbsMaxPicksFirstLargest checks the tie rule the reference quantizers
// rely on: among elements of equal magnitude the first one sets the sign of
// the scale.
func TestAbsMaxPicksFirstLargest(t *testing.T) {
	tests := []struct {
		x          []float32
		maxv, amax float32
	}{
		{[]float32{1, -3, 3, 2}, -3, 3},
		{[]float32{1, 3, -3, 2, 0.5}, 3, 3},
		{[]float32{0, float32(math.Copysign(0, -1))}, 0, 0},
		{[]float32{0.25, -0.5, 0.125, 0.5, -0.75, 0.1, 0.2}, -0.75, 0.75},
		{[]float32{-7}, -7, 7},
		{nil, 0, 0},
	}
	for _, tt := range tests {
		maxv, amax := absMax(tt.x)
		if maxv != tt.maxv || amax != tt.amax || math.Signbit(float64(maxv)) != math.Signbit(float64(tt.maxv)) {
			t.Errorf("absMax(%v) = %g, %g; want %g, %g", tt.x, maxv, amax, tt.maxv, tt.amax)
		}
	}
}
