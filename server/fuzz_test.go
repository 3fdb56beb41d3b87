package server

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fuzzRoutes are the routes FuzzHandlers sends bodies to.
var fuzzRoutes = []string{
	"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/tokenize", "/detokenize",
	"/api/chat", "/api/generate", "/api/embed", "/api/show",
}

// FuzzHandlers sends arbitrary bodies to every POST route of a server
// with a real (tiny) model, in process, and checks that bad input never
// gets a 5xx status and never crashes the server.
func FuzzHandlers(f *testing.F) {
	cfg := testConfig(f, tinyModel())
	cfg.MaxSequences = 4
	s, err := New(cfg, Options{Version: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Shutdown(f.Context()) })
	for _, seed := range []struct {
		route int
		body  string
	}{
		{0, `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`},
		{0, `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":true,"n":2,"logprobs":true,"top_logprobs":2,"stream_options":{"include_usage":true}}`},
		{0, `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"n":9}`},
		{1, `{"model":"tiny","prompt":[[1,2],[3]],"max_tokens":2,"logprobs":1,"echo":false}`},
		{1, `{"model":"tiny","prompt":"x","max_tokens":0,"echo":true,"stream":true}`},
		{1, `{"model":"tiny","prompt":[399,400],"max_tokens":1}`},
		{2, `{"model":"tiny","input":["a","b"],"dimensions":3,"encoding_format":"base64"}`},
		{3, `{"messages":[{"role":"user","content":"x"}]}`},
		{4, `{"tokens":[1,2,3]}`},
		{5, `{"model":"tiny","messages":[{"role":"user","content":"x"}],"options":{"num_predict":2,"top_p":0,"repeat_penalty":0}}`},
		{6, `{"model":"tiny","prompt":"x","context":[1,2],"options":{"num_predict":2,"seed":-5,"stop":["a"]},"stream":false}`},
		{7, `{"model":"tiny","input":["a"],"dimensions":-1}`},
		{8, `{"name":"tiny"}`},
	} {
		f.Add(uint8(seed.route), []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		var req fasthttp.Request
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(path)
		req.SetBody(body)
		var c fasthttp.RequestCtx
		c.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
		done := make(chan struct{})
		var out []byte
		go func() {
			defer close(done)
			s.handle(&c)
			out = c.Response.Body() // runs a stream writer to its end
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%s %q: no answer after 20s\n%s", path, body, buf[:n])
		}
		if status := c.Response.StatusCode(); status >= 500 {
			t.Fatalf("%s %q: status %d: %s", path, body, status, out)
		}
	})
}
