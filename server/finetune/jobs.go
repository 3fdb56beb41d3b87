package finetune

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Job states, as OpenAI names them.
const (
	StatusValidating = "validating_files"
	StatusQueued     = "queued"
	StatusRunning    = "running"
	StatusSucceeded  = "succeeded"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
)

// Terminal reports whether a job in this state is over.
func Terminal(status string) bool {
	return status == StatusSucceeded || status == StatusFailed || status == StatusCancelled
}

// CanTransition reports whether a job may move from one state to another:
// forward through validating_files → queued → running → succeeded, and
// from any state that is not over to failed or cancelled.
func CanTransition(from, to string) bool {
	if Terminal(from) {
		return false
	}
	switch to {
	case StatusFailed, StatusCancelled:
		return true
	case StatusQueued:
		return from == StatusValidating
	case StatusRunning:
		return from == StatusQueued
	case StatusSucceeded:
		return from == StatusRunning
	}
	return false
}

// JobError is why a job failed.
type JobError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
}

// JobHyperparameters are the settings a job runs with, as OpenAI reports
// them ("auto" until the job resolves them).
type JobHyperparameters struct {
	NEpochs                Setting `json:"n_epochs"`
	BatchSize              Setting `json:"batch_size"`
	LearningRateMultiplier Setting `json:"learning_rate_multiplier"`
}

// Report is carryon's extension of a job: what was trained and how it
// scored. Losses are mean next-token cross-entropies over the validation
// split's assistant tokens, in nats.
type Report struct {
	// Head is the head the job registers a version of; Version is the
	// new version when one was made.
	Head    string `json:"head,omitempty"`
	Version string `json:"version,omitempty"`
	// Target is set when the job trains a new version of an existing
	// head rather than creating ft:…; PromoteIfBetter then says whether it
	// is registered only when it beats the current version.
	Target          string `json:"target,omitempty"`
	PromoteIfBetter bool   `json:"promote_if_better,omitempty"`
	Promoted        *bool  `json:"promoted,omitempty"`

	Steps         int `json:"steps,omitempty"`
	TrainExamples int `json:"train_examples,omitempty"`
	ValidExamples int `json:"valid_examples,omitempty"`
	ValidTokens   int `json:"valid_tokens,omitempty"`
	// FeatureHits and FeatureComputed count the conversations whose base
	// states came from the feature cache and the ones computed.
	FeatureHits     int `json:"feature_hits,omitempty"`
	FeatureComputed int `json:"feature_computed,omitempty"`

	TrainLoss        *float64 `json:"train_loss,omitempty"`
	BaseValidLoss    *float64 `json:"base_valid_loss,omitempty"`
	CompareValidLoss *float64 `json:"compare_valid_loss,omitempty"`
	ValidLoss        *float64 `json:"valid_loss,omitempty"`
	// Options are the settings sent to the plugin.
	Options map[string]string `json:"options,omitempty"`
}

// Job is a fine-tuning job as the OpenAI API describes it, with carryon's
// report under "carryon".
type Job struct {
	ID              string             `json:"id"`
	Object          string             `json:"object"` // "fine_tuning.job"
	CreatedAt       int64              `json:"created_at"`
	FinishedAt      *int64             `json:"finished_at"`
	EstimatedFinish *int64             `json:"estimated_finish"`
	Error           *JobError          `json:"error"`
	FineTunedModel  *string            `json:"fine_tuned_model"`
	Hyperparameters JobHyperparameters `json:"hyperparameters"`
	Model           string             `json:"model"`
	OrganizationID  string             `json:"organization_id"`
	ResultFiles     []string           `json:"result_files"`
	Seed            int64              `json:"seed"`
	Status          string             `json:"status"`
	TrainedTokens   *int64             `json:"trained_tokens"`
	TrainingFile    string             `json:"training_file"`
	ValidationFile  *string            `json:"validation_file"`
	Integrations    []any              `json:"integrations"`
	Suffix          *string            `json:"user_provided_suffix"`
	Metadata        map[string]string  `json:"metadata"`
	Method          map[string]any     `json:"method"`
	Carryon         Report             `json:"carryon"`
}

// SetStatus moves the job to another state, stamping finished_at when it
// ends. A move CanTransition forbids is an error and changes nothing.
func (j *Job) SetStatus(to string) error {
	if !CanTransition(j.Status, to) {
		return fmt.Errorf("job %s: %w move from %s to %s", j.ID, ErrInvalid, j.Status, to)
	}
	j.Status = to
	if Terminal(to) {
		now := time.Now().Unix()
		j.FinishedAt = &now
	}
	return nil
}

// Fail moves the job to failed with an error code and message.
func (j *Job) Fail(code, msg string) error {
	if err := j.SetStatus(StatusFailed); err != nil {
		return err
	}
	j.Error = &JobError{Code: code, Message: msg}
	return nil
}

// Record is what the store keeps of a job: the job and the request it runs.
type Record struct {
	Job     Job        `json:"job"`
	Request JobRequest `json:"request"`
	// Seq orders the jobs by creation (Create sets it): created_at has
	// only seconds.
	Seq int64 `json:"seq"`
}

