package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttendHeads compares grouped attention, with every kernel set, with
// a float64 reference over the same (F16-representable) cache values, for
// head sizes that do and do not fill the 16-lane and 64-value blocks,
// position counts around 16, and 1 to 7 query heads per key/value head.
func TestAttendHeads(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	shapes := [][2]int{{64, 64}, {128, 128}, {80, 80}, {8, 8}, {64, 32}, {48, 128}}
	for _, sh := range shapes {
		d, dv := sh[0], sh[1]
		for _, n := range []int{1, 15, 16, 17, 33, 300} {
			for _, heads := range []int{1, 3, 4, 7} {
				kstride, vstride := d+8, dv+24
				keys, values := randF32(r, n*kstride, 1), randF32(r, n*vstride, 1)
				k16, v16 := make([]uint16, len(keys)), make([]uint16, len(values))
				for i := range keys {
					k16[i] = f32ToF16(keys[i])
					keys[i] = f16ToF32(k16[i])
				}
				for i := range values {
					v16[i] = f32ToF16(values[i])
					values[i] = f16ToF32(v16[i])
				}
				q := randF32(r, heads*d, 1)
				scale := float32(1 / math.Sqrt(float64(d)))
				want := attendReference(q, heads, d, dv, keys, values, n, kstride, vstride, scale)
				for _, ks := range kernelSets() {
					for _, half := range []bool{false, true} {
						out, scores := make([]float32, heads*dv), make([]float32, heads*n)
						qc := append([]float32(nil), q...)
						var err error
						saved := active
						active = ks
						if half {
							err = AttendHeadsF16(out, qc, heads, k16, v16, n, kstride, vstride, scale, scores, false)
						} else {
							err = AttendHeadsF32(out, qc, heads, keys, values, n, kstride, vstride, scale, scores)
						}
						active = saved
						if err != nil {
							t.Fatal(err)
						}
						for i := range out {
							if math.Abs(float64(out[i])-want[i]) > 2e-5 {
								t.Fatalf("%s half=%v d=%d dv=%d n=%d heads=%d: out[%d] = %g, want %g", ks.name, half, d, dv, n, heads, i, out[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

// TestAttendHeadsRounding: with round set, the F16 version equals the
// float64 computation on rounded queries and rounded weights.
func TestAttendHeadsRounding(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const d, n, heads = 64, 40, 3
	k16, v16 := make([]uint16, n*d), make([]uint16, n*d)
	for i := range k16 {
		k16[i], v16[i] = f32ToF16(float32(r.NormFloat64())), f32ToF16(float32(r.NormFloat64()))
	}
	q := randF32(r, heads*d, 1)
	out, scores := make([]float32, heads*d), make([]float32, heads*n)
	qc := append([]float32(nil), q...)
	if err := AttendHeadsF16(out, qc, heads, k16, v16, n, d, d, 0.125, scores, true); err != nil {
		t.Fatal(err)
	}
	for i := range qc {
		if qc[i] != f16ToF32(f32ToF16(q[i])) {
			t.Fatalf("query %d not rounded in place: %g from %g", i, qc[i], q[i])
		}
	}
	for i, w := range scores {
		if w != f16ToF32(f32ToF16(w)) {
			t.Fatalf("weight %d = %g is not a half-precision value", i, w)
		}
	}
	for j := range heads {
		for c := range d {
			var want float64
			for p := range n {
				want += float64(scores[j*n+p]) * float64(f16ToF32(v16[p*d+c]))
			}
			if math.Abs(float64(out[j*d+c])-want) > 1e-5 {
				t.Fatalf("head %d [%d] = %g, want %g from the rounded weights", j, c, out[j*d+c], want)
			}
		}
	}
}

func TestAttendHeadsErrors(t *testing.T) {
	q, out, scores := make([]float32, 128), make([]float32, 128), make([]float32, 20)
	kv := make([]float32, 10*64)
	for _, c := range []struct {
		name             string
		heads, n, stride int
		scores           []float32
	}{
		{"no heads", 0, 10, 64, scores},
		{"short scores", 2, 11, 64, scores},
		{"short cache", 2, 10, 65, scores},
		{"narrow stride", 2, 10, 32, scores},
	} {
		if err := AttendHeadsF32(out, q, c.heads, kv, kv, c.n, c.stride, c.stride, 1, c.scores); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if err := AttendHeadsF32(out[:100], q, 3, kv, kv, 10, 64, 64, 1, scores); err == nil {
		t.Error("query values not a multiple of the heads accepted")
	}
}

// attendReference is grouped attention in float64.
func attendReference(q []float32, heads, d, dv int, keys, values []float32, n, kstride, vstride int, scale float32) []float64 {
	out := make([]float64, heads*dv)
	for j := range heads {
		s := make([]float64, n)
		mx := math.Inf(-1)
		for p := range n {
			for i := range d {
				s[p] += float64(q[j*d+i]) * float64(keys[p*kstride+i])
			}
			s[p] *= float64(scale)
			mx = max(mx, s[p])
		}
		var sum float64
		for p := range s {
			s[p] = math.Exp(s[p] - mx)
			sum += s[p]
		}
		for c := range dv {
			for p := range n {
				out[j*dv+c] += s[p] / sum * float64(values[p*vstride+c])
			}
		}
	}
	return out
}
