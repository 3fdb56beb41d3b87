// Package chat turns a conversation (a list of role/content messages) into
// the prompt text a model was trained on.
//
// GGUF files carry their chat template as Jinja source in
// tokenizer.chat_template. Rather than interpreting Jinja, this package
// recognises the template family from markers in the source (the approach of
// llama.cpp's llm_chat_detect_template) and renders that family's format in
// Go: ChatML (Qwen, Yi, ...), Llama 2 and Mistral [INST] variants, Llama 3
// and 4, Gemma, Phi-3 and Phi-4, DeepSeek, Zephyr, Command-R and others; see
// Names. A model without a template, or with one no family matches, gets the
// plain format: one "role: content" line per message followed by
// "assistant:".
//
// Rendered prompts never start with BOS: the tokenizer adds it when the
// vocabulary asks for it, and special tokens written in the rendered text
// (such as "<|im_start|>") are meant to be parsed as such.
package chat
