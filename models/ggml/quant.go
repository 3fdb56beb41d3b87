package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The quantizers below reproduce ggml's reference quantizers
// (quantize_row_*_ref in ggml-quants.c), which are what llama.cpp's quantize
// tool runs when it is given no importance matrix. They evaluate the same
// float32 operations in the same order, without fused multiply-add (see the
// note in dequant.go on explicit float32 conversions), so they write the
// same bytes as ggml on x86-64. Inputs must be finite; NaNs and infinities
// give well-formed but meaningless blocks.
//
// Each per-type function quantizes as many whole blocks as both slices
// hold, min(len(src)/BlockSize, len(dst)/TypeSize) blocks, and returns the
// number of bytes it wrote.

// quantizers maps each type Quantize handles to its row function.
var quantizers = map[Type]func(src []float32, dst []byte) int{
	TypeF32:  func(src []float32, dst []byte) int { return 4 * F32RowToBytes(src, dst) },
	TypeF16:  func(src []float32, dst []byte) int { return 2 * F32RowToF16(src, dst) },
	TypeBF16: func(src []float32, dst []byte) int { return 2 * F32RowToBF16(src, dst) },
	TypeQ4_0: QuantizeQ4_0,
	TypeQ4_1: QuantizeQ4_1,
	TypeQ5_0: QuantizeQ5_0,
	TypeQ5_1: QuantizeQ5_1,
	TypeQ8_0: QuantizeQ8_0,
	TypeQ8_1: QuantizeQ8_1,
	TypeQ2_K: QuantizeQ2_K,
	TypeQ3_K: QuantizeQ3_K,
	TypeQ4_K: QuantizeQ4_K,
	TypeQ5_K: QuantizeQ5_K,
	TypeQ6_K: QuantizeQ6_K,
	TypeQ8_K: QuantizeQ8_K,
}

// CanQuantize reports whether Quantize handles type t.
func CanQuantize(t Type) bool {
	_, ok := quantizers[t]
	return ok
}

// Quantize encodes src as type t and returns the new row of
// t.RowSize(len(src)) bytes. len(src) must be a multiple of t's block size.
func Quantize(t Type, src []float32) ([]byte, error) {
	n, err := quantizedSize(t, len(src))
	if err != nil {
		return nil, err
	}
	dst := make([]byte, n)
	quantizers[t](src, dst)
	return dst, nil
}

// QuantizeInto encodes src as type t into dst, which must be exactly
// t.RowSize(len(src)) bytes long. On error dst is left untouched.
func QuantizeInto(t Type, src []float32, dst []byte) error {
	n, err := quantizedSize(t, len(src))
	if err != nil {
		return err
	}
	if len(dst) != n {
		return fmt.Errorf("quantize %s: %d bytes for %d elements, want %d", t, len(dst), len(src), n)
	}
	quantizers[t](src, dst)
	return nil
}

func quantizedSize(t Type, n int) (int, error) {
	if !t.Known() {
		return 0, fmt.Errorf("quantize %s: unknown tensor type", t)
	}
	if _, ok := quantizers[t]; !ok {
		return 0, fmt.Errorf("quantize %s: %w", t, ErrUnsupported)
	}
	size, err := t.RowSize(n)
	if err != nil {
		return 0, fmt.Errorf("quantize: %w", err)
	}
	return size, nil
}

// qblocks returns how many whole blocks of blockSize elements and typeSize
// bytes both src and dst hold.
func qblocks(src []float32, dst []byte, blockSize, typeSize int) int {
	return min(len(src)/blockSize, len(dst)/typeSize)
}

func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, F32ToF16(f)) }

// truncInt8 converts f to int8 as C's (int8_t) cast does on x86-64:
// truncation toward zero to 32 bits, then the low byte.
func truncInt8(f float32) int8 { return int8(int32(f)) }

// absMax returns the element of x with the largest magnitude (the first one
// on ties, as ggml's loops pick it) and that magnitude.
func absMax(x []float32) (maxv, amax float32) {
	b := maxAbsBits(x)
	if b == 0 {
		return 0, 0
	}
	for _, v := range x {
		if math.Float32bits(v)&0x7fffffff == b {
			return v, math.Float32frombits(b)
		}
	}
	return 0, 0 // not reached
}

