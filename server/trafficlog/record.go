package trafficlog

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Errors the log returns; test them with errors.Is.
var (
	// ErrNotFound is returned for a completion id the log does not hold.
	ErrNotFound = errors.New("not in the traffic log")
	// ErrInvalid is returned for a record that cannot be stored as given.
	ErrInvalid = errors.New("invalid traffic log record")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("the traffic log is closed")
	// ErrUnavailable is returned by appends while the connection to an
	// external server is down (the client reconnects on its own).
	ErrUnavailable = errors.New("the traffic log is unavailable")
)

// Kinds of samples.
const (
	// KindChat is a chat completion: Messages and Completion.
	KindChat = "chat"
	// KindCompletion is a text completion: Prompt and Completion.
	KindCompletion = "completion"
)

// Message is one message of a chat conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Sample is one logged completion.
type Sample struct {
	// ID is the completion id the client received ("chatcmpl-...").
	ID string `json:"id"`
	// Kind is KindChat or KindCompletion.
	Kind string `json:"kind"`
	// Tenant is who sent the request, as the server identified it (may
	// be empty).
	Tenant string `json:"tenant,omitempty"`
	// Model is the name the request used: a head id, or a base model's
	// name when no head served it. Samples are filed under it.
	Model string `json:"model"`
	// Head and Version are the head and head version that served the
	// request; both are empty for a base model.
	Head    string `json:"head,omitempty"`
	Version string `json:"version,omitempty"`
	// Base is the base model's name.
	Base string `json:"base"`
	// Messages is the conversation of a chat completion, without the
	// answer.
	Messages []Message `json:"messages,omitempty"`
	// Prompt is the prompt of a text completion.
	Prompt string `json:"prompt,omitempty"`
	// Completion is the generated text (the first choice's).
	Completion string `json:"completion"`
	// Time is when the completion finished.
	Time time.Time `json:"time"`
}

// Feedback is a client's judgement of a logged completion. A later
// feedback record about the same completion replaces an earlier one.
type Feedback struct {
	// ID is the completion id the feedback is about.
	ID string `json:"id"`
	// Model is the sample's Model (the log files feedback beside it).
	Model string `json:"model"`
	// Rating is a score from -1 (bad) to 1 (good); nil when the client
	// gave none.
	Rating *float64 `json:"rating,omitempty"`
	// Correction, when set, is the text the completion should have
	// been; it replaces the completion as the training target.
	Correction *string `json:"correction,omitempty"`
	// Tenant is who sent the feedback (may be empty).
	Tenant string `json:"tenant,omitempty"`
	// Time is when the feedback arrived.
	Time time.Time `json:"time"`
}

// Example is a sample ready for training: its latest feedback joined in
// and its target chosen.
type Example struct {
	Sample
	// Seq is the sample's stream sequence number.
	Seq uint64 `json:"seq"`
	// Feedback is the latest feedback about the sample, if any.
	Feedback *Feedback `json:"feedback,omitempty"`
	// Target is what training should teach: the correction when the
	// feedback has one, else the completion.
	Target string `json:"target"`
}

// Excluded reports whether feedback rules a sample out of training: its
// latest feedback rates it below zero and offers no correction.
func (f *Feedback) Excluded() bool {
	return f != nil && f.Correction == nil && f.Rating != nil && *f.Rating < 0
}

// ValidID reports whether id can be a completion id in the log: 1 to 128
// letters, digits, '-' and '_'.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !tokenByte(id[i]) {
			return false
		}
	}
	return true
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Token escapes a model name to one NATS subject token: letters, digits,
// '-' and '_' stay, every other byte becomes '%' and two hex digits
// ("qwen2.5" -> "qwen2%2E5"). Distinct names give distinct tokens.
func Token(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if tokenByte(c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// subjects of a model's records.
func trafficSubject(model, id string) string  { return trafficPrefix + Token(model) + "." + id }
func feedbackSubject(model, id string) string { return feedbackPrefix + Token(model) + "." + id }

// check validates a sample before it is stored and fills its time.
func (s *Sample) check() error {
	switch {
	case !ValidID(s.ID):
		return fmt.Errorf("%w: sample id %q: want 1 to 128 letters, digits, '-' or '_'", ErrInvalid, s.ID)
	case s.Model == "":
		return fmt.Errorf("%w: sample %s names no model", ErrInvalid, s.ID)
	case s.Kind != KindChat && s.Kind != KindCompletion:
		return fmt.Errorf("%w: sample %s has kind %q, want %q or %q", ErrInvalid, s.ID, s.Kind, KindChat, KindCompletion)
	}
	if s.Time.IsZero() {
		s.Time = time.Now().UTC()
	}
	return nil
}

// check validates feedback before it is stored and fills its time.
func (f *Feedback) check() error {
	switch {
	case !ValidID(f.ID):
		return fmt.Errorf("%w: feedback id %q: want 1 to 128 letters, digits, '-' or '_'", ErrInvalid, f.ID)
	case f.Model == "":
		return fmt.Errorf("%w: feedback about %s names no model", ErrInvalid, f.ID)
	case f.Rating == nil && f.Correction == nil:
		return fmt.Errorf("%w: feedback about %s has neither a rating nor a correction", ErrInvalid, f.ID)
	case f.Rating != nil && (math.IsNaN(*f.Rating) || *f.Rating < -1 || *f.Rating > 1):
		return fmt.Errorf("%w: feedback about %s: rating %v is outside [-1, 1]", ErrInvalid, f.ID, *f.Rating)
	}
	if f.Time.IsZero() {
		f.Time = time.Now().UTC()
	}
	return nil
}
