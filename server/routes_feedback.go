package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/carryon/carryon/server/openai"
	"github.com/carryon/carryon/server/scheduler"
	"github.com/carryon/carryon/server/trafficlog"
)

// Traffic logging. A chat or text completion is logged when its request
// says "store": true, or when the head it names has policy learn. The
// record is published to the traffic log and acknowledged before the
// response goes out (for a stream: before its last chunks and [DONE]).
// A record the log could not take does not fail the request: the
// response says so in the header X-Carryon-Stored: false with the reason
// in X-Carryon-Store-Error (a stream, whose headers have gone, gets a
// comment line ": carryon-store-error <reason>" before its end), and the
// server logs a warning. A stored record is marked X-Carryon-Stored: true.
//
// The tenant of a record is the X-Carryon-Tenant header, else the
// OpenAI-Organization header, else the request's "user" field.

// Headers and limits of traffic logging.
const (
	headerStored     = "X-Carryon-Stored"
	headerStoreError = "X-Carryon-Store-Error"
	headerTenant     = "X-Carryon-Tenant"
	headerOrg        = "OpenAI-Organization"
	// storeTimeout bounds the wait for one record's acknowledgement.
	storeTimeout = 5 * time.Second
	// trafficRetry is how long a failed open of the log is not retried.
	trafficRetry = 5 * time.Second
)

// trafficStore opens the traffic log on first use, so that a server that
// never logs starts no NATS server. Its zero value is ready.
type trafficStore struct {
	mu     sync.Mutex
	log    *trafficlog.Log
	err    error
	failed time.Time
	closed bool
}

// trafficLog returns the open traffic log, opening it on first use: the
// embedded server in <data-dir>/nats, or the server of --nats.
func (s *Server) trafficLog(ctx context.Context) (*trafficlog.Log, error) {
	t := &s.traffic
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return nil, trafficlog.ErrClosed
	case t.log != nil:
		return t.log, nil
	case t.err != nil && time.Since(t.failed) < trafficRetry:
		return nil, t.err
	}
	lg, err := trafficlog.Open(ctx, trafficlog.Options{URL: s.cfg.NATS, Dir: filepath.Join(s.cfg.DataDir, "nats"), Logger: s.log.Named("traffic")})
	if err != nil {
		t.err, t.failed = err, time.Now()
		return nil, err
	}
	where := "embedded, " + filepath.Join(s.cfg.DataDir, "nats")
	if s.cfg.NATS != "" {
		where = "external NATS"
	}
	s.log.Info("traffic log open", "where", where)
	t.log, t.err = lg, nil
	return lg, nil
}

// closeTraffic closes the traffic log, if it was opened.
func (s *Server) closeTraffic() {
	t := &s.traffic
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.log != nil {
		if err := t.log.Close(); err != nil {
			s.log.Warn("close the traffic log", "error", err)
		}
	}
}

// wantStore reads the request's optional boolean "store" and decides
// whether the completion of model m is logged.
func (s *Server) wantStore(body []byte, m *Model) (bool, *openai.Error) {
	var f struct {
		Store json.RawMessage `json:"store"`
	}
	// The body already parsed as an object; only "store" is decoded here.
	_ = json.Unmarshal(body, &f)
	store := false
	if len(f.Store) > 0 && string(f.Store) != "null" {
		if err := json.Unmarshal(f.Store, &store); err != nil {
			return false, openai.Invalid("store", openai.CodeInvalidType, "Invalid type for 'store': expected a boolean, but got %s.", f.Store)
		}
	}
	if !store && m.head != "" && s.heads.policy(m.head) == policyLearn {
		store = true
	}
	return store, nil
}

// tenantOf returns who sent a request: the X-Carryon-Tenant header, else
// the OpenAI-Organization header, else the body's "user".
func tenantOf(c *fasthttp.RequestCtx, user string) string {
	for _, h := range []string{headerTenant, headerOrg} {
		if v := strings.TrimSpace(string(c.Request.Header.Peek(h))); v != "" {
			return v
		}
	}
	return user
}

// pendingSample is a sample being logged: filled when the request starts,
// completed with the text of the first choice when it ends.
type pendingSample struct {
	sample trafficlog.Sample
	text   strings.Builder // the first choice's text, from stream events
}

// newPendingSample starts the sample of generation g under completion id.
func newPendingSample(c *fasthttp.RequestCtx, g *generation, id, kind, user string) *pendingSample {
	m := g.model
	base := m.Name
	if m.head != "" {
		base = m.headOf
	}
	return &pendingSample{sample: trafficlog.Sample{ID: id, Kind: kind, Tenant: tenantOf(c, user), Model: m.Name,
		Head: m.head, Version: g.headVersion, Base: base}}
}

// observe collects the first choice's text from a stream event. It does
// nothing on a nil sample.
func (p *pendingSample) observe(ev scheduler.Event) {
	if p != nil && ev.Choice == 0 {
		p.text.WriteString(ev.Text)
	}
}

// storeSample publishes a finished sample and waits for its
// acknowledgement. A learning head's orchestrator is woken.
func (s *Server) storeSample(p *pendingSample) error {
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	lg, err := s.trafficLog(ctx)
	if err == nil {
		_, err = lg.Append(ctx, &p.sample)
	}
	if err != nil {
		s.log.Warn("completion not stored in the traffic log", "id", p.sample.ID, "model", p.sample.Model, "error", err)
		return err
	}
	if p.sample.Head != "" && s.heads.policy(p.sample.Head) == policyLearn {
		s.learner.poke()
	}
	return nil
}

