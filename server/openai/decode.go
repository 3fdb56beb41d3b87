package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// reader reads the fields of one JSON object of a request. The first
// problem it meets is kept in err and later reads return zero values, so a
// decoder reads every field and checks err once.
type reader struct {
	path string // the object's parameter path: "" at the top level
	raw  map[string]json.RawMessage
	err  *Error
}

// newReader parses body as a JSON object.
func newReader(body []byte) (*reader, *Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, Invalid("", CodeInvalidJSON, "The request body is empty: send a JSON object.")
	}
	if body[0] != '{' {
		return nil, Invalid("", CodeInvalidJSON, "The request body must be a JSON object.")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, Invalid("", CodeInvalidJSON, "We could not parse the JSON body of the request: %v.", err)
	}
	return &reader{raw: raw}, nil
}

// param returns the parameter path of a field of this object.
func (r *reader) param(field string) string {
	if r.path == "" {
		return field
	}
	return r.path + "." + field
}

func (r *reader) fail(e *Error) {
	if r.err == nil {
		r.err = e
	}
}

// get returns a field's value; absent fields and null are reported as
// absent, as OpenAI treats them.
func (r *reader) get(field string) (json.RawMessage, bool) {
	if r.err != nil {
		return nil, false
	}
	v, ok := r.raw[field]
	if !ok {
		return nil, false
	}
	v = bytes.TrimSpace(v)
	if kindOf(v) == "null" {
		return nil, false
	}
	return v, true
}

// kindOf names the JSON type of a value the way error messages do.
func kindOf(v json.RawMessage) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func article(kind string) string {
	switch kind[0] {
	case 'a', 'e', 'i', 'o', 'u':
		return "an " + kind
	}
	return "a " + kind
}

func typeError(param, want string, v json.RawMessage) *Error {
	return Invalid(param, CodeInvalidType, "Invalid type for '%s': expected %s, but got %s instead.", param, want, article(kindOf(v)))
}

// decodeString decodes a JSON string value.
func decodeString(param string, v json.RawMessage) (string, *Error) {
	if kindOf(v) != "string" {
		return "", typeError(param, "a string", v)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", Invalid(param, CodeInvalidValue, "Invalid '%s': %v.", param, err)
	}
	return s, nil
}

// decodeInt decodes a JSON number that must be an integer in [lo, hi].
func decodeInt(param string, v json.RawMessage, lo, hi int64) (int64, *Error) {
	if kindOf(v) != "number" {
		return 0, typeError(param, "an integer", v)
	}
	s := string(v)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A fraction, an exponent or a value beyond int64.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr == nil && f != math.Trunc(f) {
			return 0, typeError(param, "an integer", v)
		}
		if ferr != nil || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, Invalid(param, CodeInvalidValue, "Invalid '%s': %s is out of range; expected an integer between %d and %d.", param, s, lo, hi)
		}
		n = int64(f)
	}
	if n < lo || n > hi {
		return 0, Invalid(param, CodeInvalidValue, "Invalid '%s': expected an integer between %d and %d, but got %d instead.", param, lo, hi, n)
	}
	return n, nil
}

// decodeFloat decodes a JSON number in [lo, hi].
func decodeFloat(param string, v json.RawMessage, lo, hi float64) (float64, *Error) {
	if kindOf(v) != "number" {
		return 0, typeError(param, "a number", v)
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, Invalid(param, CodeInvalidValue, "Invalid '%s': %s is not a usable number.", param, v)
	}
	if f < lo || f > hi {
		return 0, Invalid(param, CodeInvalidValue, "Invalid '%s': expected a number between %g and %g, but got %g instead.", param, lo, hi, f)
	}
	return f, nil
}

// decodeArray splits a JSON array into its elements.
func decodeArray(param string, v json.RawMessage) ([]json.RawMessage, *Error) {
	if kindOf(v) != "array" {
		return nil, typeError(param, "an array", v)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, Invalid(param, CodeInvalidValue, "Invalid '%s': %v.", param, err)
	}
	for i := range items {
		items[i] = bytes.TrimSpace(items[i])
	}
	return items, nil
}

// decodeObject returns a reader over a JSON object value.
func decodeObject(param string, v json.RawMessage) (*reader, *Error) {
	if kindOf(v) != "object" {
		return nil, typeError(param, "an object", v)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, Invalid(param, CodeInvalidValue, "Invalid '%s': %v.", param, err)
	}
	return &reader{path: param, raw: raw}, nil
}

// str reads a string field; required fields that are absent fail.
func (r *reader) str(field string, required bool) string {
	v, ok := r.get(field)
	if !ok {
		if required {
			r.missing(field)
		}
		return ""
	}
	s, err := decodeString(r.param(field), v)
	if err != nil {
		r.fail(err)
	}
	return s
}

func (r *reader) missing(field string) {
	p := r.param(field)
	r.fail(Invalid(p, CodeMissingParameter, "Missing required parameter: '%s'.", p))
}

// boolean reads a boolean field, def when absent.
func (r *reader) boolean(field string, def bool) bool {
	v, ok := r.get(field)
	if !ok {
		return def
	}
	switch string(v) {
	case "true":
		return true
	case "false":
		return false
	}
	r.fail(typeError(r.param(field), "a boolean", v))
	return def
}

