package chat

import (
	"fmt"
	"sort"
	"strings"
)

// Message is one turn of a conversation.
type Message struct {
	// Role is "system", "user", "assistant" or "tool"; Render also accepts
	// "developer" (as system) and "function" (as tool).
	Role    string
	Content string
}

// Template renders conversations in one family's prompt format. Templates
// are immutable and safe for concurrent use.
type Template struct {
	name   string
	render func(w *strings.Builder, msgs []Message, addGeneration bool)
	stops  []string
}

// Name returns the family name ("chatml", "llama3", "plain", ...).
func (t *Template) Name() string { return t.name }

// Stops returns stop strings a request should add for this family: text
// that ends an assistant turn but is not an end-of-generation token of the
// vocabulary. Only the plain format has any. The slice must not be changed.
func (t *Template) Stops() []string { return t.stops }

// Render returns the prompt for msgs. With addGeneration, the text that
// opens the assistant's next turn is appended, so that the model's
// continuation is the reply. It fails for an empty conversation and for
// unknown roles.
func (t *Template) Render(msgs []Message, addGeneration bool) (string, error) {
	if len(msgs) == 0 {
		return "", fmt.Errorf("chat: render %s: no messages", t.name)
	}
	norm := make([]Message, len(msgs))
	for i, m := range msgs {
		role, err := normalizeRole(m.Role)
		if err != nil {
			return "", fmt.Errorf("chat: render %s: message %d: %w", t.name, i, err)
		}
		norm[i] = Message{Role: role, Content: m.Content}
	}
	var b strings.Builder
	t.render(&b, norm, addGeneration)
	return b.String(), nil
}

func normalizeRole(role string) (string, error) {
	switch strings.ToLower(role) {
	case "system", "developer":
		return "system", nil
	case "user":
		return "user", nil
	case "assistant":
		return "assistant", nil
	case "tool", "function":
		return "tool", nil
	}
	return "", fmt.Errorf("unknown role %q (want system, developer, user, assistant or tool)", role)
}

// templates holds every family by name; it is filled at init and read-only
// afterwards.
var templates = map[string]*Template{}

func register(t *Template) {
	if _, dup := templates[t.name]; dup {
		panic("chat: template " + t.name + " registered twice")
	}
	templates[t.name] = t
}

// Lookup returns the family called name.
func Lookup(name string) (*Template, bool) {
	t, ok := templates[name]
	return t, ok
}

// Names returns the names of every family, sorted.
func Names() []string {
	names := make([]string, 0, len(templates))
	for n := range templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Plain returns the fallback format for models without a chat template.
func Plain() *Template { return templates["plain"] }

// Detect returns the family of a chat template's Jinja source, or of a
// family name given instead of a source. ok is false, and the plain format
// is returned, when src is empty or no family's markers occur in it.
func Detect(src string) (t *Template, ok bool) {
	if t, ok := templates[strings.TrimSpace(src)]; ok {
		return t, true
	}
	if name := detectFamily(src); name != "" {
		return templates[name], true
	}
	return Plain(), false
}

// detectFamily looks for the markers that identify each family. The order
// matters: several families share markers (Phi-4 is ChatML with
// <|im_sep|>, Mistral's official templates contain [INST] like Llama 2).
func detectFamily(src string) string {
	has := func(s string) bool { return strings.Contains(src, s) }
	switch {
	case src == "":
		return ""
	case has("<|im_start|>"):
		if has("<|im_sep|>") {
			return "phi4"
		}
		return "chatml"
	case strings.HasPrefix(src, "mistral") || has("[INST]"):
		switch {
		case has("[SYSTEM_PROMPT]"):
			return "mistral-v7"
		case has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]"):
			switch {
			case has(" [INST]"):
				return "mistral-v1"
			case has(`"[INST]"`):
				return "mistral-v3-tekken"
			}
			return "mistral-v3"
		case has("content.strip()") || has("content'].strip()"):
			return "llama2-sys-strip"
		case has("bos_token + '[INST]"):
			return "llama2-sys-bos"
		case has("<<SYS>>"):
			return "llama2-sys"
		}
		return "llama2"
	case has("<|assistant|>") && has("<|end|>"):
		return "phi3"
	case has("[gMASK]<sop>"):
		return "chatglm4"
	case has("<|assistant|>") && has("<|user|>") && has("</s>"):
		return "falcon3"
	case has("<|user|>") && has("<|endoftext|>"):
		return "zephyr"
	case has("bos_token + message['role']"):
		return "monarch"
	case has("<start_of_turn>"):
		return "gemma"
	case has(`'\n\nAssistant: ' + eos_token`):
		return "orion"
	case has("GPT4 Correct "):
		return "openchat"
	case has("USER: ") && has("ASSISTANT: "):
		if has("SYSTEM: ") {
			return "vicuna-orca"
		}
		return "vicuna"
	case has("### Instruction:") && has("<|EOT|>"):
		return "deepseek"
	case has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>"):
		return "command-r"
	case has("<|start_header_id|>") && has("<|end_header_id|>"):
		return "llama3"
	case has("'Assistant: ' + message['content'] + eos_token"):
		return "deepseek2"
	case has("<｜Assistant｜>") && has("<｜User｜>"):
		return "deepseek3"
	case has("[|system|]") && has("[|assistant|]") && has("[|endofturn|]"):
		return "exaone3"
	case has("<|start_of_role|>"):
		return "granite"
	case has("<|role_start|>"):
		return "megrez"
	case has("<|header_start|>") && has("<|header_end|>"):
		return "llama4"
	}
	return ""
}
