package finetune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
)

// Setting is a hyperparameter that is either "auto" (unset: the server
// chooses) or a number.
type Setting struct {
	Value float64
	Set   bool
}

// Num returns a set Setting.
func Num(v float64) Setting { return Setting{Value: v, Set: true} }

// MarshalJSON writes "auto" for an unset Setting, the number otherwise.
func (s Setting) MarshalJSON() ([]byte, error) {
	if !s.Set {
		return []byte(`"auto"`), nil
	}
	return []byte(strconv.FormatFloat(s.Value, 'g', -1, 64)), nil
}

// UnmarshalJSON reads "auto", null or a number.
func (s *Setting) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"auto"`, "null":
		*s = Setting{}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf(`want "auto" or a number, got %s`, b)
	}
	*s = Num(v)
	return nil
}

// Hyperparameters are a job's training settings: OpenAI's three, and
// carryon's extensions that shape the head and its run.
type Hyperparameters struct {
	NEpochs                Setting `json:"n_epochs"`
	BatchSize              Setting `json:"batch_size"`
	LearningRateMultiplier Setting `json:"learning_rate_multiplier"`

	// Steps, when set, fixes the number of optimizer steps (instead of
	// n_epochs).
	Steps int `json:"steps,omitempty"`
	// Layers is the head's transformer blocks (1 to 4) and Dim its width,
	// for a new head; Heads its attention heads.
	Layers int `json:"layers,omitempty"`
	Dim    int `json:"dim,omitempty"`
	Heads  int `json:"heads,omitempty"`
	// Alpha is the scale of the head's delta (learned when LearnAlpha).
	Alpha      *float64 `json:"alpha,omitempty"`
	LearnAlpha bool     `json:"learn_alpha,omitempty"`
	// ValidationFraction is the share of the training file held out for
	// validation when no validation file is given; 0 means the default.
	ValidationFraction float64 `json:"validation_fraction,omitempty"`
}

// JobRequest is a parsed POST /v1/fine_tuning/jobs body.
type JobRequest struct {
	Model           string            `json:"model"`
	TrainingFile    string            `json:"training_file"`
	ValidationFile  string            `json:"validation_file,omitempty"`
	Suffix          string            `json:"suffix,omitempty"`
	Seed            *int64            `json:"seed,omitempty"`
	Hyperparameters Hyperparameters   `json:"hyperparameters"`
	Metadata        map[string]string `json:"metadata,omitempty"`
}

// ParamError is a request problem about one field, answered with 400.
type ParamError struct {
	Param string
	Code  string
	Msg   string
}

func (e *ParamError) Error() string { return e.Msg }

// Codes of ParamError.
const (
	CodeMissing = "missing_required_parameter"
	CodeInvalid = "invalid_value"
	CodeJSON    = "invalid_json"
)

func perr(param, code, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// suffixPattern is what a model-name suffix may hold: it becomes part of a
// head id (ft:<base>:<suffix>:<job>), so no colons.
var suffixPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ParseJobRequest decodes and checks a job request body. Hyperparameters
// may come under "hyperparameters", under
// "method":{"type":"supervised","supervised":{"hyperparameters":...}}, and
// carryon's extensions also under a "carryon" object; later ones override
// earlier ones field by field. Unknown hyperparameters are errors.
func ParseJobRequest(body []byte) (JobRequest, *ParamError) {
	var raw struct {
		Model           *string           `json:"model"`
		TrainingFile    *string           `json:"training_file"`
		ValidationFile  *string           `json:"validation_file"`
		Suffix          *string           `json:"suffix"`
		Seed            *int64            `json:"seed"`
		Hyperparameters json.RawMessage   `json:"hyperparameters"`
		Carryon         json.RawMessage   `json:"carryon"`
		Metadata        map[string]string `json:"metadata"`
		Method          *struct {
			Type       string `json:"type"`
			Supervised *struct {
				Hyperparameters json.RawMessage `json:"hyperparameters"`
			} `json:"supervised"`
		} `json:"method"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return JobRequest{}, perr("", CodeJSON, "The body must be a JSON object describing a fine-tuning job: %v.", err)
	}
	var req JobRequest
	if raw.Model == nil || *raw.Model == "" {
		return req, perr("model", CodeMissing, "Missing required parameter: 'model'.")
	}
	if raw.TrainingFile == nil || *raw.TrainingFile == "" {
		return req, perr("training_file", CodeMissing, "Missing required parameter: 'training_file'.")
	}
	req.Model, req.TrainingFile = *raw.Model, *raw.TrainingFile
	if raw.ValidationFile != nil {
		req.ValidationFile = *raw.ValidationFile
	}
	if raw.Suffix != nil && *raw.Suffix != "" {
		if !suffixPattern.MatchString(*raw.Suffix) {
			return req, perr("suffix", CodeInvalid, "Invalid 'suffix' %q: use 1 to 64 letters, digits, '.', '_' or '-'.", *raw.Suffix)
		}
		req.Suffix = *raw.Suffix
	}
	req.Seed, req.Metadata = raw.Seed, raw.Metadata
	if raw.Method != nil && raw.Method.Type != "" && raw.Method.Type != "supervised" {
		return req, perr("method.type", CodeInvalid, "Invalid 'method.type' %q: this server trains only with \"supervised\".", raw.Method.Type)
	}
	layers := []struct {
		param string
		raw   json.RawMessage
	}{{"hyperparameters", raw.Hyperparameters}, {"carryon", raw.Carryon}}
	if raw.Method != nil && raw.Method.Supervised != nil {
		layers = append(layers, struct {
			param string
			raw   json.RawMessage
		}{"method.supervised.hyperparameters", raw.Method.Supervised.Hyperparameters})
	}
	for _, l := range layers {
		if len(l.raw) == 0 || string(l.raw) == "null" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(l.raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req.Hyperparameters); err != nil {
			return req, perr(l.param, CodeInvalid, "Invalid '%s': %v.", l.param, err)
		}
	}
	if e := req.Hyperparameters.check(); e != nil {
		return req, e
	}
	return req, nil
}