// integer reads an integer field in [lo, hi]; ok is false when absent or
// invalid.
func (r *reader) integer(field string, lo, hi int64) (n int64, ok bool) {
	v, present := r.get(field)
	if !present {
		return 0, false
	}
	n, err := decodeInt(r.param(field), v, lo, hi)
	if err != nil {
		r.fail(err)
		return 0, false
	}
	return n, true
}

// number reads a number field in [lo, hi]; ok is false when absent or
// invalid.
func (r *reader) number(field string, lo, hi float64) (f float64, ok bool) {
	v, present := r.get(field)
	if !present {
		return 0, false
	}
	f, err := decodeFloat(r.param(field), v, lo, hi)
	if err != nil {
		r.fail(err)
		return 0, false
	}
	return f, true
}

// object reads an object field.
func (r *reader) object(field string) (*reader, bool) {
	v, ok := r.get(field)
	if !ok {
		return nil, false
	}
	o, err := decodeObject(r.param(field), v)
	if err != nil {
		r.fail(err)
		return nil, false
	}
	return o, true
}

// array reads an array field.
func (r *reader) array(field string) ([]json.RawMessage, bool) {
	v, ok := r.get(field)
	if !ok {
		return nil, false
	}
	items, err := decodeArray(r.param(field), v)
	if err != nil {
		r.fail(err)
		return nil, false
	}
	return items, true
}

// MaxStops is the most stop strings a request may give.
const MaxStops = 16

// stops reads "stop": a string or an array of strings. Empty strings are
// dropped.
func (r *reader) stops(field string) []string {
	v, ok := r.get(field)
	if !ok {
		return nil
	}
	p := r.param(field)
	switch kindOf(v) {
	case "string":
		s, err := decodeString(p, v)
		if err != nil {
			r.fail(err)
			return nil
		}
		if s == "" {
			return nil
		}
		return []string{s}
	case "array":
		items, err := decodeArray(p, v)
		if err != nil {
			r.fail(err)
			return nil
		}
		if len(items) > MaxStops {
			r.fail(Invalid(p, CodeInvalidValue, "Invalid '%s': at most %d stop sequences are allowed, got %d.", p, MaxStops, len(items)))
			return nil
		}
		var out []string
		for i, it := range items {
			s, err := decodeString(fmt.Sprintf("%s.[%d]", p, i), it)
			if err != nil {
				r.fail(err)
				return nil
			}
			if s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	r.fail(typeError(p, "a string or an array of strings", v))
	return nil
}

// MaxTokenID bounds token ids in requests; the server checks them against
// the model's vocabulary.
const MaxTokenID = math.MaxInt32

// tokenArray decodes an array of token ids.
func tokenArray(param string, items []json.RawMessage) ([]int32, *Error) {
	ids := make([]int32, len(items))
	for i, it := range items {
		n, err := decodeInt(fmt.Sprintf("%s.[%d]", param, i), it, 0, MaxTokenID)
		if err != nil {
			return nil, err
		}
		ids[i] = int32(n)
	}
	return ids, nil
}

// Prompt is one input text, or one input given as token ids.
type Prompt struct {
	Text string
	// Tokens is not nil when the input was given as token ids.
	Tokens []int32
}

// prompts reads a field that holds a string, an array of strings, an array
// of token ids or an array of arrays of token ids.
func (r *reader) prompts(field string, required bool) []Prompt {
	v, ok := r.get(field)
	if !ok {
		if required {
			r.missing(field)
		}
		return nil
	}
	p := r.param(field)
	switch kindOf(v) {
	case "string":
		s, err := decodeString(p, v)
		if err != nil {
			r.fail(err)
			return nil
		}
		return []Prompt{{Text: s}}
	case "array":
	default:
		r.fail(typeError(p, "a string, an array of strings or an array of token ids", v))
		return nil
	}
	items, err := decodeArray(p, v)
	if err != nil {
		r.fail(err)
		return nil
	}
	if len(items) == 0 {
		r.fail(Invalid(p, CodeInvalidValue, "Invalid '%s': the array is empty.", p))
		return nil
	}
	if kindOf(items[0]) == "number" {
		ids, err := tokenArray(p, items)
		if err != nil {
			r.fail(err)
			return nil
		}
		return []Prompt{{Tokens: ids}}
	}
	out := make([]Prompt, len(items))
	for i, it := range items {
		ip := fmt.Sprintf("%s.[%d]", p, i)
		switch kindOf(it) {
		case "string":
			s, err := decodeString(ip, it)
			if err != nil {
				r.fail(err)
				return nil
			}
			out[i] = Prompt{Text: s}
		case "array":
			sub, err := decodeArray(ip, it)
			if err == nil {
				var ids []int32
				ids, err = tokenArray(ip, sub)
				if ids == nil {
					ids = []int32{}
				}
				out[i] = Prompt{Tokens: ids}
			}
			if err != nil {
				r.fail(err)
				return nil
			}
		default:
			r.fail(typeError(ip, "a string or an array of token ids", it))
			return nil
		}
	}
	return out
}
