package chat

import "strings"

// The families below follow the formats their model cards document. Each
// renderer receives messages whose roles are already normalized to system,
// user, assistant or tool.

func init() {
	register(&Template{name: "plain", render: renderPlain, stops: []string{"\nuser:", "\nsystem:"}})
	register(&Template{name: "chatml", render: renderChatML})
	register(&Template{name: "phi4", render: renderPhi4})
	register(&Template{name: "mistral-v1", render: mistralRenderer(" ", " ", false)})
	register(&Template{name: "mistral-v3", render: mistralRenderer("", " ", true)})
	register(&Template{name: "mistral-v3-tekken", render: mistralRenderer("", "", false)})
	register(&Template{name: "mistral-v7", render: mistralV7Renderer(" ")})
	register(&Template{name: "mistral-v7-tekken", render: mistralV7Renderer("")})
	register(&Template{name: "llama2", render: llama2Renderer(false, false, false)})
	register(&Template{name: "llama2-sys", render: llama2Renderer(true, false, false)})
	register(&Template{name: "llama2-sys-bos", render: llama2Renderer(true, true, false)})
	register(&Template{name: "llama2-sys-strip", render: llama2Renderer(true, false, true)})
	register(&Template{name: "phi3", render: renderPhi3})
	register(&Template{name: "falcon3", render: renderFalcon3})
	register(&Template{name: "zephyr", render: renderZephyr})
	register(&Template{name: "monarch", render: renderMonarch})
	register(&Template{name: "gemma", render: renderGemma})
	register(&Template{name: "orion", render: renderOrion})
	register(&Template{name: "openchat", render: renderOpenChat})
	register(&Template{name: "vicuna", render: vicunaRenderer(false)})
	register(&Template{name: "vicuna-orca", render: vicunaRenderer(true)})
	register(&Template{name: "deepseek", render: renderDeepSeek})
	register(&Template{name: "deepseek2", render: renderDeepSeek2})
	register(&Template{name: "deepseek3", render: renderDeepSeek3})
	register(&Template{name: "command-r", render: renderCommandR})
	register(&Template{name: "llama3", render: renderLlama3})
	register(&Template{name: "llama4", render: renderLlama4})
	register(&Template{name: "chatglm4", render: renderChatGLM4})
	register(&Template{name: "exaone3", render: renderExaone3})
	register(&Template{name: "granite", render: renderGranite})
	register(&Template{name: "megrez", render: renderMegrez})
}

var trim = strings.TrimSpace

// renderPlain writes "role: content" lines and opens an assistant line.
func renderPlain(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString(m.Role + ": " + m.Content + "\n")
	}
	if gen {
		w.WriteString("assistant:")
	}
}

// renderChatML: <|im_start|>role\ncontent<|im_end|>\n (Qwen, Yi, Hermes).
func renderChatML(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	if gen {
		w.WriteString("<|im_start|>assistant\n")
	}
}

// renderPhi4: ChatML with <|im_sep|> after the role and no newlines.
func renderPhi4(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString("<|im_start|>" + m.Role + "<|im_sep|>" + m.Content + "<|im_end|>")
	}
	if gen {
		w.WriteString("<|im_start|>assistant<|im_sep|>")
	}
}

// mistralRenderer renders Mistral's official v1/v3 formats: a system
// message joins the next user turn inside [INST] ... [/INST], and assistant
// replies end with </s>. The formats differ in the spaces around the
// markers and in whether replies are trimmed. Generation needs no opener:
// the reply follows [/INST] directly.
func mistralRenderer(lead, trail string, trimReply bool) func(*strings.Builder, []Message, bool) {
	return func(w *strings.Builder, msgs []Message, _ bool) {
		inTurn := false
		for _, m := range msgs {
			if !inTurn {
				w.WriteString(lead + "[INST]" + trail)
				inTurn = true
			}
			switch m.Role {
			case "system":
				w.WriteString(m.Content + "\n\n")
			case "assistant":
				c := m.Content
				if trimReply {
					c = trim(c)
				}
				w.WriteString(trail + c + "</s>")
				inTurn = false
			default:
				w.WriteString(m.Content + lead + "[/INST]")
			}
		}
	}
}

// mistralV7Renderer renders Mistral's v7 format with its dedicated
// [SYSTEM_PROMPT] block; sp is the space after each opening marker.
func mistralV7Renderer(sp string) func(*strings.Builder, []Message, bool) {
	return func(w *strings.Builder, msgs []Message, _ bool) {
		for _, m := range msgs {
			switch m.Role {
			case "system":
				w.WriteString("[SYSTEM_PROMPT]" + sp + m.Content + "[/SYSTEM_PROMPT]")
			case "assistant":
				w.WriteString(sp + m.Content + "</s>")
			default:
				w.WriteString("[INST]" + sp + m.Content + "[/INST]")
			}
		}
	}
}

