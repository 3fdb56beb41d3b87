package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/server/chat"
	"github.com/carryon/carryon/server/finetune"
	"github.com/carryon/carryon/server/openai"
)

// Fine-tuning defaults: the learning rate a multiplier of 1 gives, the
// batch size and the number of optimizer steps "auto" aims at, and the
// share of a training file held out for validation when no validation file
// is given.
const (
	tuneBaseLR        = 1e-3
	tuneAutoBatch     = 8
	tuneAutoSteps     = 200
	tuneValidFraction = 0.1
	// tuneEvalTime bounds loading a new version and scoring it.
	tuneEvalTime = 10 * time.Minute
)

// tuneTarget makes a job train a new version of an existing head instead of
// creating ft:… .
type tuneTarget struct {
	// Head is an existing head id: the job starts from its current version
	// and registers the result as its next version.
	Head string
	// PromoteIfBetter registers the new version only if its validation
	// loss is below the current version's; otherwise the job succeeds with
	// a message saying that it was not promoted.
	PromoteIfBetter bool
}

// tuning runs fine-tuning jobs: the file and job stores in the data
// directory and a queue that runs one job at a time.
type tuning struct {
	files   *finetune.FileStore
	jobs    *finetune.JobStore
	featDir string // base features, by content hash
	runDir  string // a running job's output directory
	log     hclog.Logger

	wake   chan struct{}
	ctx    context.Context
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	cancel map[string]context.CancelFunc // of the running job
	asked  map[string]bool               // jobs whose cancel was asked for
}

// newTuning opens the stores under dataDir. Jobs that were running when the
// server last stopped are marked failed.
func newTuning(dataDir string, log hclog.Logger) (*tuning, error) {
	files, err := finetune.OpenFiles(filepath.Join(dataDir, "files"))
	if err != nil {
		return nil, err
	}
	jobs, interrupted, err := finetune.OpenJobs(filepath.Join(dataDir, "fine_tuning", "jobs"))
	if err != nil {
		return nil, err
	}
	t := &tuning{files: files, jobs: jobs, featDir: filepath.Join(dataDir, "features"),
		runDir: filepath.Join(dataDir, "fine_tuning", "runs"), log: log.Named("finetune"),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		cancel: map[string]context.CancelFunc{}, asked: map[string]bool{}}
	for _, id := range interrupted {
		t.log.Warn("fine-tuning job was running when the server stopped; marked failed", "job", id)
	}
	return t, nil
}

// start runs the queue until close.
func (t *tuning) start(s *Server) {
	t.ctx, t.stop = context.WithCancel(context.Background())
	go func() {
		defer close(t.done)
		for {
			for _, id := range t.jobs.Queued() {
				if t.ctx.Err() != nil {
					return
				}
				s.runJob(t.ctx, id)
			}
			select {
			case <-t.ctx.Done():
				return
			case <-t.wake:
			}
		}
	}()
	t.poke()
}

// poke wakes the queue.
func (t *tuning) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// close stops the queue; a running job is cancelled and marked failed.
func (t *tuning) close() {
	if t.stop == nil {
		return
	}
	t.stop()
	<-t.done
}

// cancelJob cancels a job: a queued one at once, a running one by
// cancelling its run (the queue marks it cancelled when the run returns).
func (s *Server) cancelJob(id string) (finetune.Job, error) {
	t := s.tuning
	t.mu.Lock()
	cancel, running := t.cancel[id]
	if running {
		t.asked[id] = true
	}
	t.mu.Unlock()
	if running {
		cancel()
		r, err := t.jobs.Get(id)
		if err != nil {
			return finetune.Job{}, err
		}
		return r.Job, nil
	}
	j, err := t.jobs.Update(id, func(r *finetune.Record) error {
		if finetune.Terminal(r.Job.Status) {
			return openai.Invalid("", openai.CodeInvalidValue, "Job %s has already %s; it cannot be cancelled.", id, r.Job.Status)
		}
		return r.Job.SetStatus(finetune.StatusCancelled)
	})
	if err == nil {
		_, _ = t.jobs.AddEvent(id, "info", "The job was cancelled.", nil)
	}
	return j, err
}