// maxAbsBits returns the bits of the largest |x[i]| (0 for an empty x). The
// bit patterns of non-negative floats sort as their values do, so the search
// runs on integers, in four independent lanes.
func maxAbsBits(x []float32) uint32 {
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		m0 = max(m0, math.Float32bits(v[0])&0x7fffffff)
		m1 = max(m1, math.Float32bits(v[1])&0x7fffffff)
		m2 = max(m2, math.Float32bits(v[2])&0x7fffffff)
		m3 = max(m3, math.Float32bits(v[3])&0x7fffffff)
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&0x7fffffff)
	}
	return max(m0, m1, m2, m3)
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func sqrt32(v float32) float32 { return float32(math.Sqrt(float64(v))) }

// roundHalfAway rounds v to the nearest integer with halves away from zero,
// as C's roundf, for |v| < 2^31; larger magnitudes give meaningless (but
// deterministic) values. In float64, v ± 0.5 is exact for 2^-29 <= |v| <
// 2^31 and otherwise (below) stays strictly between -1 and 1, so truncating
// it gives roundf's result without a data-dependent branch.
func roundHalfAway(v float32) int32 {
	v = float32(v) // round a product the caller passes before adding
	w := float64(v)
	return int32(w + math.Copysign(0.5, w))
}

// nearestInt rounds v to the nearest integer, ties to even, for
// |v| <= 4194303, by ggml's trick of adding 1.5*2^23 and reading the
// mantissa. Larger magnitudes give meaningless (but deterministic) values.
func nearestInt(v float32) int {
	// float32(v) rounds a product the caller passes before the addition.
	w := float32(v) + 12582912
	return int(int32(math.Float32bits(w)&0x007fffff) - 0x00400000)
}

// QuantizeQ4_0 encodes blocks of 32 as Q4_0 (quantize_row_q4_0_ref).
func QuantizeQ4_0(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK4_0, 18)
	for i := range nb {
		x := src[i*QK4_0 : i*QK4_0+QK4_0]
		y := dst[i*18 : i*18+18]
		maxv, _ := absMax(x)
		d := maxv / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y, d)
		for j := range 16 {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+16] * id)
			q0 := uint8(min(15, truncInt8(x0+8.5)))
			q1 := uint8(min(15, truncInt8(x1+8.5)))
			y[2+j] = q0 | q1<<4
		}
	}
	return nb * 18
}

// QuantizeQ4_1 encodes blocks of 32 as Q4_1 (quantize_row_q4_1_ref).
func QuantizeQ4_1(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK4_1, 20)
	for i := range nb {
		x := src[i*QK4_1 : i*QK4_1+QK4_1]
		y := dst[i*20 : i*20+20]
		lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		putF16(y[2:], lo)
		for j := range 16 {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[j+16] - lo) * id)
			q0 := uint8(min(15, truncInt8(x0+0.5)))
			q1 := uint8(min(15, truncInt8(x1+0.5)))
			y[4+j] = q0 | q1<<4
		}
	}
	return nb * 20
}

// QuantizeQ5_0 encodes blocks of 32 as Q5_0 (quantize_row_q5_0_ref).
func QuantizeQ5_0(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK5_0, 22)
	for i := range nb {
		x := src[i*QK5_0 : i*QK5_0+QK5_0]
		y := dst[i*22 : i*22+22]
		maxv, _ := absMax(x)
		d := maxv / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y, d)
		var qh uint32
		for j := range 16 {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+16] * id)
			q0 := uint8(min(31, truncInt8(x0+16.5)))
			q1 := uint8(min(31, truncInt8(x1+16.5)))
			y[6+j] = q0&0xf | (q1&0xf)<<4
			qh |= uint32(q0&0x10) >> 4 << j
			qh |= uint32(q1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(y[2:], qh)
	}
	return nb * 22
}

// QuantizeQ5_1 encodes blocks of 32 as Q5_1 (quantize_row_q5_1_ref).
func QuantizeQ5_1(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK5_1, 24)
	for i := range nb {
		x := src[i*QK5_1 : i*QK5_1+QK5_1]
		y := dst[i*24 : i*24+24]
		lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		putF16(y[2:], lo)
		var qh uint32
		for j := range 16 {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[j+16] - lo) * id)
			q0 := uint8(int32(x0 + 0.5))
			q1 := uint8(int32(x1 + 0.5))
			y[8+j] = q0&0xf | (q1&0xf)<<4
			qh |= uint32(q0&0x10) >> 4 << j
			qh |= uint32(q1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(y[4:], qh)
	}
	return nb * 24
}

