package ggml

import (
	"encoding/binary"
	"math"
)

// Block layouts of the quantized types, as they lie in GGUF tensor data.
// Every multi-byte field is little-endian; "fp16" fields are binary16
// values (see F16ToF32). Each block type below documents its byte ranges;
// the struct types mirror those layouts field for field, and their Append
// methods write exactly the bytes a GGUF file holds, so that blocks can be
// built by hand (in tests, for example) without counting offsets.

// Block sizes in elements.
const (
	QK4_0 = 32 // elements per Q4_0 block
	QK4_1 = 32 // elements per Q4_1 block
	QK5_0 = 32 // elements per Q5_0 block
	QK5_1 = 32 // elements per Q5_1 block
	QK8_0 = 32 // elements per Q8_0 block
	QK8_1 = 32 // elements per Q8_1 block
)

// kScaleSize is the number of bytes that hold the eight packed 6-bit
// scale/min pairs of a Q4_K or Q5_K block.
const kScaleSize = 12

// BlockQ4_0 is one Q4_0 block: 32 weights in 18 bytes, w = d * (q - 8).
//
//	bytes 0..1   d   fp16 scale
//	bytes 2..17  qs  32 4-bit quants; byte j holds element j in its low
//	                 nibble and element j+16 in its high nibble
type BlockQ4_0 struct {
	D  uint16
	Qs [QK4_0 / 2]uint8
}

// BlockQ4_1 is one Q4_1 block: 32 weights in 20 bytes, w = d*q + m.
//
//	bytes 0..1   d   fp16 scale
//	bytes 2..3   m   fp16 offset (the block minimum)
//	bytes 4..19  qs  32 4-bit quants, nibbles as in Q4_0
type BlockQ4_1 struct {
	D, M uint16
	Qs   [QK4_1 / 2]uint8
}

// BlockQ5_0 is one Q5_0 block: 32 weights in 22 bytes, w = d * (q - 16).
//
//	bytes 0..1   d   fp16 scale
//	bytes 2..5   qh  uint32, bit j is the fifth bit of element j
//	bytes 6..21  qs  the low 4 bits, nibbles as in Q4_0
type BlockQ5_0 struct {
	D  uint16
	Qh uint32
	Qs [QK5_0 / 2]uint8
}

// BlockQ5_1 is one Q5_1 block: 32 weights in 24 bytes, w = d*q + m.
//
//	bytes 0..1   d   fp16 scale
//	bytes 2..3   m   fp16 offset
//	bytes 4..7   qh  uint32, bit j is the fifth bit of element j
//	bytes 8..23  qs  the low 4 bits, nibbles as in Q4_0
type BlockQ5_1 struct {
	D, M uint16
	Qh   uint32
	Qs   [QK5_1 / 2]uint8
}

// BlockQ8_0 is one Q8_0 block: 32 weights in 34 bytes, w = d * q.
//
//	bytes 0..1   d   fp16 scale
//	bytes 2..33  qs  32 int8 quants
type BlockQ8_0 struct {
	D  uint16
	Qs [QK8_0]int8
}

// BlockQ8_1 is one Q8_1 block: 32 values in 36 bytes, w = d * q, kept as
// an activation format of dot products with Q4_1 and Q5_1 weights.
//
//	bytes 0..1   d   fp16 scale
//	bytes 2..3   s   fp16 d * sum(qs)
//	bytes 4..35  qs  32 int8 quants
type BlockQ8_1 struct {
	D, S uint16
	Qs   [QK8_1]int8
}

// BlockQ2_K is one Q2_K super-block: 256 weights in 84 bytes, in 16
// sub-blocks of 16. Sub-block i has a 4-bit scale sc and a 4-bit min mn
// and w = d*sc*q - dmin*mn with 2-bit q.
//
//	bytes 0..15   scales  byte i: sc of sub-block i (low nibble), mn (high)
//	bytes 16..79  qs      2-bit quants; for half h (elements 128h..128h+127)
//	                      byte 16+32h+l holds element 128h+32s+l in bits
//	                      2s..2s+1, for s = 0..3 and l = 0..31
//	bytes 80..81  d       fp16 scale of the sub-block scales
//	bytes 82..83  dmin    fp16 scale of the sub-block mins
type BlockQ2_K struct {
	Scales  [QK_K / 16]uint8
	Qs      [QK_K / 4]uint8
	D, DMin uint16
}

