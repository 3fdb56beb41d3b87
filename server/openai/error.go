package openai

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error types, as OpenAI names them in the "type" field.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"
	TypeUnavailable    = "service_unavailable_error"
)

// Error codes carryon sends in the "code" field.
const (
	CodeInvalidJSON           = "invalid_json"
	CodeInvalidType           = "invalid_type"
	CodeInvalidValue          = "invalid_value"
	CodeMissingParameter      = "missing_required_parameter"
	CodeUnsupportedValue      = "unsupported_value"
	CodeModelNotFound         = "model_not_found"
	CodeContextLengthExceeded = "context_length_exceeded"
	CodeRequestTooLarge       = "request_too_large"
	CodeQueueFull             = "queue_full"
	CodeUnavailable           = "server_unavailable"
	CodeNotFound              = "not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeInternal              = "internal_error"
	CodeGenerationFailed      = "generation_failed"
)

// Error is an API error: its HTTP status and the body's error object. It
// marshals as the object inside the envelope; write it with Envelope.
type Error struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Envelope returns the body OpenAI sends for an error:
// {"error":{"message":...,"type":...,"param":...,"code":...}}.
func (e *Error) Envelope() []byte {
	b, err := json.Marshal(struct {
		Error *Error `json:"error"`
	}{e})
	if err != nil {
		// Every field is a plain string; this cannot happen.
		panic(fmt.Sprintf("openai: marshal error envelope: %v", err))
	}
	return b
}

// NewError returns an error with the given status, type, code and message,
// naming param when it is not empty.
func NewError(status int, typ, code, param, msg string) *Error {
	e := &Error{Status: status, Message: msg, Type: typ, Code: code}
	if param != "" {
		e.Param = &param
	}
	return e
}

// Invalid returns a 400 invalid_request_error for param with the given code.
func Invalid(param, code, format string, args ...any) *Error {
	return NewError(http.StatusBadRequest, TypeInvalidRequest, code, param, fmt.Sprintf(format, args...))
}

// ModelNotFound returns the 404 OpenAI sends for an unknown model.
func ModelNotFound(model string) *Error {
	return NewError(http.StatusNotFound, TypeInvalidRequest, CodeModelNotFound, "model",
		fmt.Sprintf("The model `%s` does not exist or is not loaded. GET /v1/models lists the models this server serves.", model))
}
