package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/carryon/carryon/models/ggml"
)

// fastSets returns the vector implementations available on this machine.
func fastSets() []*kernelSet {
	var s []*kernelSet
	for _, k := range kernelSets() {
		if k != &generic {
			s = append(s, k)
		}
	}
	return s
}

func randF32(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

func randF16(r *rand.Rand, n int, scale float64) []byte {
	b := make([]byte, 2*n)
	for i, v := range randF32(r, n, scale) {
		put16(b[2*i:], f32ToF16(v))
	}
	return b
}

// near reports whether got is within rel·mag (+ a tiny absolute slack) of
// want, where mag bounds the size of the terms that were summed.
func near(got, want float32, mag float64, rel float64) bool {
	return math.Abs(float64(got)-float64(want)) <= rel*mag+1e-30
}

var testSizes = []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 960, 1001}

func TestF16Conversion(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := f16ToF32(uint16(h))
		if f != f { // NaN
			if g := f32ToF16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if g := f32ToF16(f); g != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, g)
		}
	}
	// Rounding: compare with the nearest representable half found by
	// search over neighbours, ties to even.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		f := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(40)-28)))
		h := f32ToF16(f)
		best, bestErr := uint16(0), math.Inf(1)
		for _, c := range []uint16{h - 1, h, h + 1} {
			v := float64(f16ToF32(c))
			if c&0x7c00 == 0x7c00 || math.Signbit(v) != math.Signbit(float64(f)) && v != 0 {
				continue
			}
			e := math.Abs(v - float64(f))
			if e < bestErr || e == bestErr && c&1 == 0 {
				best, bestErr = c, e
			}
		}
		if math.Abs(float64(f)) < 65504 && best != h {
			t.Fatalf("f32ToF16(%g) = %#04x (%g), nearest is %#04x (%g)", f, h, f16ToF32(h), best, f16ToF32(best))
		}
	}
}

func TestDotF32AndF16(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range append([]int{0}, testSizes...) {
		a, b := randF32(r, n, 1), randF32(r, n, 1)
		w := randF16(r, n, 1)
		wf := make([]float32, n)
		for i := range wf {
			wf[i] = f16ToF32(le16(w[2*i:]))
		}
		var ref, ref16, mag, mag16 float64
		for i := range n {
			ref += float64(a[i]) * float64(b[i])
			mag += math.Abs(float64(a[i]) * float64(b[i]))
			ref16 += float64(wf[i]) * float64(b[i])
			mag16 += math.Abs(float64(wf[i]) * float64(b[i]))
		}
		for _, k := range kernelSets() {
			if got := k.dotF32(a, b); !near(got, float32(ref), mag, 1e-5) {
				t.Errorf("%s dotF32 n=%d: %g, want %g", k.name, n, got, ref)
			}
			if got := k.dotF16(w, b); !near(got, float32(ref16), mag16, 1e-5) {
				t.Errorf("%s dotF16 n=%d: %g, want %g", k.name, n, got, ref16)
			}
		}
	}
	if got := DotF32([]float32{1, 2, 3}, []float32{4, 5}); got != 14 {
		t.Errorf("DotF32 of unequal lengths = %g, want 14", got)
	}
}

func TestRowKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, d := range []int{1, 5, 8, 13, 16, 31, 32, 64, 80, 128, 129} {
		for _, n := range []int{1, 2, 3, 17} {
			stride := d + r.IntN(3)
			rows := randF32(r, (n-1)*stride+d, 1)
			rows16 := randF16(r, (n-1)*stride+d, 1)
			q := randF32(r, d, 1)
			p := randF32(r, n, 1)
			want := make([]float32, n)
			want16 := make([]float32, n)
			dotRowsF32Generic(want, q, rows, stride)
			dotRowsF16Generic(want16, q, rows16, stride)
			wantA := randF32(r, d, 1)
			wantA16 := append([]float32(nil), wantA...)
			start := append([]float32(nil), wantA...)
			axpyRowsF32Generic(wantA, p, rows, stride)
			axpyRowsF16Generic(wantA16, p, rows16, stride)
			for _, k := range fastSets() {
				got := make([]float32, n)
				k.dotRowsF32(got, q, rows, stride)
				for j := range got {
					if !near(got[j], want[j], float64(d)*4, 1e-5) {
						t.Errorf("%s dotRowsF32 d=%d n=%d [%d]: %g, want %g", k.name, d, n, j, got[j], want[j])
					}
				}
				k.dotRowsF16(got, q, rows16, stride)
				for j := range got {
					if !near(got[j], want16[j], float64(d)*4, 1e-5) {
						t.Errorf("%s dotRowsF16 d=%d n=%d [%d]: %g, want %g", k.name, d, n, j, got[j], want16[j])
					}
				}
				o := append([]float32(nil), start...)
				k.axpyRowsF32(o, p, rows, stride)
				for j := range o {
					if !near(o[j], wantA[j], float64(n)*4, 1e-5) {
						t.Errorf("%s axpyRowsF32 d=%d n=%d [%d]: %g, want %g", k.name, d, n, j, o[j], wantA[j])
					}
				}
				o = append([]float32(nil), start...)
				k.axpyRowsF16(o, p, rows16, stride)
				for j := range o {
					if !near(o[j], wantA16[j], float64(n)*4, 1e-5) {
						t.Errorf("%s axpyRowsF16 d=%d n=%d [%d]: %g, want %g", k.name, d, n, j, o[j], wantA16[j])
					}
				}
			}
		}
	}
}