// llama2Renderer renders Llama 2 chat: [INST] user [/INST] reply</s>, the
// system prompt in <<SYS>> inside the first turn when the variant supports
// it (otherwise as a plain line), BOS before later turns in the -bos
// variant, and trimmed contents in the -strip variant.
func llama2Renderer(sys, bosInside, strip bool) func(*strings.Builder, []Message, bool) {
	return func(w *strings.Builder, msgs []Message, _ bool) {
		w.WriteString("[INST] ")
		inTurn := true
		for _, m := range msgs {
			c := m.Content
			if strip {
				c = trim(c)
			}
			if !inTurn {
				inTurn = true
				if bosInside {
					w.WriteString("<s>")
				}
				w.WriteString("[INST] ")
			}
			switch m.Role {
			case "system":
				if sys {
					w.WriteString("<<SYS>>\n" + c + "\n<</SYS>>\n\n")
				} else {
					w.WriteString(c + "\n")
				}
			case "assistant":
				w.WriteString(c + "</s>")
				inTurn = false
			default:
				w.WriteString(c + " [/INST]")
			}
		}
	}
}

// renderPhi3: <|role|>\ncontent<|end|>\n.
func renderPhi3(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString("<|" + m.Role + "|>\n" + m.Content + "<|end|>\n")
	}
	if gen {
		w.WriteString("<|assistant|>\n")
	}
}

// renderFalcon3: <|role|>\ncontent\n.
func renderFalcon3(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString("<|" + m.Role + "|>\n" + m.Content + "\n")
	}
	if gen {
		w.WriteString("<|assistant|>\n")
	}
}

// renderZephyr: <|role|>\ncontent<|endoftext|>\n.
func renderZephyr(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString("<|" + m.Role + "|>\n" + m.Content + "<|endoftext|>\n")
	}
	if gen {
		w.WriteString("<|assistant|>\n")
	}
}

// renderMonarch: role\ncontent</s>\n with BOS before every turn but the
// first (whose BOS the tokenizer adds).
func renderMonarch(w *strings.Builder, msgs []Message, gen bool) {
	for i, m := range msgs {
		if i > 0 {
			w.WriteString("<s>")
		}
		w.WriteString(m.Role + "\n" + m.Content + "</s>\n")
	}
	if gen {
		w.WriteString("<s>assistant\n")
	}
}

// renderGemma: <start_of_turn>role\ncontent<end_of_turn>\n with the
// assistant called "model"; Gemma has no system role, so system text is
// put at the start of the next user turn.
func renderGemma(w *strings.Builder, msgs []Message, gen bool) {
	system := ""
	for _, m := range msgs {
		if m.Role == "system" {
			system += trim(m.Content)
			continue
		}
		role := m.Role
		if role == "assistant" {
			role = "model"
		}
		w.WriteString("<start_of_turn>" + role + "\n")
		if system != "" && role != "model" {
			w.WriteString(system + "\n\n")
			system = ""
		}
		w.WriteString(trim(m.Content) + "<end_of_turn>\n")
	}
	if gen {
		w.WriteString("<start_of_turn>model\n")
	}
}

// renderOrion: Human: text\n\nAssistant: </s>reply</s>, system text merged
// into the next user turn.
func renderOrion(w *strings.Builder, msgs []Message, _ bool) {
	system := ""
	for _, m := range msgs {
		switch m.Role {
		case "system":
			system += m.Content
		case "assistant":
			w.WriteString(m.Content + "</s>")
		default:
			w.WriteString("Human: ")
			if system != "" {
				w.WriteString(system + "\n\n")
				system = ""
			}
			w.WriteString(m.Content + "\n\nAssistant: </s>")
		}
	}
}

// renderOpenChat: GPT4 Correct User: text<|end_of_turn|>.
func renderOpenChat(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		switch m.Role {
		case "system":
			w.WriteString(m.Content + "<|end_of_turn|>")
		case "assistant":
			w.WriteString("GPT4 Correct Assistant: " + m.Content + "<|end_of_turn|>")
		default:
			w.WriteString("GPT4 Correct User: " + m.Content + "<|end_of_turn|>")
		}
	}
	if gen {
		w.WriteString("GPT4 Correct Assistant:")
	}
}

// vicunaRenderer: USER: text\nASSISTANT: reply</s>\n; the Orca variant
// prefixes the system prompt with SYSTEM:.
func vicunaRenderer(orca bool) func(*strings.Builder, []Message, bool) {
	return func(w *strings.Builder, msgs []Message, gen bool) {
		for _, m := range msgs {
			switch m.Role {
			case "system":
				if orca {
					w.WriteString("SYSTEM: " + m.Content + "\n")
				} else {
					w.WriteString(m.Content + "\n\n")
				}
			case "assistant":
				w.WriteString("ASSISTANT: " + m.Content + "</s>\n")
			default:
				w.WriteString("USER: " + m.Content + "\n")
			}
		}
		if gen {
			w.WriteString("ASSISTANT:")
		}
	}
}

