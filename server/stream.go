package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/carryon/carryon/server/scheduler"
)

// eventWriter writes the events of a streamed response and flushes each
// one to the client. The first failed write is kept in err (fasthttp
// reports a departed client only this way) and later writes do nothing.
type eventWriter struct {
	w   *bufio.Writer
	err error
}

// write writes b and flushes.
func (e *eventWriter) write(b ...[]byte) {
	if e.err != nil {
		return
	}
	for _, p := range b {
		if _, err := e.w.Write(p); err != nil {
			e.err = err
			return
		}
	}
	e.err = e.w.Flush()
}

var (
	sseData    = []byte("data: ")
	sseEnd     = []byte("\n\n")
	sseDone    = []byte("data: [DONE]\n\n")
	ssePing    = []byte(": ping\n\n")
	ndjsonLine = []byte("\n")
)

// sse writes one server-sent event holding v as JSON.
func (e *eventWriter) sse(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// The response types hold plain data; this cannot happen.
		panic(fmt.Sprintf("server: marshal stream event: %v", err))
	}
	e.write(sseData, b, sseEnd)
}

// ndjson writes v as one JSON line.
func (e *eventWriter) ndjson(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("server: marshal stream line: %v", err))
	}
	e.write(b, ndjsonLine)
}

// startStream sets the response up as a stream of contentType and runs
// body in fasthttp's stream writer once the handler has returned. body
// owns the generation from then on; after it returns the request is
// recorded and its context released.
func (s *Server) startStream(c *fasthttp.RequestCtx, info *requestInfo, contentType string, g *generation, body func(*eventWriter)) {
	info.streamed = true
	c.SetStatusCode(fasthttp.StatusOK)
	c.SetContentType(contentType)
	c.Response.Header.Set("Cache-Control", "no-cache")
	c.Response.Header.Set("X-Accel-Buffering", "no")
	c.SetBodyStreamWriter(func(w *bufio.Writer) {
		ew := &eventWriter{w: w}
		body(ew)
		if ew.err != nil {
			s.log.Debug("client went away during a stream", "route", info.route, "model", info.model, "error", ew.err)
		}
		g.finish()
		s.record(info, fasthttp.StatusOK)
	})
}

// pump delivers a generation's events to onEvent until the stream ends,
// the client goes away (a failed write cancels the generation) or
// onEvent returns false. While no event arrives for an interval, idle is
// called to keep the connection busy, which also finds clients that left
// during a long prefill. It returns the request's error event, if any.
func (s *Server) pump(g *generation, ew *eventWriter, idle func(), onEvent func(scheduler.Event) bool) error {
	hb := time.Duration(s.cfg.Heartbeat)
	t := time.NewTimer(hb)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-g.events:
			if !ok {
				return nil
			}
			if ev.Err != nil {
				return ev.Err
			}
			g.observe(ev)
			if !onEvent(ev) || ew.err != nil {
				g.cancel()
				return nil
			}
			t.Reset(hb)
		case <-t.C:
			idle()
			if ew.err != nil {
				g.cancel()
				return nil
			}
			t.Reset(hb)
		}
	}
}