func TestVectorHelpers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range testSizes {
		x, y, w := randF32(r, n, 3), randF32(r, n, 1), randF32(r, n, 1)
		for _, k := range fastSets() {
			want, got := append([]float32(nil), y...), append([]float32(nil), y...)
			axpyGeneric(want, 0.7, x)
			k.axpy(got, 0.7, x)
			for i := range want {
				if !near(got[i], want[i], math.Abs(float64(y[i]))+math.Abs(0.7*float64(x[i])), 1e-6) {
					t.Errorf("%s axpy n=%d [%d]: %g, want %g", k.name, n, i, got[i], want[i])
					break
				}
			}

			want, got = append([]float32(nil), x...), append([]float32(nil), x...)
			scaleGeneric(want, -1.3)
			k.scale(got, -1.3)
			checkClose(t, k.name+" scale", got, want, 0)

			want, got = make([]float32, n), make([]float32, n)
			mulScaledGeneric(want, x, w, 0.25)
			k.mulScaled(got, x, w, 0.25)
			checkClose(t, k.name+" mulScaled", got, want, 1e-6)

			if g, wnt := k.maxF32(x), maxF32Generic(x); g != wnt {
				t.Errorf("%s max n=%d: %g, want %g", k.name, n, g, wnt)
			}

			want, got = make([]float32, n), make([]float32, n)
			swigluGeneric(want, x, y)
			k.swiglu(got, x, y)
			checkClose(t, k.name+" swiglu", got, want, 2e-6)

			want, got = append([]float32(nil), x...), append([]float32(nil), x...)
			m := maxF32Generic(x)
			ws := expSubGeneric(want, m)
			gs := k.expSub(got, m)
			checkClose(t, k.name+" expSub", got, want, 2e-6)
			if !near(gs, ws, float64(ws), 2e-6) {
				t.Errorf("%s expSub sum n=%d: %g, want %g", k.name, n, gs, ws)
			}
		}
	}
	// Extremes of the exponential.
	x := []float32{-1000, -100, -88, -87, -20, 0, 20, 80, 87, 88}
	for _, k := range fastSets() {
		got := append([]float32(nil), x...)
		k.expSub(got, 0)
		for i, v := range x {
			want := math.Exp(float64(v))
			if math.Abs(float64(got[i])-want) > 2e-6*want+1e-37 {
				t.Errorf("%s exp(%g) = %g, want %g", k.name, v, got[i], want)
			}
		}
		g := make([]float32, len(x))
		k.swiglu(g, x, make([]float32, len(x)))
		for i := range g {
			if g[i] != 0 {
				t.Errorf("%s swiglu(%g)·0 = %g", k.name, x[i], g[i])
			}
		}
	}
}

// checkClose compares element-wise with relative tolerance rel (0: exact).
func checkClose(t *testing.T, what string, got, want []float32, rel float64) {
	t.Helper()
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > rel*math.Abs(float64(want[i]))+1e-37 && !(rel == 0 && got[i] == want[i]) {
			t.Errorf("%s n=%d [%d]: %g, want %g", what, len(want), i, got[i], want[i])
			return
		}
	}
}

func TestPublicHelpers(t *testing.T) {
	x := []float32{1, 2, 3, 4}
	w := []float32{1, 1, 2, 2}
	dst := make([]float32, 4)
	RMSNorm(dst, x, w, 0)
	rms := math.Sqrt((1 + 4 + 9 + 16) / 4.0)
	for i := range dst {
		want := float64(x[i]) / rms * float64(w[i])
		if math.Abs(float64(dst[i])-want) > 1e-6 {
			t.Errorf("RMSNorm[%d] = %g, want %g", i, dst[i], want)
		}
	}
	s := []float32{1, 2, 3, float32(math.Inf(-1))}
	Softmax(s)
	e := []float64{math.Exp(-2), math.Exp(-1), 1, 0}
	sum := e[0] + e[1] + e[2]
	for i := range s {
		if math.Abs(float64(s[i])-e[i]/sum) > 1e-6 {
			t.Errorf("Softmax[%d] = %g, want %g", i, s[i], e[i]/sum)
		}
	}
	g := []float32{-2, 0, 1.5}
	u := []float32{3, 4, 5}
	SwiGLU(g, g, u)
	for i, v := range []float64{-2, 0, 1.5} {
		want := v / (1 + math.Exp(-v)) * float64(u[i])
		if math.Abs(float64(g[i])-want) > 1e-6 {
			t.Errorf("SwiGLU[%d] = %g, want %g", i, g[i], want)
		}
	}
}