// Event is a job event as the OpenAI API describes it: "message" events
// tell what happens, "metrics" events carry step, train_loss and
// valid_loss in Data.
type Event struct {
	ID        string         `json:"id"`
	Object    string         `json:"object"` // "fine_tuning.job.event"
	CreatedAt int64          `json:"created_at"`
	Level     string         `json:"level"` // info, warn, error
	Message   string         `json:"message"`
	Type      string         `json:"type"` // message, metrics
	Data      map[string]any `json:"data"`
}

// NewJob returns a job for a request in state validating_files.
func NewJob(req JobRequest, seed int64) Job {
	j := Job{
		ID: newID("ftjob"), Object: "fine_tuning.job", CreatedAt: time.Now().Unix(),
		Model: req.Model, TrainingFile: req.TrainingFile, Status: StatusValidating, Seed: seed,
		ResultFiles: []string{}, Integrations: []any{}, Metadata: req.Metadata,
		Hyperparameters: JobHyperparameters{
			NEpochs: req.Hyperparameters.NEpochs, BatchSize: req.Hyperparameters.BatchSize,
			LearningRateMultiplier: req.Hyperparameters.LearningRateMultiplier,
		},
	}
	if req.ValidationFile != "" {
		v := req.ValidationFile
		j.ValidationFile = &v
	}
	if req.Suffix != "" {
		s := req.Suffix
		j.Suffix = &s
	}
	j.Method = map[string]any{"type": "supervised", "supervised": map[string]any{"hyperparameters": j.Hyperparameters}}
	return j
}

// JobStore keeps jobs and their events in a directory: <id>.json (the
// Record) and <id>.events.jsonl (one Event per line, oldest first). Every
// change is written at once. It is safe for concurrent use.
type JobStore struct {
	dir string

	mu     sync.Mutex
	seq    int64 // the highest Record.Seq
	jobs   map[string]*Record
	events map[string][]Event
}

// OpenJobs opens (creating it if needed) a job store in dir and reads the
// jobs stored there. Jobs that were validating or running when the store
// was last used cannot continue: they are marked failed with code
// "server_restarted", and their ids returned. Queued jobs stay queued.
func OpenJobs(dir string) (*JobStore, []string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("open job store %s: %w", dir, err)
	}
	s := &JobStore{dir: dir, jobs: map[string]*Record{}, events: map[string][]Event{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open job store %s: %w", dir, err)
	}
	var interrupted []string
	for _, e := range entries {
		id, ok := cutSuffix(e.Name(), ".json")
		if !ok || !idPattern.MatchString(id) {
			continue
		}
		var r Record
		if err := readJSON(filepath.Join(dir, e.Name()), &r); err != nil {
			return nil, nil, fmt.Errorf("open job store: %w", err)
		}
		evs, err := readEvents(filepath.Join(dir, id+".events.jsonl"))
		if err != nil {
			return nil, nil, fmt.Errorf("open job store: %w", err)
		}
		s.jobs[id], s.events[id] = &r, evs
		s.seq = max(s.seq, r.Seq)
		if r.Job.Status == StatusRunning || r.Job.Status == StatusValidating {
			interrupted = append(interrupted, id)
		}
	}
	sort.Strings(interrupted)
	for _, id := range interrupted {
		if _, err := s.Update(id, func(r *Record) error {
			return r.Job.Fail("server_restarted", "The server stopped while this job was "+r.Job.Status+"; it did not finish. Create the job again.")
		}); err != nil {
			return nil, nil, fmt.Errorf("open job store: %w", err)
		}
		if _, err := s.AddEvent(id, "error", "The server restarted while the job was running; the job failed.", nil); err != nil {
			return nil, nil, fmt.Errorf("open job store: %w", err)
		}
	}
	return s, interrupted, nil
}

func readEvents(path string) ([]Event, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			// A line cut short by a crash ends the log.
			break
		}
		out = append(out, ev)
	}
	return out, nil
}

// Create stores a new job.
func (s *JobStore) Create(r Record) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[r.Job.ID]; ok {
		return Job{}, fmt.Errorf("create job %s: %w: the id exists", r.Job.ID, ErrInvalid)
	}
	r.Seq = s.seq + 1
	if err := writeJSON(filepath.Join(s.dir, r.Job.ID+".json"), &r); err != nil {
		return Job{}, fmt.Errorf("create job %s: %w", r.Job.ID, err)
	}
	s.jobs[r.Job.ID] = &r
	s.seq = r.Seq
	return r.Job, nil
}

// Get returns a job's record (a copy).
func (s *JobStore) Get(id string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.jobs[id]
	if !ok {
		return Record{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return *r, nil
}

// Update changes a job with f and writes it. When f fails nothing
// changes.
func (s *JobStore) Update(id string, f func(*Record) error) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("update job %s: %w", id, ErrNotFound)
	}
	c := *r
	if err := f(&c); err != nil {
		return r.Job, err
	}
	if err := writeJSON(filepath.Join(s.dir, id+".json"), &c); err != nil {
		return r.Job, fmt.Errorf("update job %s: %w", id, err)
	}
	*r = c
	return c.Job, nil
}

