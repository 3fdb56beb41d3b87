package kernels

import (
	"fmt"
	"math"
)

// Block geometry of the ggml formats this package reads and writes.
const (
	qk8_0       = 32  // elements per Q8_0, Q4_0 and Q5_0 block
	qkK         = 256 // elements per k-quant super-block
	blockQ8_0   = 34  // bytes: fp16 d + 32 int8
	blockQ4_0   = 18  // bytes: fp16 d + 16 bytes of nibbles
	blockQ5_0   = 22  // bytes: fp16 d + 4 bytes of high bits + 16 bytes of nibbles
	blockQ8_K   = 292 // bytes: float32 d + 256 int8 + 16 int16 sums
	blockQ4_K   = 144 // bytes: fp16 d, fp16 dmin, 12 bytes of scales, 128 bytes of nibbles
	blockQ5_K   = 176 // bytes: as Q4_K plus 32 bytes of high bits before the nibbles
	blockQ6_K   = 210 // bytes: 128 low nibbles, 64 high bits, 16 int8 scales, fp16 d
	q8KBsumsOff = 4 + qkK
)

// QuantizeQ8_0 quantizes x to ggml's Q8_0 format in dst, producing exactly
// the bytes of ggml's reference quantize_row_q8_0_ref: per block of 32,
// d = max|x|/127 stored as fp16 and q = round(x/d), rounding half away
// from zero. len(x) must be a multiple of 32 and dst must hold
// len(x)/32*34 bytes.
func QuantizeQ8_0(dst []byte, x []float32) error {
	if len(x)%qk8_0 != 0 {
		return fmt.Errorf("quantize Q8_0: %d values is not a multiple of %d", len(x), qk8_0)
	}
	nb := len(x) / qk8_0
	if len(dst) < nb*blockQ8_0 {
		return fmt.Errorf("quantize Q8_0: destination holds %d bytes, need %d", len(dst), nb*blockQ8_0)
	}
	for b := 0; b < nb; b++ {
		blk := dst[b*blockQ8_0 : (b+1)*blockQ8_0]
		d16 := quantizeBlockQ8_0(blk[2:34:34], x[b*qk8_0:(b+1)*qk8_0:(b+1)*qk8_0])
		put16(blk, d16)
	}
	return nil
}