func TestAttend(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, d := range []int{8, 64, 80} {
		for _, n := range []int{1, 5, 33} {
			stride := d * 3
			keys, values := randF32(r, n*stride, 1), randF32(r, n*stride, 1)
			k16, v16 := make([]uint16, len(keys)), make([]uint16, len(values))
			kr, vr := make([]float32, len(keys)), make([]float32, len(values))
			for i := range keys {
				k16[i], v16[i] = f32ToF16(keys[i]), f32ToF16(values[i])
				kr[i], vr[i] = f16ToF32(k16[i]), f16ToF32(v16[i])
			}
			q := randF32(r, d, 1)
			scale := float32(1 / math.Sqrt(float64(d)))
			for _, half := range []bool{false, true} {
				kk, vv := keys, values
				if half {
					kk, vv = kr, vr
				}
				// float64 reference
				sc := make([]float64, n)
				mx := math.Inf(-1)
				for j := range n {
					var s float64
					for i := range d {
						s += float64(q[i]) * float64(kk[j*stride+i])
					}
					sc[j] = s * float64(scale)
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				want := make([]float64, d)
				for j := range n {
					for i := range d {
						want[i] += sc[j] / sum * float64(vv[j*stride+i])
					}
				}
				out, scores := make([]float32, d), make([]float32, n)
				var err error
				if half {
					err = AttendF16(out, q, k16, v16, n, stride, scale, scores)
				} else {
					err = AttendF32(out, q, keys, values, n, stride, scale, scores)
				}
				if err != nil {
					t.Fatal(err)
				}
				for i := range d {
					if math.Abs(float64(out[i])-want[i]) > 1e-5 {
						t.Errorf("attend half=%v d=%d n=%d out[%d] = %g, want %g", half, d, n, i, out[i], want[i])
						break
					}
				}
			}
		}
	}
	if err := AttendF32(make([]float32, 4), make([]float32, 4), make([]float32, 7), make([]float32, 8), 2, 4, 1, make([]float32, 2)); err == nil {
		t.Error("AttendF32 accepted a short key cache")
	}
}

// mulCase builds a random rows×cols matrix of type t (quantized from
// random floats with the given reference quantizer) and m activation rows.
type mulCase struct {
	t          ggml.Type
	rows, cols int
	m          int
}

func (c mulCase) String() string { return fmt.Sprintf("%s %dx%d m=%d", c.t, c.rows, c.cols, c.m) }

func TestMatMulFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tp := range []ggml.Type{ggml.TypeF32, ggml.TypeF16} {
		for _, cols := range []int{1, 7, 16, 33, 64, 96, 100, 257} {
			for m := 1; m <= 9; m++ {
				rows := 1 + r.IntN(13)
				x := randF32(r, m*cols, 1)
				var data []byte
				if tp == ggml.TypeF16 {
					data = randF16(r, rows*cols, 1)
				} else {
					data = make([]byte, 4*rows*cols)
					for i, v := range randF32(r, rows*cols, 1) {
						put32f(data[4*i:], v)
					}
				}
				checkMatMul(t, mulCase{tp, rows, cols, m}, data, x)
			}
		}
	}
}

// checkMatMul compares every kernel set's product with a float64
// reference over the dequantized weights and activations.
func checkMatMul(t *testing.T, c mulCase, data []byte, x []float32) {
	t.Helper()
	w, err := NewMatrix(c.t, c.rows, c.cols, data)
	if err != nil {
		t.Fatal(err)
	}
	var a Activations
	if err := a.Prepare(c.t, x, c.m, c.cols); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, c.m*c.rows)
	generic.mul(want, w, &a, 0, c.rows)
	packed, err := PackMatrix(c.t, c.rows, c.cols, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range fastSets() {
		for _, wk := range []*Matrix{w, packed} {
			got := make([]float32, c.m*c.rows)
			// Split the rows to exercise ranges.
			mid := c.rows / 2
			k.mul(got, wk, &a, 0, mid)
			k.mul(got, wk, &a, mid, c.rows)
			for i := range got {
				mag := rowMagnitude(w, &a, i%c.rows, i/c.rows)
				if !near(got[i], want[i], mag, 2e-6) {
					t.Errorf("%s %v (packed %v): out[%d] = %g, want %g (mag %g)", k.name, c, wk.Packed(), i, got[i], want[i], mag)
					return
				}
			}
		}
	}
}

