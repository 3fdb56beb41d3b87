package tokenizer

import (
	"fmt"
	"reflect"
	"testing"
)

func byteIDs(t *testing.T, tok *Tokenizer, bs ...byte) []int32 {
	t.Helper()
	var out []int32
	for _, b := range bs {
		out = append(out, ids(t, tok, fmt.Sprintf("<0x%02X>", b))...)
	}
	return out
}

func TestStreamDecoderHoldsPartialCharacters(t *testing.T) {
	tok := mustTokenizer(t, spmMetadata(spmVocab()))
	a := ids(t, tok, "▁a")[0]
	seq := append([]int32{a}, byteIDs(t, tok, 0xE4, 0xB8, 0xAD, 0xF0, 0x9F, 0xA6, 0x99, 'x', 0xC3, 0xA9)...)
	d := tok.NewStreamDecoder(false)
	var chunks []string
	for _, id := range seq {
		chunks = append(chunks, d.Add(id))
	}
	chunks = append(chunks, d.Flush())
	want := []string{" a", "", "", "中", "", "", "", "🦙", "x", "", "é", ""}
	if !reflect.DeepEqual(chunks, want) {
		t.Errorf("chunks %q, want %q", chunks, want)
	}
}

func TestStreamDecoderInvalidAndFlush(t *testing.T) {
	tok := mustTokenizer(t, spmMetadata(spmVocab()))
	tests := []struct {
		name   string
		bytes  []byte
		chunks []string // one per byte, then Flush
	}{
		// Bytes that can never start or continue a character pass through.
		{"stray continuation", []byte{0x80, 'b'}, []string{"\x80", "b", ""}},
		{"invalid lead", []byte{0xFF, 0xC0}, []string{"\xff", "\xc0", ""}},
		// A lead byte followed by a non-continuation is emitted with it.
		{"broken sequence", []byte{0xE4, 'c'}, []string{"", "\xe4c", ""}},
		// An unfinished character at the end comes out of Flush.
		{"unfinished", []byte{'c', 0xF0, 0x9F}, []string{"c", "", "", "\xf0\x9f"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tok.NewStreamDecoder(false)
			var got []string
			for _, id := range byteIDs(t, tok, tc.bytes...) {
				got = append(got, d.Add(id))
			}
			got = append(got, d.Flush())
			if !reflect.DeepEqual(got, tc.chunks) {
				t.Errorf("chunks %q, want %q", got, tc.chunks)
			}
			if s := d.Add(ids(t, tok, "b")[0]); s != "b" {
				t.Errorf("after Flush, Add = %q", s)
			}
		})
	}
}

func TestStreamDecoderSpecial(t *testing.T) {
	tok := mustTokenizer(t, spmMetadata(spmVocab()))
	seq := ids(t, tok, "<s>", "▁ab", "</s>")
	if got := streamAll(t, tok.NewStreamDecoder(false), seq); got != " ab" {
		t.Errorf("stream = %q", got)
	}
	if got := streamAll(t, tok.NewStreamDecoder(true), seq); got != "<s> ab</s>" {
		t.Errorf("stream with specials = %q", got)
	}
}

func TestIncompleteTail(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0}, {"a", 0}, {"é", 0}, {"\xc3", 1}, {"a\xe4\xb8", 2}, {"\xf0\x9f\xa6", 3},
		{"\xf0\x9f\xa6\x99", 0}, {"\x80\x80\x80", 0}, {"\xff", 0}, {"\xe4a", 0},
		{"\xed\xa0", 0}, // would be a surrogate: never valid
	}
	for _, tc := range tests {
		if got := incompleteTail([]byte(tc.in)); got != tc.want {
			t.Errorf("incompleteTail(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestConcurrentUse encodes and decodes from several goroutines at once;
// run under -race it checks that a Tokenizer is safe to share.
func TestConcurrentUse(t *testing.T) {
	tok := mustTokenizer(t, bpeMetadata("qwen2"))
	want := tok.Encode(benchText[:2000], true, true)
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			ok := true
			for i := 0; i < 5; i++ {
				ok = ok && equalIDs(tok.Encode(benchText[:2000], true, true), want) && tok.Decode(want) == benchText[:2000]
			}
			done <- ok
		}()
	}
	for g := 0; g < 4; g++ {
		if !<-done {
			t.Error("concurrent Encode/Decode disagreed")
		}
	}
}
