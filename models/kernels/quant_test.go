package kernels

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/carryon/carryon/models/ggml"
)

// dequantRow decodes one weight row with ggml's reference dequantizers.
func dequantRow(t ggml.Type, row []byte, n int) []float64 {
	f := make([]float32, n)
	if err := ggml.Dequantize(t, row, f); err != nil {
		panic(err)
	}
	out := make([]float64, n)
	for i, v := range f {
		out[i] = float64(v)
	}
	return out
}

// activationRow decodes activation row r from its internal layout.
func activationRow(a *Activations, r int) []float64 {
	out := make([]float64, a.cols)
	switch a.kind {
	case actF32:
		for i := range out {
			out[i] = float64(a.f32[r*a.cols+i])
		}
	case actQ8_0:
		row := a.q[r*a.stride:]
		for b := 0; b < a.cols/qk8_0; b++ {
			p := row[b/2*q8PairBytes:]
			h := 32 * (b % 2)
			d := float64(le32f(p[128+h:]))
			for j := range 32 {
				out[32*b+j] = float64(float32(int8(p[h+j])) * float32(d))
			}
		}
	default:
		row := a.q[r*a.stride:]
		for b := 0; b < a.cols/qkK; b++ {
			blk := row[b*q8KBytes:]
			d := float64(le32f(blk[q8KD:]))
			for j := range qkK {
				out[qkK*b+j] = float64(float32(int8(blk[j])) * float32(d))
			}
		}
	}
	return out
}

// randBlocks returns nb random blocks of type t: random quant bytes with
// finite, moderate fp16 scales, which covers every quant value (including
// -128 for Q8_0) rather than only those a quantizer produces.
func randBlocks(r *rand.Rand, t ggml.Type, nb int) []byte {
	size := t.TypeSize()
	b := make([]byte, nb*size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	f16 := func(p []byte) { put16(p, f32ToF16(float32(r.Float64()*0.02+0.001))) }
	for k := 0; k < nb; k++ {
		blk := b[k*size : (k+1)*size]
		switch t {
		case ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0:
			f16(blk)
		case ggml.TypeQ4_K, ggml.TypeQ5_K:
			f16(blk)
			f16(blk[2:])
		case ggml.TypeQ6_K:
			f16(blk[208:])
		}
	}
	return b
}

func TestQuantizeMatchesGGML(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{256, 512, 1024, 4864} {
		for trial := range 4 {
			x := randF32(r, n, math.Pow(10, float64(trial-2)))
			if trial == 3 {
				// Exact ties and zeros exercise the rounding rules.
				for i := range x {
					x[i] = float32(r.IntN(9)-4) * 0.5
				}
				clear(x[:256])
			}
			for _, tc := range []struct {
				t ggml.Type
				f func([]byte, []float32) error
			}{{ggml.TypeQ8_0, QuantizeQ8_0}, {ggml.TypeQ8_K, QuantizeQ8_K}} {
				want, err := ggml.Quantize(tc.t, x)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(want))
				if err := tc.f(got, x); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					i := 0
					for got[i] == want[i] {
						i++
					}
					t.Fatalf("%s n=%d trial %d: byte %d = %#x, ggml has %#x", tc.t, n, trial, i, got[i], want[i])
				}
			}
		}
	}
	if err := QuantizeQ8_0(make([]byte, 33), make([]float32, 32)); err == nil {
		t.Error("QuantizeQ8_0 accepted a short destination")
	}
	if err := QuantizeQ8_K(make([]byte, 292), make([]float32, 100)); err == nil {
		t.Error("QuantizeQ8_K accepted a partial block")
	}
}

// TestDotReference checks the portable quantized dot products against
// float64 dot products of ggml-dequantized operands.
func TestDotReference(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	type dotFunc func(w, xq []byte, n int) (float32, error)
	cases := []struct {
		w, x ggml.Type
		f    dotFunc
	}{
		{ggml.TypeQ8_0, ggml.TypeQ8_0, DotQ8_0},
		{ggml.TypeQ4_0, ggml.TypeQ8_0, DotQ4_0Q8_0},
		{ggml.TypeQ5_0, ggml.TypeQ8_0, DotQ5_0Q8_0},
		{ggml.TypeQ4_K, ggml.TypeQ8_K, DotQ4_KQ8_K},
		{ggml.TypeQ5_K, ggml.TypeQ8_K, DotQ5_KQ8_K},
		{ggml.TypeQ6_K, ggml.TypeQ8_K, DotQ6_KQ8_K},
	}
	for _, c := range cases {
		for _, n := range []int{256, 768, 2560} {
			w := randBlocks(r, c.w, n/c.w.BlockSize())
			x := randF32(r, n, 1)
			xq, err := ggml.Quantize(c.x, x)
			if err != nil {
				t.Fatal(err)
			}
			wf, xf := dequantRow(c.w, w, n), dequantRow(c.x, xq, n)
			var want, mag float64
			for i := range wf {
				want += wf[i] * xf[i]
				mag += math.Abs(wf[i] * xf[i])
			}
			got, err := c.f(w, xq, n)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, float32(want), mag, 1e-5) {
				t.Errorf("%s·%s n=%d: %g, want %g (mag %g)", c.w, c.x, n, got, want, mag)
			}
			if _, err := c.f(w, xq, n+1); err == nil {
				t.Errorf("%s: accepted a partial block", c.w)
			}
			if _, err := c.f(w[:len(w)-1], xq, n); err == nil {
				t.Errorf("%s: accepted short weights", c.w)
			}
		}
	}
}