// rowMagnitude bounds the size of the terms of one output: Σ|w|·|x| over
// the dequantized operands.
func rowMagnitude(w *Matrix, a *Activations, i, r int) float64 {
	wf := dequantRow(w.typ, w.data[i*w.rowBytes:(i+1)*w.rowBytes], w.cols)
	xf := activationRow(a, r)
	var s float64
	for j := range wf {
		s += math.Abs(wf[j] * xf[j])
	}
	return s
}

// TestRoundF16 compares the vector rounding to half precision with the
// portable conversion on random bit patterns (normals, subnormals,
// overflows, infinities, NaNs) and on every length up to 40.
func TestRoundF16(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	src := make([]float32, 4096)
	for i := range src {
		switch i % 4 {
		case 0:
			src[i] = math.Float32frombits(r.Uint32())
		case 1:
			src[i] = float32(r.NormFloat64() * 1e-5) // half subnormals
		case 2:
			src[i] = float32(r.NormFloat64() * 7e4) // around the half maximum
		default:
			src[i] = float32(r.NormFloat64())
		}
	}
	want := make([]float32, len(src))
	roundF16Generic(want, src)
	same := func(a, b float32) bool {
		return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
	}
	for _, k := range fastSets() {
		for n := 0; n <= 40; n++ {
			got := make([]float32, n)
			k.roundF16(got, src[:n])
			for i := range got {
				if !same(got[i], want[i]) {
					t.Fatalf("%s n=%d: round(%g) = %g, want %g", k.name, n, src[i], got[i], want[i])
				}
			}
		}
		got := append([]float32(nil), src...)
		k.roundF16(got, got) // in place
		for i := range got {
			if !same(got[i], want[i]) {
				t.Fatalf("%s: round(%g) = %g, want %g", k.name, src[i], got[i], want[i])
			}
		}
	}
	x := []float32{1.0001, 65520, 3}
	RoundF16(x, x)
	if x[0] != 1 || !math.IsInf(float64(x[1]), 1) || x[2] != 3 {
		t.Errorf("RoundF16 gave %v", x)
	}
}

// TestMatMulFloatBatch covers the large-batch products of F16 and F32
// weights (the blocked product on amd64, from 16 activation rows): several
// column blocks (accumulated outputs), column counts that are not
// multiples of 16, partial groups of activation rows, weight ranges that
// end inside a panel or half a panel, and the split over pool threads.
func TestMatMulFloatBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	floatData := func(tp ggml.Type, n int) []byte {
		if tp == ggml.TypeF16 {
			return randF16(r, n, 1)
		}
		data := make([]byte, 4*n)
		for i, v := range randF32(r, n, 1) {
			put32f(data[4*i:], v)
		}
		return data
	}
	for _, tp := range []ggml.Type{ggml.TypeF16, ggml.TypeF32} {
		for _, cols := range []int{1, 15, 17, 255, 256, 257, 1000, 2065} {
			for _, rows := range []int{1, 15, 16, 17, 31, 32, 33, 47, 70} {
				m := 15 + r.IntN(26) // 15..40
				checkMatMul(t, mulCase{tp, rows, cols, m}, floatData(tp, rows*cols), randF32(r, m*cols, 1))
			}
		}
		// Every batch size up to 40, across the threshold of the blocked
		// product and every remainder of its groups of rows.
		for m := 1; m <= 40; m++ {
			rows, cols := 1+r.IntN(70), 1+r.IntN(600)
			checkMatMul(t, mulCase{tp, rows, cols, m}, floatData(tp, rows*cols), randF32(r, m*cols, 1))
		}
		// The pool splits the rows at 32-row boundaries among threads.
		const rows, cols, m = 200, 333, 37
		data, x := floatData(tp, rows*cols), randF32(r, m*cols, 1)
		w, err := NewMatrix(tp, rows, cols, data)
		if err != nil {
			t.Fatal(err)
		}
		var a Activations
		if err := a.Prepare(tp, x, m, cols); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, m*rows)
		generic.mul(want, w, &a, 0, rows)
		for _, threads := range []int{1, 2, 3} {
			p := NewPool(threads)
			got := make([]float32, m*rows)
			if err := p.MatMul(got, w, &a); err != nil {
				t.Fatal(err)
			}
			p.Close()
			for i := range got {
				if mag := rowMagnitude(w, &a, i%rows, i/rows); !near(got[i], want[i], mag, 2e-6) {
					t.Fatalf("%s %dx%d m=%d on %d threads: out[%d] = %g, want %g", tp, rows, cols, m, threads, i, got[i], want[i])
				}
			}
		}
	}
}