// storeFile validates and stores a chat-format training file from bytes.
// Errors are *openai.Error values.
func (s *Server) storeFile(name, purpose string, data []byte) (finetune.File, error) {
	f, err := s.tuning.files.Put(name, purpose, data)
	if err == nil {
		return f, nil
	}
	var verr *finetune.ValidationError
	switch {
	case errors.As(err, &verr):
		return f, openai.Invalid("file", openai.CodeInvalidValue, "%s.", verr.Error())
	case errors.Is(err, finetune.ErrInvalid):
		return f, openai.Invalid("purpose", openai.CodeUnsupportedValue, "%v.", err)
	}
	return f, openai.NewError(http.StatusInternalServerError, openai.TypeServer, openai.CodeInternal, "", err.Error())
}

// tuneStart is where a job starts: its base model and, when it continues
// a head, that head's id and current version directory.
type tuneStart struct {
	base    *Model
	head    string // "" for a new head
	dir     string
	version string
}

// resolveStart finds a job's base model and starting head. Errors are
// *openai.Error values.
func (s *Server) resolveStart(model string, target *tuneTarget) (tuneStart, error) {
	name := model
	if target != nil {
		name = target.Head
	}
	if m, ok := s.lookup(name); ok && target == nil {
		return tuneStart{base: m}, nil
	}
	st, ok := s.heads.get(name)
	if !ok {
		return tuneStart{}, openai.ModelNotFound(name)
	}
	m, ok := s.byName[st.Base]
	if !ok {
		return tuneStart{}, openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "model",
			fmt.Sprintf("Head %s runs on base %s, which is not loaded.", name, st.Base))
	}
	if st.Type != carryonhead.Type {
		return tuneStart{}, openai.Invalid("model", openai.CodeUnsupportedValue, "Head %s is of type %q; only %q heads are fine-tuned.", name, st.Type, carryonhead.Type)
	}
	if st.Version == "" {
		return tuneStart{}, openai.Invalid("model", openai.CodeInvalidValue, "Head %s has no current version.", name)
	}
	return tuneStart{base: m, head: name, version: st.Version, dir: filepath.Join(s.heads.dir, name, st.Version)}, nil
}

// trainer returns the plugin that trains carry-on heads.
func (s *Server) trainer() (*pluginProc, error) {
	pp := s.plugins.forType(carryonhead.Type)
	if pp == nil {
		return nil, openai.NewError(http.StatusServiceUnavailable, openai.TypeUnavailable, openai.CodeUnavailable, "",
			"No installed plugin trains carry-on heads (is the carryon plugin in the plugins directory?).")
	}
	return pp, nil
}

// createJob validates and queues a job; req is the parsed POST
// /v1/fine_tuning/jobs body. With a target the job trains a new version of
// that head (req.Model is then ignored). Errors are *openai.Error values.
func (s *Server) createJob(ctx context.Context, req finetune.JobRequest, target *tuneTarget) (finetune.Job, error) {
	_ = ctx // validation does not block
	if _, err := s.resolveStart(req.Model, target); err != nil {
		return finetune.Job{}, err
	}
	if _, err := s.trainer(); err != nil {
		return finetune.Job{}, err
	}
	for _, f := range []struct{ param, id string }{{"training_file", req.TrainingFile}, {"validation_file", req.ValidationFile}} {
		if f.id == "" {
			continue
		}
		if _, err := s.tuning.files.Get(f.id); err != nil {
			return finetune.Job{}, openai.Invalid(f.param, openai.CodeInvalidValue, "Invalid '%s': no file with id %s.", f.param, f.id)
		}
	}
	if target != nil {
		req.Model = target.Head
	}
	seed := rand.Int64N(1 << 31)
	if req.Seed != nil {
		seed = *req.Seed
	}
	job := finetune.NewJob(req, seed)
	if target != nil {
		job.Carryon.Target, job.Carryon.PromoteIfBetter, job.Carryon.Head = target.Head, target.PromoteIfBetter, target.Head
	}
	t := s.tuning
	if _, err := t.jobs.Create(finetune.Record{Job: job, Request: req}); err != nil {
		return finetune.Job{}, openai.NewError(http.StatusInternalServerError, openai.TypeServer, openai.CodeInternal, "", err.Error())
	}
	_, _ = t.jobs.AddEvent(job.ID, "info", "Created fine-tuning job: "+job.ID, nil)
	// The files were validated on upload; reading them again catches a
	// file deleted meanwhile.
	for _, id := range []string{req.TrainingFile, req.ValidationFile} {
		if id == "" {
			continue
		}
		if _, err := t.files.Content(id); err != nil {
			j, _ := t.jobs.Update(job.ID, func(r *finetune.Record) error {
				return r.Job.Fail("invalid_file", fmt.Sprintf("File %s cannot be read: %v", id, err))
			})
			return j, nil
		}
	}
	_, _ = t.jobs.AddEvent(job.ID, "info", "Validated the training files", nil)
	j, err := t.jobs.Update(job.ID, func(r *finetune.Record) error { return r.Job.SetStatus(finetune.StatusQueued) })
	if err != nil {
		return finetune.Job{}, openai.NewError(http.StatusInternalServerError, openai.TypeServer, openai.CodeInternal, "", err.Error())
	}
	t.poke()
	return j, nil
}