// BlockQ3_K is one Q3_K super-block: 256 weights in 110 bytes, in 16
// sub-blocks of 16 with signed 6-bit scales sc (stored as sc+32) and
// w = d*sc*(q - 4) with 3-bit q.
//
//	bytes 0..31    hmask   the third bit of q: element 32b+l has it in bit
//	                       b of byte l (l = 0..31, b = 0..7)
//	bytes 32..95   qs      the low 2 bits, packed as in Q2_K
//	bytes 96..107  scales  sub-block i: low 4 bits in byte i (i < 8, low
//	                       nibble) or byte i-8 (i >= 8, high nibble); high 2
//	                       bits in byte 104+i%4, bits 2*(i/4)..2*(i/4)+1
//	bytes 108..109 d       fp16 super-block scale
type BlockQ3_K struct {
	HMask  [QK_K / 8]uint8
	Qs     [QK_K / 4]uint8
	Scales [12]uint8
	D      uint16
}

// BlockQ4_K is one Q4_K super-block: 256 weights in 144 bytes, in 8
// sub-blocks of 32. Sub-block i has a 6-bit scale sc[i] and a 6-bit min
// m[i], and w = d*sc[i]*q - dmin*m[i] with 4-bit q.
//
//	bytes 0..1    d       fp16 scale of the sub-block scales
//	bytes 2..3    dmin    fp16 scale of the sub-block mins
//	bytes 4..15   scales  the 8 (sc, m) pairs in 12 bytes; with s = scales:
//	                      i < 4:  sc[i] = s[i]&63, m[i] = s[i+4]&63
//	                      i >= 4: sc[i] = s[i+4]&15 | (s[i-4]>>6)<<4,
//	                              m[i]  = s[i+4]>>4 | (s[i]>>6)<<4
//	bytes 16..143 qs      4-bit quants; byte 16+32c+l holds element 64c+l
//	                      in its low nibble and element 64c+32+l in its high
//	                      nibble (c = 0..3, l = 0..31)
type BlockQ4_K struct {
	D, DMin uint16
	Scales  [kScaleSize]uint8
	Qs      [QK_K / 2]uint8
}

// BlockQ5_K is one Q5_K super-block: 256 weights in 176 bytes, laid out as
// Q4_K with a fifth bit per weight: w = d*sc[i]*q - dmin*m[i], 5-bit q.
//
//	bytes 0..1    d       fp16 scale of the sub-block scales
//	bytes 2..3    dmin    fp16 scale of the sub-block mins
//	bytes 4..15   scales  the 8 (sc, m) pairs, packed as in Q4_K
//	bytes 16..47  qh      fifth bits: element 32b+l has it in bit b of
//	                      byte 16+l (b = 0..7, l = 0..31)
//	bytes 48..175 qs      low 4 bits, packed as the qs of Q4_K
type BlockQ5_K struct {
	D, DMin uint16
	Scales  [kScaleSize]uint8
	Qh      [QK_K / 8]uint8
	Qs      [QK_K / 2]uint8
}

// BlockQ6_K is one Q6_K super-block: 256 weights in 210 bytes, in 16
// sub-blocks of 16 with int8 scales sc and w = d*sc*(q - 32), 6-bit q.
//
//	bytes 0..127    ql      low 4 bits: for half h (elements 128h..+127),
//	                        byte 64h+l holds element 128h+l (low nibble) and
//	                        128h+64+l (high nibble); byte 64h+32+l holds
//	                        128h+32+l (low) and 128h+96+l (high), l = 0..31
//	bytes 128..191  qh      high 2 bits: byte 128+32h+l holds those of
//	                        elements 128h+l, +32, +64, +96 in bits 0-1, 2-3,
//	                        4-5, 6-7
//	bytes 192..207  scales  int8 scale of each sub-block of 16
//	bytes 208..209  d       fp16 super-block scale
type BlockQ6_K struct {
	Ql     [QK_K / 2]uint8
	Qh     [QK_K / 4]uint8
	Scales [QK_K / 16]int8
	D      uint16
}

// BlockQ8_K is one Q8_K super-block: 256 values in 292 bytes, w = d * q.
// It is the activation format of the k-quant dot products.
//
//	bytes 0..3     d      float32 scale (not fp16)
//	bytes 4..259   qs     256 int8 quants
//	bytes 260..291 bsums  16 int16 sums of qs over each group of 16
type BlockQ8_K struct {
	D     float32
	Qs    [QK_K]int8
	BSums [QK_K / 16]int16
}

