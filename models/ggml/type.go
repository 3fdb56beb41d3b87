package ggml

import (
	"fmt"
	"math"
)

// Type is a ggml tensor element type, numbered as in ggml.h and GGUF files.
type Type uint32

// The tensor types a GGUF file may name. Gaps in the numbering are types
// that ggml removed; a file that names one is rejected.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
)

// QK_K is the number of elements in one super-block of the k-quant types.
const QK_K = 256

// typeTraits describes the storage layout of one type: how many elements
// share a block and how many bytes one block takes.
type typeTraits struct {
	name      string
	blockSize int
	typeSize  int
}

var traits = map[Type]typeTraits{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", 32, 18},
	TypeQ4_1:    {"Q4_1", 32, 20},
	TypeQ5_0:    {"Q5_0", 32, 22},
	TypeQ5_1:    {"Q5_1", 32, 24},
	TypeQ8_0:    {"Q8_0", 32, 34},
	TypeQ8_1:    {"Q8_1", 32, 36},
	TypeQ2_K:    {"Q2_K", QK_K, 84},
	TypeQ3_K:    {"Q3_K", QK_K, 110},
	TypeQ4_K:    {"Q4_K", QK_K, 144},
	TypeQ5_K:    {"Q5_K", QK_K, 176},
	TypeQ6_K:    {"Q6_K", QK_K, 210},
	TypeQ8_K:    {"Q8_K", QK_K, 292},
	TypeIQ2_XXS: {"IQ2_XXS", QK_K, 66},
	TypeIQ2_XS:  {"IQ2_XS", QK_K, 74},
	TypeIQ3_XXS: {"IQ3_XXS", QK_K, 98},
	TypeIQ1_S:   {"IQ1_S", QK_K, 50},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18},
	TypeIQ3_S:   {"IQ3_S", QK_K, 110},
	TypeIQ2_S:   {"IQ2_S", QK_K, 82},
	TypeIQ4_XS:  {"IQ4_XS", QK_K, 136},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", QK_K, 56},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", QK_K, 54},
	TypeTQ2_0:   {"TQ2_0", QK_K, 66},
	TypeMXFP4:   {"MXFP4", 32, 17},
}

// Known reports whether t is a type this package can size.
func (t Type) Known() bool {
	_, ok := traits[t]
	return ok
}

// String returns the name ggml uses for t, such as "Q4_K".
func (t Type) String() string {
	if tr, ok := traits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize returns the number of elements in one block of t (0 if unknown).
func (t Type) BlockSize() int { return traits[t].blockSize }

// TypeSize returns the number of bytes in one block of t (0 if unknown).
func (t Type) TypeSize() int { return traits[t].typeSize }

// RowSize returns the number of bytes that n consecutive elements of type t
// occupy. n must be a multiple of the block size.
func (t Type) RowSize(n int) (int, error) {
	tr, ok := traits[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%tr.blockSize != 0 {
		return 0, fmt.Errorf("%s: %d elements is not a multiple of the block size %d", tr.name, n, tr.blockSize)
	}
	blocks := n / tr.blockSize
	if blocks > math.MaxInt/tr.typeSize {
		return 0, fmt.Errorf("%s: %d elements overflow the size computation", tr.name, n)
	}
	return blocks * tr.typeSize, nil
}

// TypeByName returns the type called name (as String prints it).
func TypeByName(name string) (Type, bool) {
	for t, tr := range traits {
		if tr.name == name {
			return t, true
		}
	}
	return 0, false
}