// jobFailure is a job's error code and message.
type jobFailure struct {
	code string
	err  error
}

func (f *jobFailure) Error() string { return f.err.Error() }
func (f *jobFailure) Unwrap() error { return f.err }

func failf(code, format string, args ...any) error {
	return &jobFailure{code: code, err: fmt.Errorf(format, args...)}
}

// runJob runs a queued job to its end: succeeded, failed or cancelled.
func (s *Server) runJob(parent context.Context, id string) {
	t := s.tuning
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	t.mu.Lock()
	t.cancel[id] = cancel
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.cancel, id)
		delete(t.asked, id)
		t.mu.Unlock()
	}()
	if _, err := t.jobs.Update(id, func(r *finetune.Record) error { return r.Job.SetStatus(finetune.StatusRunning) }); err != nil {
		return // cancelled while queued
	}
	_, _ = t.jobs.AddEvent(id, "info", "Fine-tuning job started", nil)
	t0 := time.Now()
	err := s.trainJob(ctx, id)
	t.mu.Lock()
	asked := t.asked[id]
	t.mu.Unlock()
	switch {
	case err == nil:
		t.log.Info("fine-tuning job succeeded", "job", id, "took", time.Since(t0).Round(time.Millisecond))
		return
	case asked:
		_, _ = t.jobs.Update(id, func(r *finetune.Record) error { return r.Job.SetStatus(finetune.StatusCancelled) })
		_, _ = t.jobs.AddEvent(id, "info", "The job was cancelled; whatever was serving is unchanged.", nil)
		t.log.Info("fine-tuning job cancelled", "job", id)
		return
	}
	code := "training_failed"
	var jf *jobFailure
	if errors.As(err, &jf) {
		code = jf.code
	}
	if parent.Err() != nil {
		code, err = "server_stopped", fmt.Errorf("the server stopped during the job: %w", err)
	}
	_, _ = t.jobs.Update(id, func(r *finetune.Record) error { return r.Job.Fail(code, err.Error()) })
	_, _ = t.jobs.AddEvent(id, "error", "The job failed: "+err.Error(), nil)
	t.log.Warn("fine-tuning job failed", "job", id, "error", err)
}

// tuneData is a job's tokenized data and base features.
type tuneData struct {
	cfg          carryonhead.Config // the head's (taps, width, base)
	train, valid []carryonhead.Example
	trainTokens  int // trained tokens of one pass over train
}