var quantTypes = []ggml.Type{ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K}

// TestMatMulQuantized compares every kernel set with the portable code and
// with float64 products of ggml-dequantized operands, for many shapes and
// batch sizes 1..9.
func TestMatMulQuantized(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, tp := range quantTypes {
		bs := tp.BlockSize()
		for _, nb := range []int{1, 2, 3, 4, 5, 7, 8, 9, 30} {
			if bs == qkK && nb > 5 {
				continue
			}
			cols := nb * bs
			for m := 1; m <= 9; m++ {
				rows := 1 + r.IntN(11)
				data := randBlocks(r, tp, rows*nb)
				x := randF32(r, m*cols, 1)
				checkMatMul(t, mulCase{tp, rows, cols, m}, data, x)
				checkAgainstDequant(t, mulCase{tp, rows, cols, m}, data, x)
			}
		}
	}
}

func checkAgainstDequant(t *testing.T, c mulCase, data []byte, x []float32) {
	t.Helper()
	w, _ := NewMatrix(c.t, c.rows, c.cols, data)
	var a Activations
	if err := a.Prepare(c.t, x, c.m, c.cols); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, c.m*c.rows)
	if err := MatMul(got, w, &a, 0, c.rows); err != nil {
		t.Fatal(err)
	}
	for r := range c.m {
		xf := activationRow(&a, r)
		for i := range c.rows {
			wf := dequantRow(c.t, w.data[i*w.rowBytes:(i+1)*w.rowBytes], c.cols)
			var want, mag float64
			for j := range wf {
				want += wf[j] * xf[j]
				mag += math.Abs(wf[j] * xf[j])
			}
			if !near(got[r*c.rows+i], float32(want), mag, 1e-5) {
				t.Errorf("%v: out[%d,%d] = %g, float64 reference %g", c, r, i, got[r*c.rows+i], want)
				return
			}
		}
	}
}

// TestActivationLayout checks that the internal layouts hold exactly
// ggml's quantization of each row.
func TestActivationLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, tp := range []ggml.Type{ggml.TypeQ8_0, ggml.TypeQ6_K} {
		cols := 3 * tp.BlockSize()
		if tp == ggml.TypeQ8_0 {
			cols = 5 * 32
		}
		x := randF32(r, 2*cols, 1)
		var a Activations
		if err := a.Prepare(tp, x, 2, cols); err != nil {
			t.Fatal(err)
		}
		qt := ggml.TypeQ8_0
		if tp == ggml.TypeQ6_K {
			qt = ggml.TypeQ8_K
		}
		for row := range 2 {
			ref, _ := ggml.Quantize(qt, x[row*cols:(row+1)*cols])
			want := dequantRow(qt, ref, cols)
			got := activationRow(&a, row)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s row %d [%d]: %g, ggml %g", tp, row, i, got[i], want[i])
				}
			}
		}
	}
}