// check bounds the hyperparameters.
func (h *Hyperparameters) check() *ParamError {
	intIn := func(name string, s Setting, lo, hi int) *ParamError {
		if !s.Set {
			return nil
		}
		if s.Value != math.Trunc(s.Value) || s.Value < float64(lo) || s.Value > float64(hi) {
			return perr("hyperparameters."+name, CodeInvalid, "Invalid 'hyperparameters.%s' %v: want \"auto\" or an integer from %d to %d.", name, s.Value, lo, hi)
		}
		return nil
	}
	if e := intIn("n_epochs", h.NEpochs, 1, 50); e != nil {
		return e
	}
	if e := intIn("batch_size", h.BatchSize, 1, 256); e != nil {
		return e
	}
	if s := h.LearningRateMultiplier; s.Set && !(s.Value > 0 && s.Value <= 100) {
		return perr("hyperparameters.learning_rate_multiplier", CodeInvalid, "Invalid 'hyperparameters.learning_rate_multiplier' %v: want \"auto\" or a number in (0, 100].", s.Value)
	}
	bad := func(name string, v any, want string) *ParamError {
		return perr("hyperparameters."+name, CodeInvalid, "Invalid 'hyperparameters.%s' %v: want %s.", name, v, want)
	}
	switch {
	case h.Steps < 0 || h.Steps > 100000:
		return bad("steps", h.Steps, "0 (from n_epochs) to 100000")
	case h.Layers < 0 || h.Layers > 4:
		return bad("layers", h.Layers, "1 to 4 blocks")
	case h.Dim < 0 || h.Dim > 4096 || h.Dim%2 != 0:
		return bad("dim", h.Dim, "an even width up to 4096")
	case h.Heads < 0 || h.Heads > 64:
		return bad("heads", h.Heads, "1 to 64 attention heads")
	case h.Alpha != nil && (math.IsNaN(*h.Alpha) || math.IsInf(*h.Alpha, 0) || math.Abs(*h.Alpha) > 1000):
		return bad("alpha", *h.Alpha, "a finite number")
	case !(h.ValidationFraction >= 0 && h.ValidationFraction < 0.9):
		return bad("validation_fraction", h.ValidationFraction, "a fraction from 0 to 0.9")
	}
	return nil
}