// trainJob does a running job's work.
func (s *Server) trainJob(ctx context.Context, id string) error {
	t := s.tuning
	rec, err := t.jobs.Get(id)
	if err != nil {
		return err
	}
	req, job := rec.Request, rec.Job
	var target *tuneTarget
	if job.Carryon.Target != "" {
		target = &tuneTarget{Head: job.Carryon.Target, PromoteIfBetter: job.Carryon.PromoteIfBetter}
	}
	start, err := s.resolveStart(req.Model, target)
	if err != nil {
		return failf("invalid_model", "%v", err)
	}
	m := start.base
	event := func(format string, args ...any) {
		_, _ = t.jobs.AddEvent(id, "info", fmt.Sprintf(format, args...), nil)
	}

	// The head's configuration: the starting head's, or a fresh one's.
	base, err := s.heads.baseOf(m)
	if err != nil {
		return failf("base_error", "identify base %s: %v", m.Name, err)
	}
	cfg := carryonhead.DefaultConfig(base)
	if start.dir != "" {
		b, err := os.ReadFile(filepath.Join(start.dir, carryonhead.ConfigFile))
		if err == nil {
			err = json.Unmarshal(b, &cfg)
		}
		if err != nil {
			return failf("invalid_model", "read head %s: %v", start.head, err)
		}
	}

	// Data: conversations → token sequences with assistant targets →
	// base features (cached by content).
	train, err := s.jobConversations(req.TrainingFile)
	if err != nil {
		return err
	}
	var valid []finetune.Conversation
	if req.ValidationFile != "" {
		if valid, err = s.jobConversations(req.ValidationFile); err != nil {
			return err
		}
	}
	limit := m.seqContext
	if c := cfg.Context; c > 0 {
		limit = min(limit, c)
	}
	trainSeqs, dropped, err := conversationSequences(m, train, limit)
	if err != nil {
		return err
	}
	validSeqs, vdropped, err := conversationSequences(m, valid, limit)
	if err != nil {
		return err
	}
	if dropped+vdropped > 0 {
		_, _ = t.jobs.AddEvent(id, "warn", fmt.Sprintf("%d conversations have no assistant token within the %d-token context and were skipped", dropped+vdropped, limit), nil)
	}
	if req.ValidationFile == "" {
		frac := req.Hyperparameters.ValidationFraction
		if frac == 0 {
			frac = tuneValidFraction
		}
		trainSeqs, validSeqs = splitValidation(trainSeqs, frac, uint64(job.Seed))
	}
	if len(trainSeqs) == 0 {
		return failf("invalid_training_file", "the training file has no conversation with an assistant token to train on")
	}
	var d tuneData
	d.cfg = cfg
	var hits, computed int
	for _, part := range []struct {
		seqs []carryonhead.Sequence
		out  *[]carryonhead.Example
	}{{trainSeqs, &d.train}, {validSeqs, &d.valid}} {
		if len(part.seqs) == 0 {
			continue
		}
		ex, st, err := carryonhead.Features(ctx, m.model, cfg, part.seqs, t.featDir)
		if err != nil {
			return failf("features_failed", "base features: %v", err)
		}
		*part.out = ex
		hits, computed = hits+st.Hits, computed+st.Computed
	}
	for _, e := range d.train {
		d.trainTokens += scoredTokens(e.Targets)
	}
	event("Prepared %d training and %d validation conversations (%d trained tokens per epoch; base features: %d cached, %d computed)",
		len(d.train), len(d.valid), d.trainTokens, hits, computed)

	// Settings.
	hp := req.Hyperparameters
	batch := tuneAutoBatch
	if hp.BatchSize.Set {
		batch = int(hp.BatchSize.Value)
	}
	batch = max(1, min(batch, len(d.train)))
	epochs := 0
	steps := hp.Steps
	switch {
	case steps > 0:
	case hp.NEpochs.Set:
		epochs = int(hp.NEpochs.Value)
	default:
		epochs = max(1, min(50, (tuneAutoSteps*batch+len(d.train)-1)/len(d.train)))
	}
	if steps == 0 {
		steps = max(1, (epochs*len(d.train)+batch-1)/batch)
	}
	lrMul := 1.0
	if hp.LearningRateMultiplier.Set {
		lrMul = hp.LearningRateMultiplier.Value
	}
	opts := map[string]string{
		"steps": strconv.Itoa(steps), "batch": strconv.Itoa(batch),
		"lr": strconv.FormatFloat(tuneBaseLR*lrMul, 'g', -1, 64), "seed": strconv.FormatInt(job.Seed, 10),
	}
	if start.dir == "" {
		if hp.Layers > 0 {
			opts["layers"] = strconv.Itoa(hp.Layers)
		}
		if hp.Dim > 0 {
			opts["dim"] = strconv.Itoa(hp.Dim)
		}
		if hp.Heads > 0 {
			opts["heads"] = strconv.Itoa(hp.Heads)
		}
	}
	if hp.Alpha != nil {
		opts["alpha"] = strconv.FormatFloat(*hp.Alpha, 'g', -1, 64)
	}
	if hp.LearnAlpha {
		opts["learn_alpha"] = "true"
	}
	if epochs == 0 {
		epochs = max(1, int(math.Round(float64(steps*batch)/float64(len(d.train)))))
	}
	_, _ = t.jobs.Update(id, func(r *finetune.Record) error {
		r.Job.Hyperparameters = finetune.JobHyperparameters{NEpochs: finetune.Num(float64(epochs)),
			BatchSize: finetune.Num(float64(batch)), LearningRateMultiplier: finetune.Num(lrMul)}
		r.Job.Method = map[string]any{"type": "supervised", "supervised": map[string]any{"hyperparameters": r.Job.Hyperparameters}}
		r.Job.Carryon.Steps, r.Job.Carryon.Options = steps, opts
		r.Job.Carryon.TrainExamples, r.Job.Carryon.ValidExamples = len(d.train), len(d.valid)
		r.Job.Carryon.FeatureHits, r.Job.Carryon.FeatureComputed = hits, computed
		return nil
	})

	// Train in the plugin.
	pp, err := s.trainer()
	if err != nil {
		return failf("plugin_unavailable", "%v", err)
	}
	outDir := filepath.Join(t.runDir, id)
	_ = os.RemoveAll(outDir)
	defer os.RemoveAll(outDir)
	trainLoss, err := s.trainInPlugin(ctx, id, pp, sdk.TrainJob{Dir: start.dir, OutDir: outDir, BasePath: m.Path, Options: opts}, &d, steps)
	if err != nil {
		return err
	}
	hf, err := readHeadDir(outDir)
	if err != nil {
		return failf("training_failed", "the plugin's result: %v", err)
	}
	version := carryonhead.Version(hf.config, hf.weights)
	event("Trained version %s in %d steps (train loss %.4f)", short(version), steps, trainLoss)

	// Validation: the base, the head it started from, the new version.
	rep := finetune.Report{TrainLoss: &trainLoss, Version: version}
	if len(d.valid) > 0 {
		ectx, ecancel := context.WithTimeout(ctx, tuneEvalTime)
		defer ecancel()
		vl, err := s.evalVersions(ectx, id, pp, start, outDir, &d, &rep)
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("Validation loss: base %.4f, new version %.4f", *rep.BaseValidLoss, vl)
		if rep.CompareValidLoss != nil {
			msg += fmt.Sprintf(", %s as it was %.4f", start.head, *rep.CompareValidLoss)
		}
		_, _ = t.jobs.AddEvent(id, "info", msg, map[string]any{"step": steps, "train_loss": trainLoss, "valid_loss": vl,
			"base_valid_loss": *rep.BaseValidLoss})
	}

	// Register.
	headID := start.head
	create := target == nil
	if create {
		headID = fineTunedName(m.Name, req.Suffix, id)
	}
	promote := true
	if target != nil && target.PromoteIfBetter && rep.ValidLoss != nil && rep.CompareValidLoss != nil && !(*rep.ValidLoss < *rep.CompareValidLoss) {
		promote = false
	}
	if target != nil && target.PromoteIfBetter && rep.ValidLoss == nil {
		promote = false
	}
	rep.Head = headID
	if promote {
		rctx, rcancel := context.WithTimeout(ctx, headRegisterTimeout)
		defer rcancel()
		if _, err := s.heads.register(rctx, headID, m.Name, hf, create); err != nil {
			return failf("register_failed", "register %s: %v", headID, err)
		}
		event("Registered %s version %s; it serves as model %q", headID, short(version), headID)
	} else if rep.ValidLoss == nil {
		event("The new version was not promoted: there is no validation split to compare it on; %s is unchanged", headID)
	} else {
		event("The new version was not promoted: its validation loss %.4f is not below the current version's %.4f; %s is unchanged",
			*rep.ValidLoss, *rep.CompareValidLoss, headID)
	}
	rep.Promoted = &promote
	tokens := int64(d.trainTokens) * int64(steps*batch) / int64(len(d.train))
	_, err = t.jobs.Update(id, func(r *finetune.Record) error {
		if err := r.Job.SetStatus(finetune.StatusSucceeded); err != nil {
			return err
		}
		name := headID
		r.Job.FineTunedModel = &name
		r.Job.TrainedTokens = &tokens
		keep := r.Job.Carryon
		rep.Target, rep.PromoteIfBetter, rep.Steps, rep.Options = keep.Target, keep.PromoteIfBetter, keep.Steps, keep.Options
		rep.TrainExamples, rep.ValidExamples, rep.FeatureHits, rep.FeatureComputed = keep.TrainExamples, keep.ValidExamples, keep.FeatureHits, keep.FeatureComputed
		r.Job.Carryon = rep
		return nil
	})
	if err != nil {
		return err
	}
	event("The job has successfully completed")
	return nil
}