// QuantizeQ8_0 encodes blocks of 32 as Q8_0 (quantize_row_q8_0_ref):
// d = max|x|/127 and q = round(x/d), halves away from zero.
func QuantizeQ8_0(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK8_0, 34)
	for i := range nb {
		x := src[i*QK8_0 : i*QK8_0+QK8_0]
		y := dst[i*34 : i*34+34]
		amax := math.Float32frombits(maxAbsBits(x))
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y, d)
		qs := y[2:34]
		for j, v := range x {
			qs[j] = uint8(int8(roundHalfAway(v * id)))
		}
	}
	return nb * 34
}

// QuantizeQ8_1 encodes blocks of 32 as Q8_1 (quantize_row_q8_1_ref): Q8_0's
// quants plus s = d * sum(q).
func QuantizeQ8_1(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK8_1, 36)
	for i := range nb {
		x := src[i*QK8_1 : i*QK8_1+QK8_1]
		y := dst[i*36 : i*36+36]
		amax := math.Float32frombits(maxAbsBits(x))
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y, d)
		qs := y[4:36]
		sum := 0
		for j, v := range x {
			q := int8(roundHalfAway(v * id))
			qs[j] = uint8(q)
			sum += int(q)
		}
		putF16(y[2:], float32(sum)*d)
	}
	return nb * 36
}

// makeQKX2Quants finds a scale and a non-negative offset for the group x
// (ggml's make_qkx2_quants): it writes levels 0..nmax to levels and returns
// the scale and the offset theMin, with x ≈ scale*level - theMin. It
// minimises the weighted error (absolute if useMAD, else squared) over
// nstep+1 trial scales around nmax/(max-min). aux must be as long as x.
func makeQKX2Quants(nmax int, x, weights []float32, levels, aux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	n := len(x)
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		clear(levels[:n])
		return 0, -lo
	}
	fmax := float32(nmax)
	iscale := fmax / (hi - lo)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		l := min(max(nearestInt(iscale*(v-lo)), 0), nmax)
		levels[i] = uint8(l)
		diff := float32(scale*float32(l)) + lo - v
		if useMAD {
			diff = abs32(diff)
		} else {
			diff = float32(diff * diff)
		}
		bestErr += float32(weights[i] * diff)
	}
	if nstep < 1 {
		return scale, -lo
	}
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + fmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := min(max(nearestInt(iscale*(v-lo)), 0), nmax)
			aux[i] = uint8(l)
			w := weights[i]
			wl := float32(w * float32(l))
			sumL += wl
			sumL2 += float32(wl * float32(l))
			sumXL += float32(wl * v)
		}
		den := float32(sumW*sumL2) - float32(sumL*sumL)
		if den > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / den
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / den
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curErr float32
			for i, v := range x {
				diff := float32(thisScale*float32(aux[i])) + thisMin - v
				if useMAD {
					diff = abs32(diff)
				} else {
					diff = float32(diff * diff)
				}
				curErr += float32(weights[i] * diff)
			}
			if curErr < bestErr {
				copy(levels[:n], aux[:n])
				bestErr = curErr
				scale = thisScale
				lo = thisMin
			}
		}
	}
	return scale, -lo
}

// groupMaxEps is the magnitude below which a group counts as all zeros.
const groupMaxEps = 1e-15

// makeQXQuants finds a symmetric scale for x (ggml's make_qx_quants with
// rmse_type 1 and no importance weights): levels get values 0..2*nmax-1
// (signed level + nmax) and the returned scale minimises the error weighted
// by x², searched over 19 trial scales.
func makeQXQuants(nmax int, x []float32, levels []int8) float32 {
	maxv, amax := absMax(x)
	if amax < groupMaxEps {
		clear(levels[:len(x)])
		return 0
	}
	fmax := float32(nmax)
	iscale := -fmax / maxv
	var sumLX, sumL2 float32
	for i, v := range x {
		l := min(max(nearestInt(iscale*v), -nmax), nmax-1)
		levels[i] = int8(l + nmax)
		w := float32(v * v)
		fl := float32(l)
		sumLX += float32(float32(w*v) * fl)
		sumL2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fmax + float32(0.1*float32(is))) / maxv
		sumLX, sumL2 = 0, 0
		for _, v := range x {
			l := min(max(nearestInt(iscale*v), -nmax), nmax-1)
			w := float32(v * v)
			fl := float32(l)
			sumLX += float32(float32(w*v) * fl)
			sumL2 += float32(float32(w*fl) * fl)
		}
		if sumL2 > 0 && float32(sumLX*sumLX) > float32(best*sumL2) {
			for i, v := range x {
				l := min(max(nearestInt(iscale*v), -nmax), nmax-1)
				levels[i] = int8(l + nmax)
			}
			scale = sumLX / sumL2
			best = scale * sumLX
		}
	}
	return scale
}