// storeAndMark stores the sample of a non-streamed response with its
// completion text and marks the response's headers with the outcome.
func (s *Server) storeAndMark(c *fasthttp.RequestCtx, p *pendingSample, completion string) {
	if p == nil {
		return
	}
	p.sample.Completion = completion
	if err := s.storeSample(p); err != nil {
		c.Response.Header.Set(headerStored, "false")
		c.Response.Header.Set(headerStoreError, headerSafe(err.Error()))
		return
	}
	c.Response.Header.Set(headerStored, "true")
}

// storeStreamed stores the sample of a stream that ended well, before
// its last events; a failure is written as a comment line.
func (s *Server) storeStreamed(g *generation, ew *eventWriter) {
	p := g.store
	if p == nil {
		return
	}
	p.sample.Completion = p.text.String()
	if err := s.storeSample(p); err != nil {
		ew.write([]byte(": carryon-store-error " + headerSafe(err.Error()) + "\n\n"))
	}
}

// headerSafe makes a message fit one header or comment line.
func headerSafe(msg string) string {
	msg = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}

// chatSampleMessages converts a chat request's messages for the log.
func chatSampleMessages(msgs []openai.ChatMessage) []trafficlog.Message {
	out := make([]trafficlog.Message, len(msgs))
	for i, m := range msgs {
		out[i] = trafficlog.Message{Role: m.Role, Content: m.Content}
	}
	return out
}

// FeedbackRecord is the answer to POST /v1/feedback.
type FeedbackRecord struct {
	// ID is the stored feedback record's id ("feedback-<sequence>").
	ID     string `json:"id"`
	Object string `json:"object"` // "feedback"
	// CompletionID is the completion the feedback is about.
	CompletionID string   `json:"completion_id"`
	Model        string   `json:"model"`
	Rating       *float64 `json:"rating,omitempty"`
	Correction   *string  `json:"correction,omitempty"`
	Created      int64    `json:"created"`
}

// handleFeedback answers POST /v1/feedback {"id", "rating", "correction"}:
// id is a stored completion's id; rating a number from -1 to 1;
// correction the text the completion should have been (it replaces the
// completion as the training target). At least one of rating and
// correction is required. A negative rating without a correction keeps
// the completion out of training. Unknown ids get 404.
func (s *Server) handleFeedback(c *fasthttp.RequestCtx, info *requestInfo) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(c.PostBody(), &body); err != nil || body == nil {
		s.writeError(c, info, openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeInvalidJSON, "",
			"The body must be a JSON object {\"id\", \"rating\", \"correction\"}."))
		return
	}
	var id, user string
	var f trafficlog.Feedback
	if raw, ok := body["id"]; !ok || string(raw) == "null" {
		s.writeError(c, info, openai.Invalid("id", openai.CodeMissingParameter, "Missing required parameter: 'id' (a completion id)."))
		return
	} else if err := json.Unmarshal(raw, &id); err != nil {
		s.writeError(c, info, openai.Invalid("id", openai.CodeInvalidType, "Invalid type for 'id': expected a string, but got %s.", raw))
		return
	}
	if !trafficlog.ValidID(id) {
		s.writeError(c, info, openai.Invalid("id", openai.CodeInvalidValue, "Invalid 'id': %q is not a completion id.", id))
		return
	}
	if raw, ok := body["rating"]; ok && string(raw) != "null" {
		var r float64
		if err := json.Unmarshal(raw, &r); err != nil || math.IsNaN(r) || r < -1 || r > 1 {
			s.writeError(c, info, openai.Invalid("rating", openai.CodeInvalidValue, "Invalid 'rating': expected a number from -1 to 1, but got %s.", raw))
			return
		}
		f.Rating = &r
	}
	if raw, ok := body["correction"]; ok && string(raw) != "null" {
		var t string
		if err := json.Unmarshal(raw, &t); err != nil || t == "" {
			s.writeError(c, info, openai.Invalid("correction", openai.CodeInvalidValue, "Invalid 'correction': expected a non-empty string, but got %s.", raw))
			return
		}
		f.Correction = &t
	}
	if raw, ok := body["user"]; ok {
		if err := json.Unmarshal(raw, &user); err != nil {
			s.writeError(c, info, openai.Invalid("user", openai.CodeInvalidType, "Invalid type for 'user': expected a string, but got %s.", raw))
			return
		}
	}
	if f.Rating == nil && f.Correction == nil {
		s.writeError(c, info, openai.Invalid("rating", openai.CodeMissingParameter, "Missing parameter: give 'rating', 'correction' or both."))
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	lg, err := s.trafficLog(ctx)
	if err != nil {
		s.writeError(c, info, openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "",
			fmt.Sprintf("The traffic log is unavailable: %v.", err)))
		return
	}
	sample, _, err := lg.Sample(ctx, id)
	if errors.Is(err, trafficlog.ErrNotFound) {
		s.writeError(c, info, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeNotFound, "id",
			fmt.Sprintf("No stored completion has id %s (completions are stored with \"store\": true or by a head whose policy is learn).", id)))
		return
	}
	if err == nil {
		info.model = sample.Model
		f.ID, f.Model, f.Tenant = id, sample.Model, tenantOf(c, user)
		var seq uint64
		if seq, err = lg.AppendFeedback(ctx, &f); err == nil {
			writeJSON(c, http.StatusOK, FeedbackRecord{ID: fmt.Sprintf("feedback-%d", seq), Object: "feedback", CompletionID: id,
				Model: sample.Model, Rating: f.Rating, Correction: f.Correction, Created: f.Time.Unix()})
			return
		}
	}
	s.log.Warn("feedback not stored", "id", id, "error", err)
	s.writeError(c, info, openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "",
		fmt.Sprintf("The traffic log could not take the feedback: %v.", err)))
}