func short(v string) string { return v[:min(12, len(v))] }

// headNameChars is what fineTunedName keeps of a base model's name.
var headNameChars = regexp.MustCompile(`[^A-Za-z0-9._:-]`)

// fineTunedName returns the head id of a job's result, following OpenAI's
// naming: ft:<base>:<suffix>:<job> (the suffix may be empty), with the job
// part the first 8 hex digits of the job id.
func fineTunedName(base, suffix, jobID string) string {
	b := headNameChars.ReplaceAllString(base, "-")
	j := strings.TrimPrefix(jobID, "ftjob-")
	j = j[:min(8, len(j))]
	if len(b) > 60 {
		b = b[:60]
	}
	return "ft:" + b + ":" + suffix + ":" + j
}

// jobConversations reads a stored training file.
func (s *Server) jobConversations(fileID string) ([]finetune.Conversation, error) {
	data, err := s.tuning.files.Content(fileID)
	if err != nil {
		return nil, failf("invalid_file", "file %s: %v", fileID, err)
	}
	convs, err := finetune.ParseChat(fileID, data)
	if err != nil {
		return nil, failf("invalid_file", "%v", err)
	}
	return convs, nil
}

// conversationSequences tokenizes conversations with the model's chat
// template, as /v1/chat/completions does, and marks the tokens of trained
// assistant turns as the targets. A sequence is cut to limit tokens;
// conversations left without a target are dropped and counted.
func conversationSequences(m *Model, convs []finetune.Conversation, limit int) ([]carryonhead.Sequence, int, error) {
	var out []carryonhead.Sequence
	dropped := 0
	for _, c := range convs {
		seq, err := conversationSequence(m, c, limit)
		if err != nil {
			return nil, 0, failf("invalid_file", "line %d: %v", c.Line, err)
		}
		if seq.Tokens == nil {
			dropped++
			continue
		}
		out = append(out, seq)
	}
	return out, dropped, nil
}