// makeQ3Quants finds a symmetric scale for x (ggml's make_q3_quants with
// do_rmse): levels get values 0..2*nmax-1 (signed level + nmax), refined by
// up to five passes of coordinate descent on the x²-weighted error.
func makeQ3Quants(nmax int, x []float32, levels []int8) float32 {
	maxv, amax := absMax(x)
	if amax < groupMaxEps {
		clear(levels[:len(x)])
		return 0
	}
	iscale := -float32(nmax) / maxv
	var sumLX, sumL2 float32
	for i, v := range x {
		l := min(max(nearestInt(iscale*v), -nmax), nmax-1)
		levels[i] = int8(l)
		w := float32(v * v)
		fl := float32(l)
		sumLX += float32(float32(w*v) * fl)
		sumL2 += float32(float32(w*fl) * fl)
	}
	for range 5 {
		changed := 0
		for i, v := range x {
			w := float32(v * v)
			li := float32(levels[i])
			slx := sumLX - float32(float32(w*v)*li)
			if slx > 0 {
				sl2 := sumL2 - float32(float32(w*li)*li)
				nl := min(max(nearestInt(float32(v*sl2)/slx), -nmax), nmax-1)
				if nl != int(levels[i]) {
					fl := float32(nl)
					slx += float32(float32(w*v) * fl)
					sl2 += float32(float32(w*fl) * fl)
					if sl2 > 0 && float32(float32(slx*slx)*sumL2) > float32(float32(sumLX*sumLX)*sl2) {
						levels[i] = int8(nl)
						sumLX, sumL2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range x {
		levels[i] += int8(nmax)
	}
	if sumL2 > 0 {
		return sumLX / sumL2
	}
	return 0
}

// packQ2Bits stores 256 2-bit levels in 64 bytes the way Q2_K and Q3_K
// keep their low bits (see BlockQ2_K).
func packQ2Bits(levels []uint8, qs []byte) {
	for h := range 2 {
		L := levels[128*h : 128*h+128]
		q := qs[32*h : 32*h+32]
		for l := range 32 {
			q[l] = L[l] | L[l+32]<<2 | L[l+64]<<4 | L[l+96]<<6
		}
	}
}

// QuantizeQ2_K encodes super-blocks of 256 as Q2_K (quantize_row_q2_K_ref).
func QuantizeQ2_K(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK_K, 84)
	var (
		levels       [QK_K]uint8
		aux          [16]uint8
		weights      [16]float32
		mins, scales [QK_K / 16]float32
	)
	const q4scale = 15
	for i := range nb {
		x := src[i*QK_K : i*QK_K+QK_K]
		y := dst[i*84 : i*84+84]
		ysc := y[0:16]
		var maxScale, maxMin float32
		for j := range QK_K / 16 {
			g := x[16*j : 16*j+16]
			for l, v := range g {
				weights[l] = abs32(v)
			}
			scales[j], mins[j] = makeQKX2Quants(3, g, weights[:], levels[16*j:16*j+16], aux[:], -0.5, 0.1, 15, true)
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}
		if maxScale > 0 {
			iscale := q4scale / maxScale
			for j := range ysc {
				ysc[j] = uint8(nearestInt(iscale * scales[j]))
			}
			putF16(y[80:], maxScale/q4scale)
		} else {
			clear(ysc)
			putF16(y[80:], 0)
		}
		if maxMin > 0 {
			iscale := q4scale / maxMin
			for j := range ysc {
				ysc[j] |= uint8(nearestInt(iscale*mins[j]) << 4)
			}
			putF16(y[82:], maxMin/q4scale)
		} else {
			putF16(y[82:], 0)
		}
		yd, ydmin := fp16At(y, 80), fp16At(y, 82)
		for j := range QK_K / 16 {
			d := yd * float32(ysc[j]&0xf)
			if d == 0 {
				continue
			}
			dm := float32(ydmin * float32(ysc[j]>>4))
			for ii := range 16 {
				levels[16*j+ii] = uint8(min(max(nearestInt((x[16*j+ii]+dm)/d), 0), 3))
			}
		}
		packQ2Bits(levels[:], y[16:80])
	}
	return nb * 84
}

// QuantizeQ3_K encodes super-blocks of 256 as Q3_K (quantize_row_q3_K_ref).
func QuantizeQ3_K(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK_K, 110)
	var (
		levels [QK_K]int8
		scales [QK_K / 16]float32
		packed [QK_K]uint8
	)
	for i := range nb {
		x := src[i*QK_K : i*QK_K+QK_K]
		y := dst[i*110 : i*110+110]
		hmask, qs, ysc := y[0:32], y[32:96], y[96:108]
		var maxScale, amax float32
		for j := range QK_K / 16 {
			scales[j] = makeQ3Quants(4, x[16*j:16*j+16], levels[16*j:16*j+16])
			if s := abs32(scales[j]); s > amax {
				amax, maxScale = s, scales[j]
			}
		}
		clear(ysc)
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := range QK_K / 16 {
				l := int8(nearestInt(iscale * scales[j]))
				l = min(max(l, -32), 31) + 32
				if j < 8 {
					ysc[j] = uint8(l) & 0xf
				} else {
					ysc[j-8] |= (uint8(l) & 0xf) << 4
				}
				l >>= 4
				ysc[j%4+8] |= uint8(l) << (2 * (j / 4))
			}
			putF16(y[108:], 1/iscale)
		} else {
			putF16(y[108:], 0)
		}
		yd := fp16At(y, 108)
		for j := range QK_K / 16 {
			d := yd * float32(ScaleQ3_K(j, ysc))
			if d == 0 {
				continue
			}
			for ii := range 16 {
				l := min(max(nearestInt(x[16*j+ii]/d), -4), 3)
				levels[16*j+ii] = int8(l + 4)
			}
		}
		clear(hmask)
		for j := range QK_K {
			l := uint8(levels[j])
			if l > 3 {
				hmask[j%32] |= 1 << (j / 32)
				l -= 4
			}
			packed[j] = l
		}
		packQ2Bits(packed[:], qs)
	}
	return nb * 110
}

// quantizeKScales packs eight 6-bit scales and mins of a Q4_K or Q5_K block
// (see BlockQ4_K) into 12 bytes, quantized against the largest of each.
func quantizeKScales(scales, mins *[8]float32, maxScale, maxMin float32, ysc []byte) {
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	for j := range 8 {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		if j < 4 {
			ysc[j] = ls
			ysc[j+4] = lm
		} else {
			ysc[j+4] = ls&0xf | (lm&0xf)<<4
			ysc[j-4] |= (ls >> 4) << 6
			ysc[j] |= (lm >> 4) << 6
		}
	}
}

// quantizeKGroups runs the shared first half of the Q4_K and Q5_K
// quantizers on one super-block x: it fits each sub-block of 32, packs the
// scales into y (d at 0, dmin at 2, scales at 4..15) and leaves the final
// levels 0..nmax in levels.
func quantizeKGroups(x []float32, y []byte, nmax int, rmin float32, nstep int, levels *[QK_K]uint8) {
	var (
		aux          [32]uint8
		weights      [32]float32
		scales, mins [8]float32
	)
	var maxScale, maxMin float32
	for j := range QK_K / 32 {
		g := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range g {
			sumX2 += float32(v * v)
		}
		avX := sqrt32(sumX2 / 32)
		for l, v := range g {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, g, weights[:], levels[32*j:32*j+32], aux[:], rmin, 0.1, nstep, false)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	ysc := y[4:16]
	quantizeKScales(&scales, &mins, maxScale, maxMin, ysc)
	putF16(y[0:], maxScale/63)
	putF16(y[2:], maxMin/63)
	yd, ydmin := fp16At(y, 0), fp16At(y, 2)
	for j := range QK_K / 32 {
		sc, m := ScaleMinK4(j, ysc)
		d := yd * float32(sc)
		if d == 0 {
			continue
		}
		dm := float32(ydmin * float32(m))
		for ii := range 32 {
			levels[32*j+ii] = uint8(min(max(nearestInt((x[32*j+ii]+dm)/d), 0), nmax))
		}
	}
}

// QuantizeQ4_K encodes super-blocks of 256 as Q4_K (quantize_row_q4_K_ref).
func QuantizeQ4_K(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK_K, 144)
	var levels [QK_K]uint8
	for i := range nb {
		x := src[i*QK_K : i*QK_K+QK_K]
		y := dst[i*144 : i*144+144]
		quantizeKGroups(x, y, 15, -1, 20, &levels)
		for c := range 4 {
			q := y[16+32*c : 16+32*c+32]
			L := levels[64*c : 64*c+64]
			for l := range q {
				q[l] = L[l] | L[l+32]<<4
			}
		}
	}
	return nb * 144
}

// QuantizeQ5_K encodes super-blocks of 256 as Q5_K (quantize_row_q5_K_ref).
func QuantizeQ5_K(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK_K, 176)
	var levels [QK_K]uint8
	for i := range nb {
		x := src[i*QK_K : i*QK_K+QK_K]
		y := dst[i*176 : i*176+176]
		quantizeKGroups(x, y, 31, -0.5, 15, &levels)
		qh := y[16:48]
		clear(qh)
		for c := range 4 {
			ql := y[48+32*c : 48+32*c+32]
			L := levels[64*c : 64*c+64]
			m1, m2 := uint8(1)<<(2*c), uint8(2)<<(2*c)
			for j := range ql {
				l1, l2 := L[j], L[j+32]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[j] = l1 | l2<<4
			}
		}
	}
	return nb * 176
}

// QuantizeQ6_K encodes super-blocks of 256 as Q6_K (quantize_row_q6_K_ref).
func QuantizeQ6_K(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK_K, 210)
	var (
		levels [QK_K]int8
		scales [QK_K / 16]float32
	)
	for i := range nb {
		x := src[i*QK_K : i*QK_K+QK_K]
		y := dst[i*210 : i*210+210]
		var maxScale, maxAbs float32
		for ib := range QK_K / 16 {
			s := makeQXQuants(32, x[16*ib:16*ib+16], levels[16*ib:16*ib+16])
			scales[ib] = s
			if a := abs32(s); a > maxAbs {
				maxAbs, maxScale = a, s
			}
		}
		if maxAbs < groupMaxEps {
			clear(y)
			continue
		}
		iscale := -128 / maxScale
		putF16(y[208:], 1/iscale)
		ysc := y[192:208]
		for ib := range ysc {
			ysc[ib] = uint8(int8(min(127, nearestInt(iscale*scales[ib]))))
		}
		yd := fp16At(y, 208)
		for j := range QK_K / 16 {
			d := yd * float32(int8(ysc[j]))
			if d == 0 {
				continue
			}
			for ii := range 16 {
				l := min(max(nearestInt(x[16*j+ii]/d), -32), 31)
				levels[16*j+ii] = int8(l + 32)
			}
		}
		for h := range 2 {
			ql := y[64*h : 64*h+64]
			qh := y[128+32*h : 128+32*h+32]
			L := levels[128*h : 128*h+128]
			for l := range 32 {
				q1, q2 := uint8(L[l]), uint8(L[l+32])
				q3, q4 := uint8(L[l+64]), uint8(L[l+96])
				ql[l] = q1&0xf | (q3&0xf)<<4
				ql[l+32] = q2&0xf | (q4&0xf)<<4
				qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
	}
	return nb * 210
}

// QuantizeQ8_K encodes super-blocks of 256 as Q8_K (quantize_row_q8_K_ref):
// d = -max/127 for the element max of largest magnitude, q = round(x/d),
// and the sums of q over each group of 16. An all-zero block is written as
// zeros (ggml leaves its bsums unwritten).
func QuantizeQ8_K(src []float32, dst []byte) int {
	nb := qblocks(src, dst, QK_K, 292)
	for i := range nb {
		x := src[i*QK_K : i*QK_K+QK_K]
		y := dst[i*292 : i*292+292]
		maxv, amax := absMax(x)
		if amax == 0 {
			clear(y)
			continue
		}
		iscale := -127 / maxv
		qs := y[4 : 4+QK_K]
		for j, v := range x {
			qs[j] = uint8(int8(min(127, nearestInt(iscale*v))))
		}
		for j := range QK_K / 16 {
			sum := 0
			for _, q := range qs[16*j : 16*j+16] {
				sum += int(int8(q))
			}
			binary.LittleEndian.PutUint16(y[260+2*j:], uint16(int16(sum)))
		}
		binary.LittleEndian.PutUint32(y, math.Float32bits(1/iscale))
	}
	return nb * 292
}
