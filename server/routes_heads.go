package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/server/openai"
)

// headRegisterTimeout bounds a registration: storing the files and the
// plugin's Load.
const headRegisterTimeout = 2 * time.Minute

// lookupAny finds a base model by name, or a registered head, returned as
// a Model value named after the head with its base model's fields.
func (s *Server) lookupAny(name string) (*Model, bool) {
	if m, ok := s.lookup(name); ok {
		return m, true
	}
	st, ok := s.heads.get(name)
	if !ok {
		return nil, false
	}
	base, ok := s.byName[st.Base]
	if !ok {
		return nil, false
	}
	hm := *base
	hm.Name, hm.head, hm.headOf = name, name, base.Name
	return &hm, true
}

// headRequest is the body of POST /v1/heads and PUT /v1/heads/{id}.
type headRequest struct {
	// ID is the head id (POST only; PUT takes it from the path).
	ID string `json:"id"`
	// Path is a head directory the server can read.
	Path string `json:"path"`
	// Base optionally names the base model; by default the model whose
	// fingerprint the head names.
	Base string `json:"base"`
}

// handleHeads serves the head administration routes:
//
//	GET    /v1/heads               list heads
//	POST   /v1/heads               register a head {"id","path"[,"base"]} or a multipart upload
//	GET    /v1/heads/{id}          describe a head
//	PUT    /v1/heads/{id}          register a new version {"path"} or a multipart upload
//	POST   /v1/heads/{id}          set its policy {"policy","min_samples","holdout","max_samples"}
//	DELETE /v1/heads/{id}          remove a head
//	POST   /v1/heads/{id}/pin      pin a head to its version
//	POST   /v1/heads/{id}/unpin    unpin it
func (s *Server) handleHeads(c *fasthttp.RequestCtx, info *requestInfo) {
	if !s.adminAllowed(c) {
		c.Response.Header.Set("WWW-Authenticate", "Bearer")
		s.writeError(c, info, openai.NewError(http.StatusUnauthorized, openai.TypeInvalidRequest, "invalid_api_key", "",
			"The head administration routes need 'Authorization: Bearer <admin key>'."))
		return
	}
	rest := strings.Trim(strings.TrimPrefix(string(c.Path()), "/v1/heads"), "/")
	parts := strings.Split(rest, "/")
	method := string(c.Method())
	ctx, cancel := context.WithTimeout(s.ctx, headRegisterTimeout)
	defer cancel()
	switch {
	case rest == "" && method == fasthttp.MethodGet:
		writeJSON(c, http.StatusOK, struct {
			Object string       `json:"object"`
			Data   []HeadStatus `json:"data"`
		}{"list", s.heads.list()})
	case rest == "" && method == fasthttp.MethodPost:
		s.registerHead(ctx, c, info, "", true)
	case len(parts) == 1 && method == fasthttp.MethodGet:
		st, ok := s.heads.get(parts[0])
		if !ok {
			s.writeError(c, info, openai.ModelNotFound(parts[0]))
			return
		}
		writeJSON(c, http.StatusOK, st)
	case len(parts) == 1 && method == fasthttp.MethodPut:
		s.registerHead(ctx, c, info, parts[0], false)
	case len(parts) == 1 && method == fasthttp.MethodPost:
		s.setHeadPolicy(c, info, parts[0])
	case len(parts) == 1 && method == fasthttp.MethodDelete:
		if err := s.heads.remove(parts[0]); err != nil {
			s.writeHeadError(c, info, err)
			return
		}
		writeJSON(c, http.StatusOK, map[string]any{"id": parts[0], "object": "head", "deleted": true})
	case len(parts) == 2 && method == fasthttp.MethodPost && (parts[1] == "pin" || parts[1] == "unpin"):
		if _, err := s.heads.pin(parts[0], parts[1] == "pin"); err != nil {
			s.writeHeadError(c, info, err)
			return
		}
		st, _ := s.heads.get(parts[0])
		writeJSON(c, http.StatusOK, st)
	default:
		s.writeError(c, info, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeNotFound, "",
			fmt.Sprintf("Unknown request URL: %s %s.", method, c.Path())))
	}
}

// adminAllowed checks the admin key, when one is configured.
func (s *Server) adminAllowed(c *fasthttp.RequestCtx) bool {
	if s.cfg.AdminKey == "" {
		return true
	}
	auth := string(c.Request.Header.Peek("Authorization"))
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.cfg.AdminKey)) == 1
}

