package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/carryon/carryon/server/finetune"
	"github.com/carryon/carryon/server/openai"
)

// listPage is the body of the OpenAI list routes.
type listPage[T any] struct {
	Object  string  `json:"object"` // "list"
	Data    []T     `json:"data"`
	HasMore bool    `json:"has_more"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
}

func newListPage[T any](items []T, more bool, id func(T) string) listPage[T] {
	p := listPage[T]{Object: "list", Data: items, HasMore: more}
	if p.Data == nil {
		p.Data = []T{}
	}
	if len(items) > 0 {
		f, l := id(items[0]), id(items[len(items)-1])
		p.FirstID, p.LastID = &f, &l
	}
	return p
}

// finetuneError turns a store or job error into the OpenAI error it
// answers.
func finetuneError(err error, what string) *openai.Error {
	var oe *openai.Error
	var pe *finetune.ParamError
	switch {
	case errors.As(err, &oe):
		return oe
	case errors.As(err, &pe):
		return openai.Invalid(pe.Param, pe.Code, "%s", pe.Msg)
	case errors.Is(err, finetune.ErrNotFound):
		return openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeNotFound, "", fmt.Sprintf("No such %s: %v.", what, err))
	case errors.Is(err, finetune.ErrInvalid):
		return openai.Invalid("", openai.CodeInvalidValue, "%v.", err)
	}
	return openai.NewError(http.StatusInternalServerError, openai.TypeServer, openai.CodeInternal, "", err.Error())
}

// pageArgs reads the after and limit query parameters.
func pageArgs(c *fasthttp.RequestCtx) (string, int, *openai.Error) {
	args := c.QueryArgs()
	after := string(args.Peek("after"))
	limit := 0
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > finetune.MaxLimit {
			return "", 0, openai.Invalid("limit", openai.CodeInvalidValue, "Invalid 'limit' %q: want an integer from 1 to %d.", v, finetune.MaxLimit)
		}
		limit = n
	}
	return after, limit, nil
}

// tuningAllowed checks the admin key of the file and fine-tuning routes
// (which store data and register heads), answering 401 when it is missing.
// Without a configured key they are open. SDK clients send the key as
// their API key.
func (s *Server) tuningAllowed(c *fasthttp.RequestCtx, info *requestInfo) bool {
	if s.adminAllowed(c) {
		return true
	}
	c.Response.Header.Set("WWW-Authenticate", "Bearer")
	s.writeError(c, info, openai.NewError(http.StatusUnauthorized, openai.TypeInvalidRequest, "invalid_api_key", "",
		"The file and fine-tuning routes need 'Authorization: Bearer <admin key>' on this server."))
	return false
}

// handleFiles serves the file routes:
//
//	POST   /v1/files               upload (multipart: file, purpose=fine-tune)
//	GET    /v1/files               list files, newest first
//	GET    /v1/files/{id}          describe a file
//	GET    /v1/files/{id}/content  the file's bytes
//	DELETE /v1/files/{id}          delete a file
func (s *Server) handleFiles(c *fasthttp.RequestCtx, info *requestInfo) {
	if !s.tuningAllowed(c, info) {
		return
	}
	rest := strings.Trim(strings.TrimPrefix(string(c.Path()), "/v1/files"), "/")
	parts := strings.Split(rest, "/")
	method := string(c.Method())
	files := s.tuning.files
	switch {
	case rest == "" && method == fasthttp.MethodPost:
		s.uploadFile(c, info)
	case rest == "" && method == fasthttp.MethodGet:
		list := files.List()
		if p := string(c.QueryArgs().Peek("purpose")); p != "" {
			kept := list[:0]
			for _, f := range list {
				if f.Purpose == p {
					kept = append(kept, f)
				}
			}
			list = kept
		}
		after, limit, perr := pageArgs(c)
		if perr != nil {
			s.writeError(c, info, perr)
			return
		}
		if limit == 0 {
			limit = finetune.MaxLimit
		}
		page, more := finetune.Page(list, func(f finetune.File) string { return f.ID }, after, limit)
		writeJSON(c, http.StatusOK, newListPage(page, more, func(f finetune.File) string { return f.ID }))
	case len(parts) == 1 && method == fasthttp.MethodGet:
		f, err := files.Get(parts[0])
		if err != nil {
			s.writeError(c, info, finetuneError(err, "file"))
			return
		}
		writeJSON(c, http.StatusOK, f)
	case len(parts) == 2 && parts[1] == "content" && method == fasthttp.MethodGet:
		f, err := files.Get(parts[0])
		var data []byte
		if err == nil {
			data, err = files.Content(parts[0])
		}
		if err != nil {
			s.writeError(c, info, finetuneError(err, "file"))
			return
		}
		c.SetStatusCode(http.StatusOK)
		c.SetContentType("application/octet-stream")
		c.Response.Header.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", f.Filename))
		c.SetBody(data)
	case len(parts) == 1 && method == fasthttp.MethodDelete:
		if err := files.Delete(parts[0]); err != nil {
			s.writeError(c, info, finetuneError(err, "file"))
			return
		}
		writeJSON(c, http.StatusOK, map[string]any{"id": parts[0], "object": "file", "deleted": true})
	default:
		s.writeError(c, info, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeNotFound, "",
			fmt.Sprintf("Unknown request URL: %s %s.", method, c.Path())))
	}
}

// uploadFile stores a multipart upload.
func (s *Server) uploadFile(c *fasthttp.RequestCtx, info *requestInfo) {
	if !strings.HasPrefix(string(c.Request.Header.ContentType()), "multipart/form-data") {
		s.writeError(c, info, openai.Invalid("file", openai.CodeInvalidValue, "Upload files as multipart/form-data with the fields 'file' and 'purpose'."))
		return
	}
	form, err := c.MultipartForm()
	if err != nil {
		s.writeError(c, info, openai.Invalid("file", openai.CodeInvalidValue, "Read the multipart upload: %v.", err))
		return
	}
	purpose := ""
	if v := form.Value["purpose"]; len(v) > 0 {
		purpose = v[0]
	}
	if purpose == "" {
		s.writeError(c, info, openai.Invalid("purpose", openai.CodeMissingParameter, "Missing required parameter: 'purpose'."))
		return
	}
	fhs := form.File["file"]
	if len(fhs) == 0 {
		s.writeError(c, info, openai.Invalid("file", openai.CodeMissingParameter, "Missing required parameter: 'file'."))
		return
	}
	if fhs[0].Size > finetune.MaxFileBytes {
		s.writeError(c, info, openai.Invalid("file", openai.CodeInvalidValue, "The file has %d bytes; at most %d are accepted.", fhs[0].Size, finetune.MaxFileBytes))
		return
	}
	data, err := readPart(fhs[0])
	if err != nil {
		s.writeError(c, info, openai.Invalid("file", openai.CodeInvalidValue, "%v.", err))
		return
	}
	f, err := s.storeFile(fhs[0].Filename, purpose, data)
	if err != nil {
		s.writeError(c, info, finetuneError(err, "file"))
		return
	}
	writeJSON(c, http.StatusOK, f)
}

// handleFineTuning serves the fine-tuning job routes:
//
//	POST /v1/fine_tuning/jobs                    create a job
//	GET  /v1/fine_tuning/jobs                    list jobs, newest first (after, limit)
//	GET  /v1/fine_tuning/jobs/{id}               describe a job
//	POST /v1/fine_tuning/jobs/{id}/cancel        cancel a job
//	GET  /v1/fine_tuning/jobs/{id}/events        its events, newest first (after, limit)
//	GET  /v1/fine_tuning/jobs/{id}/checkpoints   its checkpoint (the final version)
func (s *Server) handleFineTuning(c *fasthttp.RequestCtx, info *requestInfo) {
	if !s.tuningAllowed(c, info) {
		return
	}
	rest := strings.Trim(strings.TrimPrefix(string(c.Path()), "/v1/fine_tuning"), "/")
	parts := strings.Split(rest, "/")
	method := string(c.Method())
	jobs := s.tuning.jobs
	notFound := func() {
		s.writeError(c, info, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, openai.CodeNotFound, "",
			fmt.Sprintf("Unknown request URL: %s %s.", method, c.Path())))
	}
	if parts[0] != "jobs" {
		notFound()
		return
	}
	switch {
	case len(parts) == 1 && method == fasthttp.MethodPost:
		req, perr := finetune.ParseJobRequest(c.PostBody())
		if perr != nil {
			s.writeError(c, info, finetuneError(perr, "job"))
			return
		}
		info.model = req.Model
		j, err := s.createJob(s.ctx, req, nil)
		if err != nil {
			s.writeError(c, info, finetuneError(err, "job"))
			return
		}
		writeJSON(c, http.StatusOK, j)
	case len(parts) == 1 && method == fasthttp.MethodGet:
		after, limit, perr := pageArgs(c)
		if perr != nil {
			s.writeError(c, info, perr)
			return
		}
		page, more := jobs.List(after, limit)
		writeJSON(c, http.StatusOK, newListPage(page, more, func(j finetune.Job) string { return j.ID }))
	case len(parts) == 2 && method == fasthttp.MethodGet:
		r, err := jobs.Get(parts[1])
		if err != nil {
			s.writeError(c, info, finetuneError(err, "fine-tuning job"))
			return
		}
		writeJSON(c, http.StatusOK, r.Job)
	case len(parts) == 3 && parts[2] == "cancel" && method == fasthttp.MethodPost:
		j, err := s.cancelJob(parts[1])
		if err != nil {
			s.writeError(c, info, finetuneError(err, "fine-tuning job"))
			return
		}
		writeJSON(c, http.StatusOK, j)
	case len(parts) == 3 && parts[2] == "events" && method == fasthttp.MethodGet:
		after, limit, perr := pageArgs(c)
		if perr != nil {
			s.writeError(c, info, perr)
			return
		}
		evs, more, err := jobs.Events(parts[1], after, limit)
		if err != nil {
			s.writeError(c, info, finetuneError(err, "fine-tuning job"))
			return
		}
		writeJSON(c, http.StatusOK, newListPage(evs, more, func(e finetune.Event) string { return e.ID }))
	case len(parts) == 3 && parts[2] == "checkpoints" && method == fasthttp.MethodGet:
		r, err := jobs.Get(parts[1])
		if err != nil {
			s.writeError(c, info, finetuneError(err, "fine-tuning job"))
			return
		}
		writeJSON(c, http.StatusOK, newListPage(finetune.Checkpoints(r.Job), false, func(k finetune.Checkpoint) string { return k.ID }))
	default:
		notFound()
	}
}
