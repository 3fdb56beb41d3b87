package finetune

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxFileBytes bounds an uploaded training file.
const MaxFileBytes = 64 << 20

// maxReported bounds the line errors one ValidationError lists.
const maxReported = 20

// Message is one turn of a training conversation.
type Message struct {
	// Role is "system", "developer", "user", "assistant" or "tool".
	Role string
	// Content is the turn's text (parts of an array content joined).
	Content string
	// Trained reports whether the turn is a training target: assistant
	// turns whose "weight" is not 0.
	Trained bool
}

// Conversation is one line of a chat-format training file.
type Conversation struct {
	// Line is the line number in the file, from 1.
	Line     int
	Messages []Message
}

// LineError is a problem with one line of a training file.
type LineError struct {
	Line int
	Msg  string
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ValidationError lists what is wrong with a training file: either whole-
// file problems (empty, too large) or up to 20 line errors, with the count
// of all of them.
type ValidationError struct {
	File  string
	Msg   string
	Lines []LineError
	Total int
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid training file %s", e.File)
	if e.Msg != "" {
		b.WriteString(": " + e.Msg)
	}
	for i, l := range e.Lines {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(l.Error())
	}
	if e.Total > len(e.Lines) {
		fmt.Fprintf(&b, " (and %d more)", e.Total-len(e.Lines))
	}
	return b.String()
}

// ParseChat reads a chat-format JSONL training file: one object
// {"messages":[{"role","content"[,"weight"]},...]} per line, blank lines
// ignored. Every conversation needs a non-empty list of messages with known
// roles and string (or text-part array) contents, and at least one
// assistant turn that is trained. Problems are returned as a
// *ValidationError naming each bad line.
func ParseChat(name string, data []byte) ([]Conversation, error) {
	if len(data) == 0 {
		return nil, &ValidationError{File: name, Msg: "the file is empty"}
	}
	if len(data) > MaxFileBytes {
		return nil, &ValidationError{File: name, Msg: fmt.Sprintf("the file has %d bytes; at most %d are accepted", len(data), MaxFileBytes)}
	}
	verr := &ValidationError{File: name}
	bad := func(line int, format string, args ...any) {
		verr.Total++
		if len(verr.Lines) < maxReported {
			verr.Lines = append(verr.Lines, LineError{Line: line, Msg: fmt.Sprintf(format, args...)})
		}
	}
	var out []Conversation
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := i + 1
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		c, err := parseConversation(raw)
		if err != nil {
			bad(line, "%v", err)
			continue
		}
		c.Line = line
		out = append(out, c)
	}
	if verr.Total > 0 {
		return nil, verr
	}
	if len(out) == 0 {
		return nil, &ValidationError{File: name, Msg: "the file holds no conversations (only blank lines)"}
	}
	return out, nil
}

// rawMessage is a message as the file spells it.
type rawMessage struct {
	Role    *string         `json:"role"`
	Content json.RawMessage `json:"content"`
	Weight  *float64        `json:"weight"`
}

func parseConversation(raw []byte) (Conversation, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Conversation{}, fmt.Errorf("not a JSON object: %v", err)
	}
	rm, ok := obj["messages"]
	if !ok {
		return Conversation{}, errors.New(`missing "messages"`)
	}
	var msgs []rawMessage
	if err := json.Unmarshal(rm, &msgs); err != nil {
		return Conversation{}, fmt.Errorf(`"messages" is not an array of message objects: %v`, err)
	}
	if len(msgs) == 0 {
		return Conversation{}, errors.New(`"messages" is empty`)
	}
	var c Conversation
	trained := false
	for k, m := range msgs {
		if m.Role == nil {
			return Conversation{}, fmt.Errorf("message %d has no role", k)
		}
		role := *m.Role
		switch role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return Conversation{}, fmt.Errorf("message %d has role %q (system, developer, user, assistant or tool)", k, role)
		}
		text, err := contentText(m.Content)
		if err != nil {
			return Conversation{}, fmt.Errorf("message %d (%s): %v", k, role, err)
		}
		msg := Message{Role: role, Content: text}
		if m.Weight != nil {
			if role != "assistant" {
				return Conversation{}, fmt.Errorf("message %d (%s): only assistant messages take a weight", k, role)
			}
			if *m.Weight != 0 && *m.Weight != 1 {
				return Conversation{}, fmt.Errorf("message %d: weight %v (0 or 1)", k, *m.Weight)
			}
		}
		if role == "assistant" && (m.Weight == nil || *m.Weight == 1) {
			if text == "" {
				return Conversation{}, fmt.Errorf("message %d: a trained assistant message has empty content", k)
			}
			msg.Trained, trained = true, true
		}
		c.Messages = append(c.Messages, msg)
	}
	if !trained {
		return Conversation{}, errors.New("no assistant message to train on")
	}
	return c, nil
}

// contentText reads a message content: a string, or an array of
// {"type":"text","text":...} parts, joined.
func contentText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("content must be a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", fmt.Errorf("content part of type %q: only text parts are supported", p.Type)
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}