// renderDeepSeek (DeepSeek Coder): ### Instruction:\n / ### Response:\n.
func renderDeepSeek(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		switch m.Role {
		case "system":
			w.WriteString(m.Content)
		case "assistant":
			w.WriteString("### Response:\n" + m.Content + "\n<|EOT|>\n")
		default:
			w.WriteString("### Instruction:\n" + m.Content + "\n")
		}
	}
	if gen {
		w.WriteString("### Response:\n")
	}
}

// renderDeepSeek2 (DeepSeek V2): User: text\n\nAssistant: reply<｜end▁of▁sentence｜>.
func renderDeepSeek2(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		switch m.Role {
		case "system":
			w.WriteString(m.Content + "\n\n")
		case "assistant":
			w.WriteString("Assistant: " + m.Content + "<｜end▁of▁sentence｜>")
		default:
			w.WriteString("User: " + m.Content + "\n\n")
		}
	}
	if gen {
		w.WriteString("Assistant:")
	}
}

// renderDeepSeek3 (DeepSeek V3 and R1): <｜User｜>text<｜Assistant｜>reply<｜end▁of▁sentence｜>.
func renderDeepSeek3(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		switch m.Role {
		case "system":
			w.WriteString(m.Content + "\n\n")
		case "assistant":
			w.WriteString("<｜Assistant｜>" + m.Content + "<｜end▁of▁sentence｜>")
		default:
			w.WriteString("<｜User｜>" + m.Content)
		}
	}
	if gen {
		w.WriteString("<｜Assistant｜>")
	}
}

// renderCommandR (Cohere Command-R): turn tokens around trimmed contents.
func renderCommandR(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		tok := "<|USER_TOKEN|>"
		switch m.Role {
		case "system":
			tok = "<|SYSTEM_TOKEN|>"
		case "assistant":
			tok = "<|CHATBOT_TOKEN|>"
		}
		w.WriteString("<|START_OF_TURN_TOKEN|>" + tok + trim(m.Content) + "<|END_OF_TURN_TOKEN|>")
	}
	if gen {
		w.WriteString("<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>")
	}
}

// renderLlama3: <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>.
func renderLlama3(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		role := m.Role
		if role == "tool" {
			role = "ipython"
		}
		w.WriteString("<|start_header_id|>" + role + "<|end_header_id|>\n\n" + trim(m.Content) + "<|eot_id|>")
	}
	if gen {
		w.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
}

// renderLlama4: <|header_start|>role<|header_end|>\n\ncontent<|eot|>.
func renderLlama4(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString("<|header_start|>" + m.Role + "<|header_end|>\n\n" + trim(m.Content) + "<|eot|>")
	}
	if gen {
		w.WriteString("<|header_start|>assistant<|header_end|>\n\n")
	}
}

// renderChatGLM4: [gMASK]<sop> then <|role|>\ncontent per turn.
func renderChatGLM4(w *strings.Builder, msgs []Message, gen bool) {
	w.WriteString("[gMASK]<sop>")
	for _, m := range msgs {
		w.WriteString("<|" + m.Role + "|>\n" + m.Content)
	}
	if gen {
		w.WriteString("<|assistant|>\n")
	}
}

// renderExaone3 (EXAONE 3): [|role|]content with [|endofturn|] after
// system and assistant turns.
func renderExaone3(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		switch m.Role {
		case "system":
			w.WriteString("[|system|]" + trim(m.Content) + "[|endofturn|]\n")
		case "assistant":
			w.WriteString("[|assistant|]" + trim(m.Content) + "[|endofturn|]\n")
		default:
			w.WriteString("[|user|]" + trim(m.Content) + "\n")
		}
	}
	if gen {
		w.WriteString("[|assistant|]")
	}
}

// renderGranite (IBM Granite): <|start_of_role|>role<|end_of_role|>content<|end_of_text|>\n.
func renderGranite(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString("<|start_of_role|>" + m.Role + "<|end_of_role|>" + m.Content + "<|end_of_text|>\n")
	}
	if gen {
		w.WriteString("<|start_of_role|>assistant<|end_of_role|>\n")
	}
}

// renderMegrez: <|role_start|>role<|role_end|>content<|turn_end|>.
func renderMegrez(w *strings.Builder, msgs []Message, gen bool) {
	for _, m := range msgs {
		w.WriteString("<|role_start|>" + m.Role + "<|role_end|>" + m.Content + "<|turn_end|>")
	}
	if gen {
		w.WriteString("<|role_start|>assistant<|role_end|>")
	}
}