// TestIntegerExactness uses unit scales so that every product is an exact
// integer: any vector kernel must then reproduce the integer sums exactly.
func TestIntegerExactness(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	one := f32ToF16(1)
	for _, tp := range quantTypes {
		bs := tp.BlockSize()
		nb := 3
		cols := nb * bs
		rows := 5
		data := randBlocks(r, tp, rows*nb)
		size := tp.TypeSize()
		for k := 0; k < rows*nb; k++ {
			blk := data[k*size:]
			switch tp {
			case ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0:
				put16(blk, one)
			case ggml.TypeQ4_K, ggml.TypeQ5_K:
				put16(blk, one)
				put16(blk[2:], one)
			case ggml.TypeQ6_K:
				put16(blk[208:], one)
			}
		}
		for m := 1; m <= 5; m++ {
			// Integer activations with a ±127 maximum in every block give
			// activation scales of exactly ±1.
			x := make([]float32, m*cols)
			for i := range x {
				x[i] = float32(r.IntN(255) - 127)
			}
			for b := 0; b < len(x); b += bs {
				x[b] = 127
			}
			w, _ := NewMatrix(tp, rows, cols, data)
			packed, _ := PackMatrix(tp, rows, cols, data)
			var a Activations
			if err := a.Prepare(tp, x, m, cols); err != nil {
				t.Fatal(err)
			}
			want := make([]float32, m*rows)
			generic.mul(want, w, &a, 0, rows)
			for i, v := range want {
				if v != float32(math.Round(float64(v))) || math.Abs(float64(v)) > 1<<24 {
					t.Fatalf("%s: reference value %g at %d is not an exact integer", tp, v, i)
				}
			}
			for _, k := range fastSets() {
				for _, wk := range []*Matrix{w, packed} {
					got := make([]float32, m*rows)
					k.mul(got, wk, &a, 0, rows)
					for i := range got {
						if got[i] != want[i] {
							t.Errorf("%s %s m=%d packed=%v: out[%d] = %g, exact integer %g", k.name, tp, m, wk.Packed(), i, got[i], want[i])
							break
						}
					}
				}
			}
		}
	}
}

func TestMatrixErrors(t *testing.T) {
	if _, err := NewMatrix(ggml.TypeQ8_0, 2, 33, make([]byte, 1000)); err == nil {
		t.Error("NewMatrix accepted a row that is not whole blocks")
	}
	if _, err := NewMatrix(ggml.TypeQ8_0, 2, 32, make([]byte, 67)); err == nil {
		t.Error("NewMatrix accepted short data")
	}
	if _, err := NewMatrix(ggml.TypeIQ2_XS, 2, 256, make([]byte, 1000)); err == nil {
		t.Error("NewMatrix accepted an unsupported type")
	}
	w, err := NewMatrix(ggml.TypeQ8_0, 2, 64, make([]byte, 2*68))
	if err != nil {
		t.Fatal(err)
	}
	var a Activations
	if err := a.Prepare(ggml.TypeQ4_0, make([]float32, 64), 1, 64); err != nil {
		t.Fatal(err)
	}
	if err := MatMul(make([]float32, 2), w, &a, 0, 2); err == nil {
		t.Error("MatMul accepted activations prepared for another type")
	}
	if err := a.Prepare(ggml.TypeQ8_0, make([]float32, 64), 1, 64); err != nil {
		t.Fatal(err)
	}
	if err := MatMul(make([]float32, 1), w, &a, 0, 2); err == nil {
		t.Error("MatMul accepted a short output")
	}
	if err := MatMul(make([]float32, 2), w, &a, 1, 3); err == nil {
		t.Error("MatMul accepted rows out of range")
	}
	if err := a.Prepare(ggml.TypeQ8_0, make([]float32, 60), 1, 60); err == nil {
		t.Error("Prepare accepted a row that is not whole blocks")
	}
}

// TestPrepareKernels checks that every kernel set lays out exactly the
// same activation bytes as the portable code, including zero blocks,
// ties and extreme values.
func TestPrepareKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for trial := range 20 {
		n := 256 * (2 + r.IntN(5))
		x := randF32(r, n, math.Pow(10, float64(r.IntN(7)-3)))
		switch trial % 4 {
		case 1:
			for i := range x {
				x[i] = float32(r.IntN(17)-8) * 0.25
			}
		case 2:
			clear(x[:256])
			x[300] = -x[301] // equal magnitudes of both signs
		case 3:
			for i := range x {
				x[i] = float32(r.IntN(255) - 127)
			}
		}
		for _, nb := range []int{n / 32, n/32 - 1} {
			xx := x[:nb*32]
			want := make([]byte, (nb+1)/2*q8PairBytes)
			prepareQ8_0Row(want, xx, 16)
			for _, k := range fastSets() {
				got := make([]byte, len(want))
				for i := range got {
					got[i] = 0xa5
				}
				k.prepQ8_0(got, xx, 16)
				if !bytes.Equal(got, want) {
					i := 0
					for got[i] == want[i] {
						i++
					}
					t.Fatalf("%s prepQ8_0 trial %d nb=%d: byte %d = %#x, want %#x", k.name, trial, nb, i, got[i], want[i])
				}
			}
		}
		want := make([]byte, n/256*q8KBytes)
		prepareQ8_KRow(want, x)
		for _, k := range fastSets() {
			got := make([]byte, len(want))
			for i := range got {
				got[i] = 0xa5
			}
			k.prepQ8_K(got, x)
			if !bytes.Equal(got, want) {
				i := 0
				for got[i] == want[i] {
					i++
				}
				t.Fatalf("%s prepQ8_K trial %d: byte %d = %#x, want %#x", k.name, trial, i, got[i], want[i])
			}
		}
	}
}