// conversationSequence renders one conversation. The tokens of an
// assistant turn are those between the end of the prompt that asks for it
// (the conversation before it with the generation prompt) and the end of
// the conversation through it, both found as the longest prefix their
// tokenization shares with the whole conversation's. A nil Tokens means no
// target survived the cut.
func conversationSequence(m *Model, c finetune.Conversation, limit int) (carryonhead.Sequence, error) {
	msgs := make([]chat.Message, len(c.Messages))
	for i, msg := range c.Messages {
		msgs[i] = chat.Message{Role: msg.Role, Content: msg.Content}
	}
	text, err := m.Template.Render(msgs, false)
	if err != nil {
		return carryonhead.Sequence{}, err
	}
	full := m.tok.Encode(text, true, true)
	trained := make([]bool, len(full))
	for i, msg := range c.Messages {
		if !msg.Trained {
			continue
		}
		var from, to int
		if i == 0 {
			from = 0
		} else {
			p, err := m.Template.Render(msgs[:i], true)
			if err != nil {
				return carryonhead.Sequence{}, err
			}
			from = sharedPrefix(m.tok.Encode(p, true, true), full)
		}
		p, err := m.Template.Render(msgs[:i+1], false)
		if err != nil {
			return carryonhead.Sequence{}, err
		}
		to = sharedPrefix(m.tok.Encode(p, true, true), full)
		for k := max(from, 1); k < to; k++ {
			trained[k] = true
		}
	}
	if limit > 0 && len(full) > limit {
		full, trained = full[:limit], trained[:limit]
	}
	seq := carryonhead.Sequence{Tokens: full, Trained: trained[1:]}
	any := false
	for _, t := range seq.Trained {
		any = any || t
	}
	if !any || len(full) < 2 {
		return carryonhead.Sequence{}, nil
	}
	return seq, nil
}

func sharedPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// splitValidation holds out a fraction of the sequences (at least one when
// there are at least two and frac > 0), chosen by the seed.
func splitValidation(seqs []carryonhead.Sequence, frac float64, seed uint64) (train, valid []carryonhead.Sequence) {
	n := len(seqs)
	k := int(math.Round(frac * float64(n)))
	if frac > 0 && n >= 2 {
		k = max(k, 1)
	}
	k = min(k, n-1)
	if k <= 0 {
		return seqs, nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x7a11d))
	perm := rng.Perm(n)
	hold := make([]bool, n)
	for _, i := range perm[:k] {
		hold[i] = true
	}
	for i, s := range seqs {
		if hold[i] {
			valid = append(valid, s)
		} else {
			train = append(train, s)
		}
	}
	return train, valid
}

func scoredTokens(targets []int32) int {
	n := 0
	for _, t := range targets {
		if t >= 0 {
			n++
		}
	}
	return n
}

// headInput returns the rows a head reads for one example as its plugin
// receives them: the taps' states concatenated (the head's own input), in
// training followed by the final-norm state when the taps do not include
// it (the state the delta is added to).
func headInput(cfg *carryonhead.Config, e *carryonhead.Example, forTraining bool) [][]float32 {
	n := len(e.Targets)
	d := cfg.Base.Dim
	in := cfg.InputDim()
	hasFinal := false
	for _, tp := range cfg.Taps {
		hasFinal = hasFinal || tp == carryonhead.FinalLayer
	}
	if len(cfg.Taps) == 0 {
		hasFinal = true
	}
	rows := make([][]float32, n)
	for p := range n {
		x := e.Hidden[p*d : (p+1)*d]
		if e.Input == nil {
			rows[p] = x
			continue
		}
		row := e.Input[p*in : (p+1)*in]
		if forTraining && !hasFinal {
			row = append(append(make([]float32, 0, in+d), row...), x...)
		}
		rows[p] = row
	}
	return rows
}

// trainInPlugin streams a job's training examples to the plugin and
// records its progress as events, returning the final training loss.
func (s *Server) trainInPlugin(ctx context.Context, id string, pp *pluginProc, job sdk.TrainJob, d *tuneData, steps int) (float64, error) {
	t := s.tuning
	hc, err := pp.client()
	if err != nil {
		return 0, failf("plugin_unavailable", "%v", err)
	}
	run, err := hc.Train(ctx, job)
	if err != nil {
		return 0, failf("plugin_failed", "%v", err)
	}
	sendErr := make(chan error, 1)
	go func() {
		for i := range d.train {
			ex := sdk.TrainExample{Hidden: headInput(&d.cfg, &d.train[i], true), Targets: d.train[i].Targets}
			if err := run.Send(ex); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- run.CloseSend()
	}()
	// Metrics events: the first step, about fifty over the run, and at
	// least one every ten seconds.
	every := max(1, steps/50)
	lastEvent := time.Now()
	var last, recent float64
	var result *sdk.HeadInfo
	for {
		u, err := run.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if errors.Is(err, sdk.ErrInvalid) {
				return 0, failf("invalid_hyperparameters", "the plugin refused the job: %v", err)
			}
			return 0, failf("plugin_failed", "training in plugin %s: %v", pp.name, err)
		}
		if u.Result != nil {
			result = u.Result
			continue
		}
		if u.Step > 0 {
			last = u.Loss
			recent = u.Loss
			if u.Step == 1 || u.Step%every == 0 || u.Step == steps || time.Since(lastEvent) >= 10*time.Second {
				lastEvent = time.Now()
				_, _ = t.jobs.AddEvent(id, "info", fmt.Sprintf("Step %d/%d: training loss=%.4f", u.Step, steps, u.Loss),
					map[string]any{"step": u.Step, "train_loss": u.Loss, "total_steps": steps})
			}
		} else if u.Message != "" && u.Message != "done" {
			_, _ = t.jobs.AddEvent(id, "info", u.Message, nil)
			if u.Loss > 0 {
				recent = u.Loss
			}
		}
	}
	if err := <-sendErr; err != nil && ctx.Err() == nil && result == nil {
		return 0, failf("plugin_failed", "send examples to plugin %s: %v", pp.name, err)
	}
	if result == nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, failf("plugin_failed", "plugin %s ended the run without a result", pp.name)
	}
	if recent == 0 {
		recent = last
	}
	return recent, nil
}