// Append appends the 18 bytes of b to dst and returns the extended slice.
func (b *BlockQ4_0) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	return append(dst, b.Qs[:]...)
}

// Append appends the 20 bytes of b to dst and returns the extended slice.
func (b *BlockQ4_1) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	dst = binary.LittleEndian.AppendUint16(dst, b.M)
	return append(dst, b.Qs[:]...)
}

// Append appends the 22 bytes of b to dst and returns the extended slice.
func (b *BlockQ5_0) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	dst = binary.LittleEndian.AppendUint32(dst, b.Qh)
	return append(dst, b.Qs[:]...)
}

// Append appends the 24 bytes of b to dst and returns the extended slice.
func (b *BlockQ5_1) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	dst = binary.LittleEndian.AppendUint16(dst, b.M)
	dst = binary.LittleEndian.AppendUint32(dst, b.Qh)
	return append(dst, b.Qs[:]...)
}

// Append appends the 34 bytes of b to dst and returns the extended slice.
func (b *BlockQ8_0) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	return appendInt8s(dst, b.Qs[:])
}

// Append appends the 36 bytes of b to dst and returns the extended slice.
func (b *BlockQ8_1) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	dst = binary.LittleEndian.AppendUint16(dst, b.S)
	return appendInt8s(dst, b.Qs[:])
}

// Append appends the 84 bytes of b to dst and returns the extended slice.
func (b *BlockQ2_K) Append(dst []byte) []byte {
	dst = append(dst, b.Scales[:]...)
	dst = append(dst, b.Qs[:]...)
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	return binary.LittleEndian.AppendUint16(dst, b.DMin)
}

// Append appends the 110 bytes of b to dst and returns the extended slice.
func (b *BlockQ3_K) Append(dst []byte) []byte {
	dst = append(dst, b.HMask[:]...)
	dst = append(dst, b.Qs[:]...)
	dst = append(dst, b.Scales[:]...)
	return binary.LittleEndian.AppendUint16(dst, b.D)
}

// Append appends the 144 bytes of b to dst and returns the extended slice.
func (b *BlockQ4_K) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	dst = binary.LittleEndian.AppendUint16(dst, b.DMin)
	dst = append(dst, b.Scales[:]...)
	return append(dst, b.Qs[:]...)
}

// Append appends the 176 bytes of b to dst and returns the extended slice.
func (b *BlockQ5_K) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, b.D)
	dst = binary.LittleEndian.AppendUint16(dst, b.DMin)
	dst = append(dst, b.Scales[:]...)
	dst = append(dst, b.Qh[:]...)
	return append(dst, b.Qs[:]...)
}

// Append appends the 210 bytes of b to dst and returns the extended slice.
func (b *BlockQ6_K) Append(dst []byte) []byte {
	dst = append(dst, b.Ql[:]...)
	dst = append(dst, b.Qh[:]...)
	dst = appendInt8s(dst, b.Scales[:])
	return binary.LittleEndian.AppendUint16(dst, b.D)
}

// Append appends the 292 bytes of b to dst and returns the extended slice.
func (b *BlockQ8_K) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(b.D))
	dst = appendInt8s(dst, b.Qs[:])
	for _, s := range b.BSums {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}

func appendInt8s(dst []byte, v []int8) []byte {
	for _, q := range v {
		dst = append(dst, uint8(q))
	}
	return dst
}

// ScaleMinK4 returns the 6-bit scale and min of sub-block j (0..7) from the
// 12 packed scale bytes of a Q4_K or Q5_K block (see BlockQ4_K).
func ScaleMinK4(j int, scales []byte) (sc, m uint8) {
	if j < 4 {
		return scales[j] & 63, scales[j+4] & 63
	}
	return scales[j+4]&0xf | (scales[j-4]>>6)<<4, scales[j+4]>>4 | (scales[j]>>6)<<4
}

// ScaleQ3_K returns the signed 6-bit scale of sub-block j (0..15) from the
// 12 packed scale bytes of a Q3_K block (see BlockQ3_K).
func ScaleQ3_K(j int, scales []byte) int8 {
	var lo uint8
	if j < 8 {
		lo = scales[j] & 0xf
	} else {
		lo = scales[j-8] >> 4
	}
	hi := (scales[8+j%4] >> (2 * (j / 4))) & 3
	return int8(lo|hi<<4) - 32
}
