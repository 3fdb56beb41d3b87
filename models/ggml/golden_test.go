package ggml

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"testing"
)

// splitMix is a tiny deterministic generator (SplitMix64) for test inputs,
// so that inputs are identical on every platform and Go version.
type splitMix struct{ state uint64 }

func (r *splitMix) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// uniform returns a float32 in [-1, 1) with 24 random bits.
func (r *splitMix) uniform() float32 {
	return float32(r.next()>>40)/(1<<24)*2 - 1
}

// bellish returns a sum of four uniforms: a cheap, exactly reproducible
// stand-in for a normal distribution (mean 0, variance 4/3).
func (r *splitMix) bellish() float32 {
	return r.uniform() + r.uniform() + r.uniform() + r.uniform()
}

// goldenInput is a row of 24 super-blocks (6144 values) that exercises the
// quantizers: weight-like data over six orders of magnitude, outliers,
// one-sided blocks, and blocks of zeros, constants, lone spikes, small
// integers (ties in rounding), tiny and large magnitudes.
func goldenInput() []float32 {
	r := &splitMix{state: 2024}
	x := make([]float32, 24*QK_K)
	for i := range x {
		blk := i / QK_K
		switch {
		case blk < 4:
			x[i] = r.uniform()
		case blk < 10:
			x[i] = r.bellish() * float32(math.Pow(10, float64(blk-7)))
		case blk < 13:
			x[i] = r.uniform() * 0.02
			if r.next()%61 == 0 {
				x[i] = r.uniform() * 3
			}
		case blk < 15:
			x[i] = abs32(r.uniform()) + 0.25
			if (i/32)%2 == 1 {
				x[i] = -x[i]
			}
		default:
			switch (i / 32) % 8 {
			case 0:
				x[i] = 0
			case 1:
				x[i] = 0.75
			case 2:
				if i%32 == 5 {
					x[i] = -2.5
				}
			case 3:
				x[i] = float32(int(r.next()%17) - 8)
			case 4:
				x[i] = r.uniform() * 1e-6
			case 5:
				x[i] = r.uniform() * 3e4
			case 6:
				x[i] = float32(int(r.next()%5)-2) * 0.125
			case 7:
				x[i] = r.uniform() * 1e-9
			}
		}
	}
	return x
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func floatBytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	F32RowToBytes(x, b)
	return b
}

// The expected hashes below are SHA-256 digests of the bytes that ggml's
// reference code writes for goldenInput (quantize_row_*_ref) and for the
// dequantization of those bytes (dequantize_row_*), from ggml-quants.c
// built for x86-64 with -O3, where no multiply-add is fused.
var goldenQuantized = []struct {
	t           Type
	quantized   string // hash of Quantize(t, goldenInput())
	dequantized string // hash of the float32 bytes of its dequantization
}{
	{TypeQ4_0, "60a82dd1e336d47aee25a1d5dba84cbb2197e7f18ae0713192318856588cf4a4",
		"f1e265abb75a7dc26e598df05791a4c347c94c04c6877c16f9ed699dbe23bef0"},
	{TypeQ4_1, "57e1376348798872a61e562f979e4de686e5152bb5b45967c27f7e84dc10ebc1",
		"68e13cb438309025fa2e5987142e4662ab052b26778199419650a89f25d489c3"},
	{TypeQ5_0, "6bf1aebe83b3bede25d8dfb751a794352ba2d9b8d62944bbd8cd9147d0586d18",
		"b532f50ba27c1799d5a269c1e3ab2c6714b4fda8639a8fa39365853c5490ea18"},
	{TypeQ5_1, "0fa85192e491fb139308b92bb3d1787a7432640a1e309110dab475342c74a660",
		"8c8d1f6c45387edb4f9d476a2779147f548f386ee399c13bb8f3ef76cefde9c9"},
	{TypeQ8_0, "ceb1f950aede3d7c163f639b35a2b764397d32cbb3477fab33e37c5011497f45",
		"ad637d656b9180f3c6cdd07150e3ef1b68597a06000a996c169f0c3895e042a9"},
	{TypeQ8_1, "3960f13cd9cfa2065735fb9b81fad775d49e051619462c82a9162f42cc4c7307",
		""},
	{TypeQ2_K, "da3068f9b093d8881a0decf36ff0007402f85bd08c18576fb3ff7fe34f213dac",
		"0204ffe5f002ff41f8e7d456250d9e262539c389af37ad2380f3c21929b72d3d"},
	{TypeQ3_K, "8f297f15e7e786416c2e2be61c7a4e8f6f9166e7bd5b82ed757d1454badba4f5",
		"b26fb507c8c611bf6840f3824b9e34c28b6b1bfb8d014988c2d5487dbdc931ea"},
	{TypeQ4_K, "83ac0f48a6fa5f1f0e196b0b5573e5d6b90eb3e1fa759ee7f2d81daedf315336",
		"1cdf938a8a0958863805e37a4902a8ad5a9ffea48bcd37a4b96fdaa2112553ab"},
	{TypeQ5_K, "07558ad98b0d67985fada5baadd820414ffd2513b8c2677447e91fc15c3bbf6d",
		"655ef1e56cf269fc1e84c747b127dc037188f202a868662d3565c6c82a17552c"},
	{TypeQ6_K, "aa230c0205a617d541d15fddc6a87fed46a306e717535177433089a179b9763f",
		"6c6d9918d12ab466548a9594e5ad7e2466c237c02f5ee05f81bf118e3f137a70"},
	{TypeQ8_K, "3a59374a89c691175dd5347bf70f98ae911a016f01273cd53cf80738eb075252",
		"03c7371fd351eb2b965dc0e710d1a6a5010f5e9b36f87e764df7902305fa9199"},
}