// evalVersions measures the validation loss of the base, of the head the
// job started from (when it continues one) and of the new version in
// outDir, which it loads into the plugin under a temporary id.
func (s *Server) evalVersions(ctx context.Context, id string, pp *pluginProc, start tuneStart, outDir string, d *tuneData, rep *finetune.Report) (float64, error) {
	m := start.base
	var baseSum float64
	tokens := 0
	for i := range d.valid {
		e := &d.valid[i]
		sum, n, err := m.model.CrossEntropy(nil, e.Hidden, e.Targets, 1)
		if err != nil {
			return 0, failf("validation_failed", "base loss: %v", err)
		}
		baseSum, tokens = baseSum+sum, tokens+n
	}
	if tokens == 0 {
		return 0, failf("validation_failed", "the validation conversations have no assistant tokens")
	}
	bl := baseSum / float64(tokens)
	rep.BaseValidLoss, rep.ValidTokens = &bl, tokens
	if start.head != "" {
		_, h, done, err := s.heads.acquire(start.head, 1)
		if err == nil {
			cl, err := headLoss(ctx, pp, h.ID, m, d)
			done()
			if err != nil {
				return 0, err
			}
			rep.CompareValidLoss = &cl
		}
	}
	tmp := pluginID(id, "eval")
	pp.admin.Lock()
	lctx, cancel := context.WithTimeout(ctx, pluginCallTime)
	_, err := pp.load(lctx, tmp, outDir)
	cancel()
	pp.admin.Unlock()
	if err != nil {
		return 0, failf("validation_failed", "load the new version: %v", err)
	}
	defer func() {
		pp.admin.Lock()
		uctx, cancel := context.WithTimeout(context.Background(), pluginCallTime)
		_ = pp.unload(uctx, tmp)
		cancel()
		pp.admin.Unlock()
	}()
	vl, err := headLoss(ctx, pp, tmp, m, d)
	if err != nil {
		return 0, err
	}
	rep.ValidLoss = &vl
	return vl, nil
}

// headLoss runs the validation examples through a loaded head (one
// sequence per example) and returns the mean loss of x + delta.
func headLoss(ctx context.Context, pp *pluginProc, head string, m *Model, d *tuneData) (float64, error) {
	var sum float64
	tokens := 0
	dim := d.cfg.Base.Dim
	for i := range d.valid {
		e := &d.valid[i]
		in := headInput(&d.cfg, e, false)
		seq := pp.NewSeq()
		rows := make([]sdk.Row, len(in))
		for p := range in {
			rows[p] = sdk.Row{Head: head, Seq: seq, Pos: p, Hidden: in[p]}
		}
		deltas, err := pp.Forward(ctx, rows)
		_ = pp.Release(context.WithoutCancel(ctx), []sdk.SeqID{seq})
		if err != nil {
			return 0, failf("validation_failed", "head %s: %v", head, err)
		}
		y := make([]float32, len(e.Hidden))
		copy(y, e.Hidden)
		for p, dl := range deltas {
			if len(dl) != dim {
				return 0, failf("validation_failed", "head %s returned a delta of %d floats, want %d", head, len(dl), dim)
			}
			for k, v := range dl {
				y[p*dim+k] += v
			}
		}
		s, n, err := m.model.CrossEntropy(nil, y, e.Targets, 1)
		if err != nil {
			return 0, failf("validation_failed", "head %s: %v", head, err)
		}
		sum, tokens = sum+s, tokens+n
	}
	return sum / float64(tokens), nil
}