// quantizeBlockQ8_0 writes the 32 quants of one Q8_0 block to qs and
// returns its scale as fp16 bits.
func quantizeBlockQ8_0(qs []byte, x []float32) uint16 {
	var amax float32
	for _, v := range x[:qk8_0] {
		a := float32(math.Abs(float64(v)))
		if a > amax {
			amax = a
		}
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	for j, v := range x[:qk8_0] {
		p := float32(v * id)
		qs[j] = byte(int8(math.Round(float64(p))))
	}
	return f32ToF16(d)
}

// QuantizeQ8_K quantizes x to ggml's Q8_K format in dst, producing exactly
// the bytes of ggml's reference quantize_row_q8_K_ref (an all-zero block
// gets d = 0, zero quants and zero sums). len(x) must be a multiple of 256
// and dst must hold len(x)/256*292 bytes.
func QuantizeQ8_K(dst []byte, x []float32) error {
	if len(x)%qkK != 0 {
		return fmt.Errorf("quantize Q8_K: %d values is not a multiple of %d", len(x), qkK)
	}
	nb := len(x) / qkK
	if len(dst) < nb*blockQ8_K {
		return fmt.Errorf("quantize Q8_K: destination holds %d bytes, need %d", len(dst), nb*blockQ8_K)
	}
	var bsums [16]int16
	for b := 0; b < nb; b++ {
		blk := dst[b*blockQ8_K : (b+1)*blockQ8_K]
		d := quantizeBlockQ8_K(blk[4:4+qkK:4+qkK], &bsums, x[b*qkK:(b+1)*qkK:(b+1)*qkK])
		put32f(blk, d)
		for j, s := range bsums {
			put16(blk[q8KBsumsOff+2*j:], uint16(s))
		}
	}
	return nil
}

// quantizeBlockQ8_K writes the 256 quants of one Q8_K super-block to qs and
// their sums over groups of 16 to bsums, and returns the block's scale.
func quantizeBlockQ8_K(qs []byte, bsums *[16]int16, x []float32) float32 {
	var amax, vmax float32
	for _, v := range x[:qkK] {
		a := float32(math.Abs(float64(v)))
		if a > amax {
			amax, vmax = a, v
		}
	}
	if amax == 0 {
		clear(qs[:qkK])
		*bsums = [16]int16{}
		return 0
	}
	iscale := -127 / vmax
	for j, v := range x[:qkK] {
		p := float32(iscale * v)
		q := int(math.RoundToEven(float64(p)))
		qs[j] = byte(int8(min(127, q)))
	}
	for g := 0; g < 16; g++ {
		var s int16
		for _, q := range qs[16*g : 16*g+16] {
			s += int16(int8(q))
		}
		bsums[g] = s
	}
	return 1 / iscale
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7) from
// the 12 packed bytes of a Q4_K or Q5_K super-block.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// The integer cores below compute one block's exact dot product of
// weight quants with activation quants. They are the reference that the
// vector kernels must reproduce bit for bit before scaling.

// dotBlockQ8_0 returns Σ w[j]·x[j] over one block of 32 int8 values.
func dotBlockQ8_0(w, x []byte) int32 {
	w, x = w[:32], x[:32]
	var s int32
	for j := range 32 {
		s += int32(int8(w[j])) * int32(int8(x[j]))
	}
	return s
}

// dotBlockQ4_0 returns Σ (q[j]-8)·x[j] over one Q4_0 block's 16 bytes of
// nibbles (low nibbles are elements 0..15, high nibbles 16..31).
func dotBlockQ4_0(qs, x []byte) int32 {
	qs, x = qs[:16], x[:32]
	var s int32
	for j := range 16 {
		s += (int32(qs[j]&0xf) - 8) * int32(int8(x[j]))
		s += (int32(qs[j]>>4) - 8) * int32(int8(x[j+16]))
	}
	return s
}

// dotBlockQ5_0 returns the exact dot product of one Q5_0 block (4 bytes
// of high bits followed by 16 bytes of nibbles) with 32 int8 values.
func dotBlockQ5_0(qhqs, x []byte) int32 {
	qh := uint32(qhqs[0]) | uint32(qhqs[1])<<8 | uint32(qhqs[2])<<16 | uint32(qhqs[3])<<24
	qs, x := qhqs[4:20], x[:32]
	var s int32
	for j := range 16 {
		h0 := int32((qh>>j)<<4) & 0x10
		h1 := int32(qh>>(j+12)) & 0x10
		s += (int32(qs[j]&0xf) | h0 - 16) * int32(int8(x[j]))
		s += (int32(qs[j]>>4) | h1 - 16) * int32(int8(x[j+16]))
	}
	return s
}

// dotBlockQ4_K returns, for one Q4_K super-block and 256 int8 activations
// with their 16 group sums, the scaled quant sum Σ_j sc_j·Σ q·x and the
// min sum Σ_j m_j·Σ x over the eight sub-blocks of 32.
func dotBlockQ4_K(w, x []byte, bsums *[16]int16) (sum, mins int32) {
	scales, qs := w[4:16], w[16:144]
	x = x[:256]
	for c := range 4 {
		sc0, m0 := scaleMinK4(2*c, scales)
		sc1, m1 := scaleMinK4(2*c+1, scales)
		q := qs[32*c : 32*c+32]
		var s0, s1 int32
		for l := range 32 {
			s0 += int32(q[l]&0xf) * int32(int8(x[64*c+l]))
			s1 += int32(q[l]>>4) * int32(int8(x[64*c+32+l]))
		}
		sum += int32(sc0)*s0 + int32(sc1)*s1
		mins += int32(m0)*int32(bsums[4*c]+bsums[4*c+1]) + int32(m1)*int32(bsums[4*c+2]+bsums[4*c+3])
	}
	return sum, mins
}

// dotBlockQ5_K is dotBlockQ4_K for Q5_K, whose quants take a fifth bit
// from the 32 bytes of high bits.
func dotBlockQ5_K(w, x []byte, bsums *[16]int16) (sum, mins int32) {
	scales, qh, qs := w[4:16], w[16:48], w[48:176]
	x = x[:256]
	for c := range 4 {
		sc0, m0 := scaleMinK4(2*c, scales)
		sc1, m1 := scaleMinK4(2*c+1, scales)
		q := qs[32*c : 32*c+32]
		var s0, s1 int32
		for l := range 32 {
			h0 := int32(qh[l]>>(2*c)&1) << 4
			h1 := int32(qh[l]>>(2*c+1)&1) << 4
			s0 += (int32(q[l]&0xf) | h0) * int32(int8(x[64*c+l]))
			s1 += (int32(q[l]>>4) | h1) * int32(int8(x[64*c+32+l]))
		}
		sum += int32(sc0)*s0 + int32(sc1)*s1
		mins += int32(m0)*int32(bsums[4*c]+bsums[4*c+1]) + int32(m1)*int32(bsums[4*c+2]+bsums[4*c+3])
	}
	return sum, mins
}

// dotBlockQ6_K returns Σ_g sc_g·Σ (q-32)·x over the sixteen groups of 16
// of one Q6_K super-block and 256 int8 activations.
func dotBlockQ6_K(w, x []byte) int32 {
	ql, qh, sc := w[0:128], w[128:192], w[192:208]
	x = x[:256]
	var sum int32
	for h := range 2 {
		l8, h8, s8, x8 := ql[64*h:], qh[32*h:], sc[8*h:], x[128*h:]
		var g [8]int32
		for l := range 32 {
			is := l / 16
			q1 := int32(l8[l]&0xf|(h8[l]>>0&3)<<4) - 32
			q2 := int32(l8[l+32]&0xf|(h8[l]>>2&3)<<4) - 32
			q3 := int32(l8[l]>>4|(h8[l]>>4&3)<<4) - 32
			q4 := int32(l8[l+32]>>4|(h8[l]>>6&3)<<4) - 32
			g[is+0] += q1 * int32(int8(x8[l]))
			g[is+2] += q2 * int32(int8(x8[l+32]))
			g[is+4] += q3 * int32(int8(x8[l+64]))
			g[is+6] += q4 * int32(int8(x8[l+96]))
		}
		for k := range 8 {
			sum += int32(int8(s8[k])) * g[k]
		}
	}
	return sum
}

func checkDot(name string, w, xq []byte, n, blk, wsize, xsize int) error {
	if n < 0 || n%blk != 0 {
		return fmt.Errorf("%s: length %d is not a multiple of %d", name, n, blk)
	}
	nb := n / blk
	if len(w) < nb*wsize || len(xq) < nb*xsize {
		return fmt.Errorf("%s: %d elements need %d weight and %d activation bytes, have %d and %d",
			name, n, nb*wsize, nb*xsize, len(w), len(xq))
	}
	return nil
}

// DotQ8_0 returns the dot product of n elements of Q8_0 weights w with
// activations xq quantized to Q8_0 (by QuantizeQ8_0), computed as ggml's
// reference does: an exact integer sum per block, scaled by the product of
// the two fp16 block scales. It is the portable reference; MatMul is the
// fast path.
func DotQ8_0(w, xq []byte, n int) (float32, error) {
	if err := checkDot("dot Q8_0", w, xq, n, qk8_0, blockQ8_0, blockQ8_0); err != nil {
		return 0, err
	}
	var sum float32
	for b := 0; b < n/qk8_0; b++ {
		wb, xb := w[b*blockQ8_0:], xq[b*blockQ8_0:]
		s := dotBlockQ8_0(wb[2:], xb[2:])
		sum += float32(s) * (f16ToF32(le16(wb)) * f16ToF32(le16(xb)))
	}
	return sum, nil
}

// DotQ4_0Q8_0 is DotQ8_0 for Q4_0 weights.
func DotQ4_0Q8_0(w, xq []byte, n int) (float32, error) {
	if err := checkDot("dot Q4_0", w, xq, n, qk8_0, blockQ4_0, blockQ8_0); err != nil {
		return 0, err
	}
	var sum float32
	for b := 0; b < n/qk8_0; b++ {
		wb, xb := w[b*blockQ4_0:], xq[b*blockQ8_0:]
		s := dotBlockQ4_0(wb[2:], xb[2:])
		sum += float32(s) * (f16ToF32(le16(wb)) * f16ToF32(le16(xb)))
	}
	return sum, nil
}

// DotQ5_0Q8_0 is DotQ8_0 for Q5_0 weights.
func DotQ5_0Q8_0(w, xq []byte, n int) (float32, error) {
	if err := checkDot("dot Q5_0", w, xq, n, qk8_0, blockQ5_0, blockQ8_0); err != nil {
		return 0, err
	}
	var sum float32
	for b := 0; b < n/qk8_0; b++ {
		wb, xb := w[b*blockQ5_0:], xq[b*blockQ8_0:]
		s := dotBlockQ5_0(wb[2:], xb[2:])
		sum += float32(s) * (f16ToF32(le16(wb)) * f16ToF32(le16(xb)))
	}
	return sum, nil
}

func ggmlQ8KBsums(xb []byte) [16]int16 {
	var s [16]int16
	for j := range s {
		s[j] = int16(le16(xb[q8KBsumsOff+2*j:]))
	}
	return s
}

// DotQ4_KQ8_K returns the dot product of n elements of Q4_K weights with
// activations quantized to Q8_K (by QuantizeQ8_K): per super-block
// d·dx·Σ sc·Σqx − dmin·dx·Σ m·Σx with exact integer inner sums. It is the
// portable reference; MatMul is the fast path.
func DotQ4_KQ8_K(w, xq []byte, n int) (float32, error) {
	if err := checkDot("dot Q4_K", w, xq, n, qkK, blockQ4_K, blockQ8_K); err != nil {
		return 0, err
	}
	var sum float32
	for b := 0; b < n/qkK; b++ {
		wb, xb := w[b*blockQ4_K:], xq[b*blockQ8_K:]
		bsums := ggmlQ8KBsums(xb)
		s, m := dotBlockQ4_K(wb, xb[4:], &bsums)
		dx := le32f(xb)
		sum += f16ToF32(le16(wb))*dx*float32(s) - f16ToF32(le16(wb[2:]))*dx*float32(m)
	}
	return sum, nil
}

// DotQ5_KQ8_K is DotQ4_KQ8_K for Q5_K weights.
func DotQ5_KQ8_K(w, xq []byte, n int) (float32, error) {
	if err := checkDot("dot Q5_K", w, xq, n, qkK, blockQ5_K, blockQ8_K); err != nil {
		return 0, err
	}
	var sum float32
	for b := 0; b < n/qkK; b++ {
		wb, xb := w[b*blockQ5_K:], xq[b*blockQ8_K:]
		bsums := ggmlQ8KBsums(xb)
		s, m := dotBlockQ5_K(wb, xb[4:], &bsums)
		dx := le32f(xb)
		sum += f16ToF32(le16(wb))*dx*float32(s) - f16ToF32(le16(wb[2:]))*dx*float32(m)
	}
	return sum, nil
}

// DotQ6_KQ8_K is DotQ4_KQ8_K for Q6_K weights: per super-block
// d·dx·Σ_g sc_g·Σ (q−32)·x.
func DotQ6_KQ8_K(w, xq []byte, n int) (float32, error) {
	if err := checkDot("dot Q6_K", w, xq, n, qkK, blockQ6_K, blockQ8_K); err != nil {
		return 0, err
	}
	var sum float32
	for b := 0; b < n/qkK; b++ {
		wb, xb := w[b*blockQ6_K:], xq[b*blockQ8_K:]
		s := dotBlockQ6_K(wb, xb[4:])
		sum += f16ToF32(le16(wb[208:])) * le32f(xb) * float32(s)
	}
	return sum, nil
}