// TestQuantizeMatchesReference checks Quantize and Dequantize against the
// recorded output of ggml's reference code, byte for byte.
func TestQuantizeMatchesReference(t *testing.T) {
	x := goldenInput()
	for _, g := range goldenQuantized {
		q, err := Quantize(g.t, x)
		if err != nil {
			t.Fatalf("Quantize(%s): %v", g.t, err)
		}
		if got := sha(q); got != g.quantized {
			t.Errorf("Quantize(%s): sha256 %s, want %s", g.t, got, g.quantized)
		}
		if g.dequantized == "" {
			continue
		}
		y := make([]float32, len(x))
		if err := Dequantize(g.t, q, y); err != nil {
			t.Fatalf("Dequantize(%s): %v", g.t, err)
		}
		if got := sha(floatBytes(y)); got != g.dequantized {
			t.Errorf("Dequantize(%s) of its quantization: sha256 %s, want %s", g.t, got, g.dequantized)
		}
	}
}

// goldenRandomBlocks are SHA-256 digests of ggml's dequantize_row_* output
// for 64 blocks of random bytes per type (randomBlocks), with every NaN
// replaced by 0x7fc00000 so that the digest does not depend on how a
// platform propagates NaN payloads.
var goldenRandomBlocks = map[Type]string{
	TypeQ4_0: "54e36423a6491de848d6f9aa283c0306aeef32a893b5e22eb6fb71dcb31bd3fa",
	TypeQ4_1: "fc71cd208086d091e359e4b4e5f5d45f9548b745b4fcf0fb828d3365487f05bc",
	TypeQ5_0: "314bc71bbb9b7310fca434c38222231b6de694413577416bf98fe7e68554506a",
	TypeQ5_1: "6f1b443f609933d92316167c11bb8b0df7bc938c1d24a98ce22437ad8fb3a986",
	TypeQ8_0: "6814a784e4acf8914f31f507b04548575e55cc33b3c267baac698430fe221c7d",
	TypeQ2_K: "45676121d86a3273bed08b89a0e23f03c3af4bc586696b27c4577283dc155897",
	TypeQ3_K: "3260fac810d10a45bc6bb0de9dad799275d84964dbf795239eb05afc1df58c12",
	TypeQ4_K: "b59827cb6a703c59439efb706b36d6415c3d85cae86dcbb1dfc82d6b3f9733e8",
	TypeQ5_K: "938b68e9cd7d0f1f3c43bb9cdc7aa4c36c563f24ec25b41bb8d4ae6c3a38718c",
	TypeQ6_K: "1eec62a60da8ba547e17f26b4adbef8436137dbc396bc82ea14d082c4d32cb9a",
	TypeQ8_K: "2ffafecfd808f39f74b1ca780697d36f4b705c119bad2aac18f4b705920c6b82",
}

func randomBlocks(t Type) []byte {
	r := &splitMix{state: 99}
	src := make([]byte, 64*t.TypeSize())
	for i := range src {
		src[i] = byte(r.next())
	}
	return src
}

// TestDequantizeRandomBlocksMatchesReference checks the dequantizers on
// arbitrary bit patterns (any scale, any packing) against ggml's output.
func TestDequantizeRandomBlocksMatchesReference(t *testing.T) {
	for typ, want := range goldenRandomBlocks {
		src := randomBlocks(typ)
		y := make([]float32, 64*typ.BlockSize())
		if err := Dequantize(typ, src, y); err != nil {
			t.Fatalf("Dequantize(%s): %v", typ, err)
		}
		for i, v := range y {
			if v != v {
				y[i] = math.Float32frombits(0x7fc00000)
			}
		}
		if got := sha(floatBytes(y)); got != want {
			t.Errorf("Dequantize(%s) of random blocks: sha256 %s, want %s", typ, got, want)
		}
	}
}
