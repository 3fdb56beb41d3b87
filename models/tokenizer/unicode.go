package tokenizer

import (
	"sort"
	"unicode"
)

// Code point classes as llama.cpp's tokenizers see them. Each code point has
// exactly one general-category class (cpUndefined for unassigned code
// points) plus, independently, the White_Space bit. The classes come from
// Go's Unicode tables with the few Unicode 15.1 additions patched in, which
// reproduces the tables llama.cpp generates from Python's unicodedata.
const (
	cpUndefined  uint16 = 0x0001 // Cn, and anything beyond U+10FFFF
	cpNumber     uint16 = 0x0002 // \p{N}
	cpLetter     uint16 = 0x0004 // \p{L}
	cpSeparator  uint16 = 0x0008 // \p{Z}
	cpMark       uint16 = 0x0010 // \p{M}
	cpPunct      uint16 = 0x0020 // \p{P}
	cpSymbol     uint16 = 0x0040 // \p{S}
	cpControl    uint16 = 0x0080 // Cc, Cf, Co, Cs
	cpCategories uint16 = 0x00FF
	cpWhitespace uint16 = 0x0100 // White_Space property
)

// replacementChar is what undecodable input bytes become.
const replacementChar = 0xFFFD

// codepointTable answers codepointFlags. It is built once and never
// modified afterwards.
type codepointTable struct {
	bmp    [0x10000]uint16
	astral []flagRange // sorted, disjoint; gaps are unassigned
}

type flagRange struct {
	lo, hi rune
	flags  uint16
}

var cpTable = buildCodepointTable()

func buildCodepointTable() *codepointTable {
	t := &codepointTable{}
	for i := range t.bmp {
		t.bmp[i] = cpUndefined
	}
	classes := []struct {
		tabs  []*unicode.RangeTable
		flags uint16
	}{
		{[]*unicode.RangeTable{unicode.N}, cpNumber},
		{[]*unicode.RangeTable{unicode.L}, cpLetter},
		{[]*unicode.RangeTable{unicode.Z}, cpSeparator},
		{[]*unicode.RangeTable{unicode.M}, cpMark},
		{[]*unicode.RangeTable{unicode.P}, cpPunct},
		{[]*unicode.RangeTable{unicode.S}, cpSymbol},
		{[]*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs}, cpControl},
	}
	set := func(lo, hi, stride rune, f uint16) {
		for c := lo; c <= hi; c += stride {
			if c < 0x10000 {
				t.bmp[c] = f
				continue
			}
			if stride == 1 {
				t.astral = append(t.astral, flagRange{c, hi, f})
				return
			}
			t.astral = append(t.astral, flagRange{c, c, f})
		}
	}
	for _, cl := range classes {
		for _, tab := range cl.tabs {
			for _, r := range tab.R16 {
				set(rune(r.Lo), rune(r.Hi), rune(r.Stride), cl.flags)
			}
			for _, r := range tab.R32 {
				set(rune(r.Lo), rune(r.Hi), rune(r.Stride), cl.flags)
			}
		}
	}
	// Unicode 15.1 additions, absent from Go's Unicode 15.0 tables.
	if unicode.Version == "15.0.0" {
		set(0x2FFC, 0x2FFF, 1, cpSymbol)
		set(0x31EF, 0x31EF, 1, cpSymbol)
		set(0x2EBF0, 0x2EE5D, 1, cpLetter)
	}
	sort.Slice(t.astral, func(i, j int) bool { return t.astral[i].lo < t.astral[j].lo })
	for _, r := range unicode.White_Space.R16 {
		for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
			t.bmp[c] |= cpWhitespace
		}
	}
	return t
}

// codepointFlags returns the class bits of cp. Code points above U+10FFFF,
// which llama.cpp's lenient UTF-8 decoder can produce, are undefined.
func codepointFlags(cp rune) uint16 {
	if cp >= 0 && cp < 0x10000 {
		return cpTable.bmp[cp]
	}
	a := cpTable.astral
	i := sort.Search(len(a), func(i int) bool { return a[i].hi >= cp })
	if i < len(a) && a[i].lo <= cp {
		return a[i].flags
	}
	return cpUndefined
}

// utf8SeqLen is the length of the UTF-8 sequence that a lead byte announces,
// judged from its high nibble only, as llama.cpp's unicode_len_utf8 does
// (continuation bytes count as length 1).
func utf8SeqLen(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

// decodeCodepoints splits s into code points the way llama.cpp does: lead
// and continuation bits are checked, but overlong forms and surrogates are
// accepted; a byte that starts no valid sequence becomes U+FFFD and
// decoding resumes at the next byte.
func decodeCodepoints(s string, out []rune) []rune {
	for i := 0; i < len(s); {
		b := s[i]
		cont := func(k int) bool { return i+k < len(s) && s[i+k]&0xC0 == 0x80 }
		switch {
		case b < 0x80:
			out = append(out, rune(b))
			i++
		case b&0x40 == 0:
			out = append(out, replacementChar)
			i++
		case b&0x20 == 0:
			if !cont(1) {
				out = append(out, replacementChar)
				i++
				continue
			}
			out = append(out, rune(b&0x1F)<<6|rune(s[i+1]&0x3F))
			i += 2
		case b&0x10 == 0:
			if !cont(1) || !cont(2) {
				out = append(out, replacementChar)
				i++
				continue
			}
			out = append(out, rune(b&0x0F)<<12|rune(s[i+1]&0x3F)<<6|rune(s[i+2]&0x3F))
			i += 3
		case b&0x08 == 0:
			if !cont(1) || !cont(2) || !cont(3) {
				out = append(out, replacementChar)
				i++
				continue
			}
			out = append(out, rune(b&0x07)<<18|rune(s[i+1]&0x3F)<<12|rune(s[i+2]&0x3F)<<6|rune(s[i+3]&0x3F))
			i += 4
		default:
			out = append(out, replacementChar)
			i++
		}
	}
	return out
}

// appendCodepoint appends the UTF-8 form of cp. Unlike unicode/utf8 it
// encodes surrogates as three bytes, so that decodeCodepoints and
// appendCodepoint round-trip every sequence decodeCodepoints accepts.
// Values above U+10FFFF (where llama.cpp throws) become U+FFFD.
func appendCodepoint(b []byte, cp rune) []byte {
	switch {
	case cp < 0:
		return appendCodepoint(b, replacementChar)
	case cp < 0x80:
		return append(b, byte(cp))
	case cp < 0x800:
		return append(b, 0xC0|byte(cp>>6), 0x80|byte(cp&0x3F))
	case cp < 0x10000:
		return append(b, 0xE0|byte(cp>>12), 0x80|byte(cp>>6&0x3F), 0x80|byte(cp&0x3F))
	case cp <= 0x10FFFF:
		return append(b, 0xF0|byte(cp>>18), 0x80|byte(cp>>12&0x3F), 0x80|byte(cp>>6&0x3F), 0x80|byte(cp&0x3F))
	}
	return appendCodepoint(b, replacementChar)
}

// The byte-level alphabet of GPT-2 style BPE vocabularies: every byte is
// represented by one printable code point. Printable Latin-1 bytes stand for
// themselves; the others are mapped, in byte order, to U+0100 onwards.
var (
	byteToRune [256]rune
	byteToText [256]string
	runeToByte = map[rune]byte{}
)

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = 256 + n
			n++
		}
		byteToText[b] = string(byteToRune[b])
		runeToByte[byteToRune[b]] = byte(b)
	}
}
