package ggml

import (
	"encoding/binary"
	"math"
)

// Half-precision formats.
//
// F16 is IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15) and 10
// mantissa bits. BF16 ("brain float") is the upper half of an IEEE binary32:
// 1 sign bit, 8 exponent bits and 7 mantissa bits. Both are stored as
// little-endian uint16 values in GGUF files.

// f16ToF32Table holds F16ToF32 for every one of the 65536 halves. It is
// filled once at init and only read afterwards; the row converters use it
// because a table load is cheaper than the bit arithmetic per element.
var f16ToF32Table = buildF16Table()

func buildF16Table() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = f16ToF32Bits(uint16(h))
	}
	return &t
}

// F16ToF32 converts the binary16 value h to float32. The conversion is
// exact. A NaN keeps its sign and payload and comes back quiet, as ggml's
// reference conversion does.
func F16ToF32(h uint16) float32 { return f16ToF32Table[h] }

// f16ToF32Bits is the arithmetic behind the table.
func f16ToF32Bits(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f && mant != 0: // NaN: keep the payload, set the quiet bit
		return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
	case exp == 0x1f: // infinity
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 0 && mant == 0: // signed zero
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant * 2^-24, exact in float32
		return math.Float32frombits(sign | math.Float32bits(float32(mant)*0x1p-24))
	default: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	}
}

// F32ToF16 converts f to binary16, rounding to nearest with ties to even.
// Values whose magnitude rounds past 65504 become infinities, magnitudes
// below 2^-24 become (signed) subnormals or zeros, and every NaN becomes the
// canonical quiet NaN 0x7e00 with f's sign. The result equals ggml's
// reference conversion (ggml_compute_fp32_to_fp16) for every input.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	abs := b & 0x7fffffff
	switch {
	case abs > 0x7f800000: // NaN
		return sign | 0x7e00
	case abs >= 0x477ff000: // 65520 and up round to infinity (65504 is odd, ties go up)
		return sign | 0x7c00
	case abs >= 0x38800000: // normal half (>= 2^-14): rebias, round at bit 13
		m := abs - 112<<23
		m += 0xfff + (m>>13)&1
		return sign | uint16(m>>13)
	}
	// The result is a subnormal half (or rounds up to the smallest normal):
	// the value in units of 2^-24, rounded to nearest even.
	e := abs >> 23
	if e < 102 { // below 2^-25: rounds to zero
		return sign
	}
	mant := abs&0x7fffff | 0x800000
	shift := 126 - e // 14..24
	q := mant >> shift
	rem := mant & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++
	}
	return sign | uint16(q)
}

// BF16ToF32 converts the bfloat16 value h to float32. The conversion is
// exact and keeps NaN payloads as they are.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 converts f to bfloat16 the way ggml does: round to nearest with
// ties to even on the dropped 16 bits (so large finite values may round to
// infinity and subnormals are kept, not flushed), and a NaN is truncated and
// forced quiet (bit 6 of the result set), keeping its sign.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F16RowToF32 converts little-endian binary16 values from src into dst. It
// converts min(len(src)/2, len(dst)) values and returns that count.
func F16RowToF32(src []byte, dst []float32) int {
	n := min(len(src)/2, len(dst))
	src, dst = src[:2*n], dst[:n]
	t := f16ToF32Table
	for i := range dst {
		dst[i] = t[binary.LittleEndian.Uint16(src[2*i:])]
	}
	return n
}

// F32RowToF16 converts src into little-endian binary16 values in dst with
// F32ToF16. It converts min(len(src), len(dst)/2) values and returns that
// count.
func F32RowToF16(src []float32, dst []byte) int {
	n := min(len(src), len(dst)/2)
	src, dst = src[:n], dst[:2*n]
	for i, f := range src {
		b := math.Float32bits(f)
		abs := b & 0x7fffffff
		var h uint16
		if abs-0x38800000 < 0x477ff000-0x38800000 {
			// The common case, a normal half, inline (as in F32ToF16).
			m := abs - 112<<23
			m += 0xfff + (m>>13)&1
			h = uint16(b>>16)&0x8000 | uint16(m>>13)
		} else {
			h = F32ToF16(f)
		}
		binary.LittleEndian.PutUint16(dst[2*i:], h)
	}
	return n
}

// BF16RowToF32 converts little-endian bfloat16 values from src into dst. It
// converts min(len(src)/2, len(dst)) values and returns that count.
func BF16RowToF32(src []byte, dst []float32) int {
	n := min(len(src)/2, len(dst))
	src, dst = src[:2*n], dst[:n]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
	return n
}

// F32RowToBF16 converts src into little-endian bfloat16 values in dst with
// F32ToBF16. It converts min(len(src), len(dst)/2) values and returns that
// count.
func F32RowToBF16(src []float32, dst []byte) int {
	n := min(len(src), len(dst)/2)
	src, dst = src[:n], dst[:2*n]
	for i, f := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(f))
	}
	return n
}

// F32RowFromBytes decodes little-endian float32 values from src into dst. It
// decodes min(len(src)/4, len(dst)) values and returns that count.
func F32RowFromBytes(src []byte, dst []float32) int {
	n := min(len(src)/4, len(dst))
	src, dst = src[:4*n], dst[:n]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
	return n
}

// F32RowToBytes encodes src as little-endian float32 values in dst. It
// encodes min(len(src), len(dst)/4) values and returns that count.
func F32RowToBytes(src []float32, dst []byte) int {
	n := min(len(src), len(dst)/4)
	src, dst = src[:n], dst[:4*n]
	for i, f := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
	return n
}