// Queued returns the ids of queued jobs, oldest first.
func (s *JobStore) Queued() []string {
	jobs := s.all()
	var out []string
	for i := len(jobs) - 1; i >= 0; i-- {
		if jobs[i].Status == StatusQueued {
			out = append(out, jobs[i].ID)
		}
	}
	return out
}

// all returns every job, newest first.
func (s *JobStore) all() []Job {
	s.mu.Lock()
	recs := make([]*Record, 0, len(s.jobs))
	for _, r := range s.jobs {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Seq > recs[j].Seq })
	out := make([]Job, len(recs))
	for i, r := range recs {
		out[i] = r.Job
	}
	s.mu.Unlock()
	return out
}

// List returns a page of jobs, newest first: those after the job with id
// after (from the start when empty), at most limit, and whether more
// follow.
func (s *JobStore) List(after string, limit int) ([]Job, bool) {
	return Page(s.all(), func(j Job) string { return j.ID }, after, limit)
}

// AddEvent appends an event to a job's log.
func (s *JobStore) AddEvent(id, level, msg string, data map[string]any) (Event, error) {
	typ := "message"
	if data != nil {
		typ = "metrics"
	}
	ev := Event{ID: newID("ftevent"), Object: "fine_tuning.job.event", CreatedAt: time.Now().Unix(),
		Level: level, Message: msg, Type: typ, Data: data}
	if ev.Data == nil {
		ev.Data = map[string]any{}
	}
	line, err := json.Marshal(ev)
	if err != nil {
		return Event{}, fmt.Errorf("job %s: add event: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[id]; !ok {
		return Event{}, fmt.Errorf("job %s: add event: %w", id, ErrNotFound)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, id+".events.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return Event{}, fmt.Errorf("job %s: add event: %w", id, err)
	}
	_, werr := f.Write(append(line, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return Event{}, fmt.Errorf("job %s: add event: %w", id, werr)
	}
	s.events[id] = append(s.events[id], ev)
	return ev, nil
}

// Events returns a page of a job's events, newest first, as List pages
// jobs.
func (s *JobStore) Events(id, after string, limit int) ([]Event, bool, error) {
	s.mu.Lock()
	if _, ok := s.jobs[id]; !ok {
		s.mu.Unlock()
		return nil, false, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	evs := s.events[id]
	out := make([]Event, len(evs))
	for i, ev := range evs {
		out[len(evs)-1-i] = ev
	}
	s.mu.Unlock()
	page, more := Page(out, func(e Event) string { return e.ID }, after, limit)
	return page, more, nil
}

// Page limits for list routes.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Page returns the items that follow the one whose id is after (from the
// first when after is empty; none when no item has that id), at most
// limit of them (DefaultLimit when limit ≤ 0, at most MaxLimit), and
// whether more follow.
func Page[T any](items []T, id func(T) string, after string, limit int) ([]T, bool) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	start := 0
	if after != "" {
		start = len(items)
		for i, it := range items {
			if id(it) == after {
				start = i + 1
				break
			}
		}
	}
	rest := items[start:]
	if len(rest) > limit {
		return rest[:limit], true
	}
	return rest, false
}

// Checkpoint is a saved model of a job, as the OpenAI API describes it.
// carryon keeps one: the version a succeeded job registered.
type Checkpoint struct {
	ID                       string         `json:"id"`
	Object                   string         `json:"object"` // "fine_tuning.job.checkpoint"
	CreatedAt                int64          `json:"created_at"`
	FineTunedModelCheckpoint string         `json:"fine_tuned_model_checkpoint"`
	FineTuningJobID          string         `json:"fine_tuning_job_id"`
	StepNumber               int            `json:"step_number"`
	Metrics                  map[string]any `json:"metrics"`
}

// Checkpoints returns a job's checkpoints: the registered version of a
// succeeded job, none otherwise.
func Checkpoints(j Job) []Checkpoint {
	if j.Status != StatusSucceeded || j.FineTunedModel == nil || j.Carryon.Promoted == nil || !*j.Carryon.Promoted {
		return []Checkpoint{}
	}
	metrics := map[string]any{"step": j.Carryon.Steps}
	if j.Carryon.TrainLoss != nil {
		metrics["train_loss"] = *j.Carryon.TrainLoss
	}
	if j.Carryon.ValidLoss != nil {
		metrics["valid_loss"] = *j.Carryon.ValidLoss
		metrics["full_valid_loss"] = *j.Carryon.ValidLoss
	}
	created := j.CreatedAt
	if j.FinishedAt != nil {
		created = *j.FinishedAt
	}
	v := j.Carryon.Version
	return []Checkpoint{{ID: "ftckpt-" + v[:min(24, len(v))], Object: "fine_tuning.job.checkpoint", CreatedAt: created,
		FineTunedModelCheckpoint: *j.FineTunedModel, FineTuningJobID: j.ID, StepNumber: j.Carryon.Steps, Metrics: metrics}}
}
