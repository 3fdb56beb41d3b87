package tokenizer

// Model returns tokenizer.ggml.model: "llama" or "gpt2".
func (t *Tokenizer) Model() string { return t.model }

// Pre returns tokenizer.ggml.pre, the pre-tokenizer name ("" when absent).
func (t *Tokenizer) Pre() string { return t.pre }

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// Piece returns the vocabulary text of token id (for example "▁the" or
// "Ġthe"), or "" for an id outside the vocabulary.
func (t *Tokenizer) Piece(id int32) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// TokenID returns the id whose vocabulary text is piece.
func (t *Tokenizer) TokenID(piece string) (int32, bool) {
	id, ok := t.ids[piece]
	return id, ok
}

// BOS returns the beginning-of-sequence id, or -1 when there is none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence id, or -1 when there is none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOT returns the end-of-turn id (such as "<|eot_id|>" or "<|im_end|>"),
// or -1 when there is none.
func (t *Tokenizer) EOT() int32 { return t.eot }

// AddBOS reports whether Encode with addSpecial prepends BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial appends EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether generating id ends generation: EOS, EOT, EOM and
// the other end-of-turn tokens llama.cpp recognises.
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// IsControl reports whether id is a control token (BOS, EOS, chat markup),
// which Decode leaves out.
func (t *Tokenizer) IsControl(id int32) bool {
	return id >= 0 && int(id) < len(t.attrs) && t.attrs[id]&attrControl != 0
}
