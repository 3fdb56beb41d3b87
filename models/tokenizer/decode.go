package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// appendPiece appends the bytes that token id stands for, as llama.cpp's
// token_to_piece does: control and unknown tokens only when renderSpecial
// is set, user-defined tokens verbatim, normal SPM tokens with U+2581 read
// as a space, normal BPE tokens mapped back from the byte alphabet, and byte
// tokens as their byte. Up to lstrip leading spaces are dropped. Ids outside
// the vocabulary append nothing.
func (t *Tokenizer) appendPiece(out []byte, id int32, lstrip int, renderSpecial bool) []byte {
	if id < 0 || int(id) >= len(t.pieces) {
		return out
	}
	attr := t.attrs[id]
	if !renderSpecial && attr&(attrUnknown|attrControl) != 0 {
		return out
	}
	start := len(out)
	text := t.pieces[id]
	switch {
	case attr&(attrUnknown|attrControl|attrUserDefined) != 0:
		out = append(out, text...)
	case attr&attrNormal != 0:
		if t.kind == kindSPM {
			out = append(out, strings.ReplaceAll(text, spmSpace, " ")...)
		} else {
			out = appendByteLevel(out, text)
		}
	case attr&attrByte != 0:
		if b, ok := byteTokenValue(text); ok {
			out = append(out, b)
		}
	}
	for k := 0; k < lstrip && start < len(out) && out[start] == ' '; k++ {
		out = append(out[:start], out[start+1:]...)
	}
	return out
}

// appendByteLevel maps a BPE token's text back to the bytes it encodes. A
// code point outside the byte alphabet is written as llama.cpp does:
// "[UNK_BYTE_0x" + its UTF-8 bytes in hex + the whole token text + "]".
func appendByteLevel(out []byte, text string) []byte {
	var cps [16]rune
	for _, cp := range decodeCodepoints(text, cps[:0]) {
		if b, ok := runeToByte[cp]; ok {
			out = append(out, b)
			continue
		}
		out = append(out, "[UNK_BYTE_0x"...)
		for _, c := range appendCodepoint(nil, cp) {
			out = fmt.Appendf(out, "%02x", c)
		}
		out = append(out, text...)
		out = append(out, ']')
	}
	return out
}

// byteTokenValue parses the byte of a "<0xXX>" token.
func byteTokenValue(text string) (byte, bool) {
	if len(text) != 6 || !strings.HasPrefix(text, "<0x") || text[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexValue(text[3])
	lo, ok2 := hexValue(text[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Decode converts ids back to text the way llama.cpp's llama_detokenize
// does with remove_special and unparse_special off: control tokens (BOS,
// EOS, ...) produce nothing, the space that add_space_prefix put before
// the first token is removed, and vocabularies whose pre-tokenizer asks for
// it get llama.cpp's clean-up of spaces before punctuation and
// contractions. Invalid UTF-8 from byte tokens is returned as is.
func (t *Tokenizer) Decode(ids []int32) string { return t.decode(ids, false) }

// DecodeSpecial is Decode with control tokens rendered as their text.
func (t *Tokenizer) DecodeSpecial(ids []int32) string { return t.decode(ids, true) }

func (t *Tokenizer) decode(ids []int32, renderSpecial bool) string {
	out := make([]byte, 0, len(ids)*4)
	strip := 0
	if t.addSpacePrefix {
		strip = 1
	}
	for _, id := range ids {
		out = t.appendPiece(out, id, strip, renderSpecial)
		strip = 0
	}
	if t.cleanSpaces {
		out = cleanUpSpaces(out)
	}
	return string(out)
}

// cleanUpSpaces removes the spaces a word-level tokenizer leaves before
// punctuation (" ?", " !", " .", " ,"), around a lone apostrophe (" ' ")
// and before the contractions 's, 'm, 're and 've, in three passes with the
// exact effects of llama.cpp's in-place clean-up.
func cleanUpSpaces(text []byte) []byte {
	// Pass 1: " ?", " !", " .", " ," lose the space.
	n := len(text)
	w := min(n, 1)
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			w--
		}
		text[w] = x
		w++
	}
	// Pass 2: " ' " becomes "'"; the space after is blanked in place so the
	// next character no longer sees a space before it.
	n = w
	w = min(n, 1)
	for i := 1; i < n; i++ {
		x := text[i]
		if x == '\'' && i+1 < n && text[i-1] == ' ' && text[i+1] == ' ' {
			w--
			i++
			text[i] = 0
		}
		text[w] = x
		w++
	}
	// Pass 3: " 's", " 'm", " 're", " 've" lose the space.
	n = w
	w = min(n, 1)
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < n {
			x1 := text[i+1]
			if x1 == 's' || x1 == 'm' {
				w--
			} else if i+2 < n && x1 != 't' && x1 != 'd' {
				x2 := text[i+2]
				if (x1 == 'r' || x1 == 'v') && x2 == 'e' {
					w--
				}
			}
		}
		text[w] = x
		w++
	}
	return text[:w]
}

// DecodeToken returns the bytes token id stands for on its own (no space
// removal, no clean-up), as a string that may hold part of a UTF-8
// character. Control tokens are empty unless renderSpecial is set.
func (t *Tokenizer) DecodeToken(id int32, renderSpecial bool) string {
	return string(t.appendPiece(nil, id, 0, renderSpecial))
}

// StreamDecoder turns generated ids into text incrementally. It never
// returns part of a UTF-8 character: bytes of a character that byte tokens
// spread over several ids are held back until the character is complete.
// Byte sequences that cannot become valid UTF-8 are passed through as they
// are. Pieces are concatenated as generated, without Decode's first-space
// removal and clean-up, since generated text continues a prompt.
// A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	t             *Tokenizer
	renderSpecial bool
	pending       []byte
}

// NewStreamDecoder returns a decoder for one generated sequence. With
// renderSpecial, control tokens are written as their text.
func (t *Tokenizer) NewStreamDecoder(renderSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, renderSpecial: renderSpecial}
}

// Add appends token id and returns the text that became complete.
func (d *StreamDecoder) Add(id int32) string {
	d.pending = d.t.appendPiece(d.pending, id, 0, d.renderSpecial)
	keep := incompleteTail(d.pending)
	if keep == len(d.pending) {
		return ""
	}
	s := string(d.pending[:len(d.pending)-keep])
	d.pending = append(d.pending[:0], d.pending[len(d.pending)-keep:]...)
	return s
}

// Flush returns whatever is held back (an incomplete character) and resets
// the decoder.
func (d *StreamDecoder) Flush() string {
	s := string(d.pending)
	d.pending = d.pending[:0]
	return s
}

// incompleteTail returns how many trailing bytes of b form the start of a
// UTF-8 character that more bytes could still complete.
func incompleteTail(b []byte) int {
	for k := 1; k <= utf8.UTFMax-1 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c&0xC0 == 0x80 {
			continue // continuation byte: look further back
		}
		if c >= 0xC0 && !utf8.FullRune(b[len(b)-k:]) {
			return k
		}
		return 0
	}
	return 0
}