// registerHead registers a head (create) or a new version of head id from
// a JSON body naming a directory or a multipart upload of its two files.
func (s *Server) registerHead(ctx context.Context, c *fasthttp.RequestCtx, info *requestInfo, id string, create bool) {
	var req headRequest
	var hf *headFiles
	var err error
	if strings.HasPrefix(string(c.Request.Header.ContentType()), "multipart/form-data") {
		hf, err = readUpload(c, &req)
	} else {
		if jerr := json.Unmarshal(c.PostBody(), &req); jerr != nil {
			s.writeError(c, info, openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeInvalidJSON, "",
				fmt.Sprintf("The body must be a JSON object {\"id\", \"path\"}: %v.", jerr)))
			return
		}
		if req.Path == "" {
			s.writeError(c, info, openai.Invalid("path", openai.CodeMissingParameter, "Missing required parameter: 'path' (a head directory)."))
			return
		}
		hf, err = readHeadDir(req.Path)
	}
	if err != nil {
		s.writeHeadError(c, info, err)
		return
	}
	if create {
		id = req.ID
		if id == "" {
			s.writeError(c, info, openai.Invalid("id", openai.CodeMissingParameter, "Missing required parameter: 'id'."))
			return
		}
	}
	t0 := time.Now()
	if _, err := s.heads.register(ctx, id, req.Base, hf, create); err != nil {
		s.writeHeadError(c, info, err)
		return
	}
	s.log.Info("head registered", "head", id, "took", time.Since(t0).Round(time.Microsecond))
	st, _ := s.heads.get(id)
	status := http.StatusOK
	if create {
		status = http.StatusCreated
	}
	writeJSON(c, status, st)
}

// readUpload reads a multipart upload: fields id and base, files
// config.json and weights.safetensors.
func readUpload(c *fasthttp.RequestCtx, req *headRequest) (*headFiles, error) {
	form, err := c.MultipartForm()
	if err != nil {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "read the multipart upload: %v", err)
	}
	if v := form.Value["id"]; len(v) > 0 {
		req.ID = v[0]
	}
	if v := form.Value["base"]; len(v) > 0 {
		req.Base = v[0]
	}
	read := func(name string) ([]byte, error) {
		fhs := form.File[name]
		if len(fhs) == 0 {
			return nil, herr(http.StatusBadRequest, openai.CodeMissingParameter, "the upload has no file field %q", name)
		}
		return readPart(fhs[0])
	}
	var hf headFiles
	if hf.config, err = read(carryonhead.ConfigFile); err != nil {
		return nil, err
	}
	if hf.weights, err = read(carryonhead.WeightsFile); err != nil {
		return nil, err
	}
	return hf.parse("upload")
}

func readPart(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "read upload %s: %v", fh.Filename, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeHeadError answers a registry error.
func (s *Server) writeHeadError(c *fasthttp.RequestCtx, info *requestInfo, err error) {
	var he *headError
	if !errors.As(err, &he) {
		he = &headError{status: http.StatusInternalServerError, code: openai.CodeInternal, err: err}
	}
	s.writeError(c, info, openai.NewError(he.status, errorType(he.status), he.code, "", he.Error()+"."))
}

// setHeadPolicy answers POST /v1/heads/{id}: it sets the fields the body
// gives of policy ("serve" or "learn"), min_samples (0: the default), holdout
// (a fraction from 0 to 0.5; 0 takes the default) and max_samples (0: the
// default; otherwise at least min_samples), and answers the head's status.
func (s *Server) setHeadPolicy(c *fasthttp.RequestCtx, info *requestInfo, id string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(c.PostBody(), &fields); err != nil || fields == nil {
		s.writeError(c, info, openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, openai.CodeInvalidJSON, "",
			"The body must be a JSON object with any of \"policy\", \"min_samples\", \"holdout\", \"max_samples\"."))
		return
	}
	var u policyUpdate
	bad := func(param, format string, args ...any) {
		s.writeError(c, info, openai.Invalid(param, openai.CodeInvalidValue, "Invalid '"+param+"': "+format+".", args...))
	}
	integer := func(name string, least int) (*int, bool) {
		raw, ok := fields[name]
		if !ok {
			return nil, true
		}
		var n int
		if err := json.Unmarshal(raw, &n); err != nil || n < least {
			bad(name, "want an integer of at least %d, not %s", least, raw)
			return nil, false
		}
		return &n, true
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		raw := fields[name]
		switch name {
		case "policy":
			var p string
			if err := json.Unmarshal(raw, &p); err != nil || (p != policyServe && p != policyLearn) {
				bad("policy", "want \"serve\" or \"learn\", not %s", raw)
				return
			}
			u.Policy = &p
		case "holdout":
			var f float64
			if err := json.Unmarshal(raw, &f); err != nil || !(f >= 0 && f <= 0.5) {
				bad("holdout", "want a fraction from 0 to 0.5, not %s", raw)
				return
			}
			u.Holdout = &f
		case "min_samples", "max_samples":
		default:
			s.writeError(c, info, openai.Invalid(name, "unknown_parameter", "Unknown parameter: '%s'.", name))
			return
		}
	}
	var ok bool
	if u.MinSamples, ok = integer("min_samples", 0); !ok {
		return
	}
	if u.MaxSamples, ok = integer("max_samples", 0); !ok {
		return
	}
	if err := s.heads.setPolicy(id, u); err != nil {
		s.writeHeadError(c, info, err)
		return
	}
	if u.Policy != nil && *u.Policy == policyLearn {
		s.learner.poke()
	}
	st, _ := s.heads.get(id)
	writeJSON(c, http.StatusOK, st)
}
