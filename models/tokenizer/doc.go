// Package tokenizer converts between text and token ids for the
// vocabularies stored in GGUF files, reproducing llama.cpp's tokenizers
// exactly: SentencePiece-style BPE over scores with byte fallback (the
// "llama" model) and GPT-2 style byte-level BPE over merge ranks (the
// "gpt2" model) with the pre-tokenizers of GPT-2, LLaMA 3, Qwen2, DeepSeek
// LLM, DeepSeek Coder and a few relatives.
//
// A Tokenizer is built once from GGUF metadata with FromGGUF and is then
// read-only and safe for concurrent use. Encode turns text into ids
// (optionally adding BOS/EOS and recognising special tokens written in the
// text); Decode turns ids back into text; a StreamDecoder turns ids into
// text one token at a time without ever splitting a UTF-8 character.
//
// Code point classes (letters, numbers, whitespace, ...) follow llama.cpp's
// own Unicode tables, which this package rebuilds from Go's unicode tables,
// so that pre-tokenization cuts words where llama.cpp cuts them.
package tokenizer
