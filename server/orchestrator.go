package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/carryon/carryon/server/finetune"
	"github.com/carryon/carryon/server/trafficlog"
)

// Metadata keys of the jobs the orchestrator starts; they let a restarted
// server find a job it started but had not yet recorded.
const (
	learnMetaHead = "carryon_learn_head"
	learnMetaFrom = "carryon_learn_from_seq"
	learnMetaTo   = "carryon_learn_to_seq"
	// learnPause is the least time between two passes woken by new
	// samples.
	learnPause = time.Second
	// learnCallTime bounds one head's pass (log reads, file stores).
	learnCallTime = 2 * time.Minute
)

// orchestrator retrains heads whose policy is learn from their logged
// traffic. A pass runs every learn_interval and when a learning head's
// sample was logged; for each learning head that is not pinned and has no
// retraining job still queued or running, when at least min_samples new
// samples older than learn_feedback_wait arrived since the last one it
// consumed, it reads them (at most max_samples, with their latest
// feedback), writes the chat samples as a
// training file and a held-out validation file, and starts a fine-tuning
// job that trains a new version from the head's current one and promotes
// it only when its validation loss beats the current version's. The last
// consumed sequence number and the job id are kept in the head registry,
// so that a restart neither retrains the same samples nor skips new ones.
type orchestrator struct {
	s        *Server
	log      hclog.Logger
	interval time.Duration

	wake chan struct{}
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	adopted bool              // the first pass looked for unrecorded jobs
	lastErr map[string]string // by head, so that a repeated error is logged once
}

func newOrchestrator(s *Server) *orchestrator {
	return &orchestrator{s: s, log: s.log.Named("learn"), interval: time.Duration(s.cfg.LearnInterval),
		wake: make(chan struct{}, 1), lastErr: map[string]string{}}
}

// start runs passes until close.
func (o *orchestrator) start() {
	ctx, cancel := context.WithCancel(context.Background())
	o.stop, o.done = cancel, make(chan struct{})
	go func() {
		defer close(o.done)
		t := time.NewTicker(o.interval)
		defer t.Stop()
		for {
			o.pass(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-o.wake:
				select {
				case <-ctx.Done():
					return
				case <-time.After(learnPause):
				}
			}
		}
	}()
}

// poke wakes the loop; it never blocks and does nothing on a nil
// orchestrator.
func (o *orchestrator) poke() {
	if o == nil {
		return
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// close stops the loop and waits for a pass in progress.
func (o *orchestrator) close() {
	if o == nil || o.stop == nil {
		return
	}
	o.stop()
	<-o.done
}

// pass looks at every learning head once.
func (o *orchestrator) pass(ctx context.Context) {
	heads := o.s.heads.learners()
	if len(heads) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.adopted {
		o.adoptJobs()
		o.adopted = true
		heads = o.s.heads.learners()
	}
	for _, h := range heads {
		if ctx.Err() != nil {
			return
		}
		hctx, cancel := context.WithTimeout(ctx, learnCallTime)
		job, err := o.learn(hctx, h)
		cancel()
		switch {
		case err != nil:
			if o.lastErr[h.id] != err.Error() {
				o.log.Warn("cannot retrain a learning head", "head", h.id, "error", err)
			}
			o.lastErr[h.id] = err.Error()
			o.s.heads.setLearnError(h.id, err.Error())
		case job != "":
			delete(o.lastErr, h.id)
			o.s.heads.setLearnError(h.id, "")
		}
	}
}

// adoptJobs records retraining jobs that were created but not recorded
// (the server stopped in between), so that their samples are not
// trained again.
func (o *orchestrator) adoptJobs() {
	newest := map[string]finetune.Job{}
	after := ""
	for {
		jobs, more := o.s.tuning.jobs.List(after, 100)
		for _, j := range jobs {
			head := j.Metadata[learnMetaHead]
			if head == "" {
				continue
			}
			if cur, ok := newest[head]; !ok || learnTo(j) > learnTo(cur) {
				newest[head] = j
			}
		}
		if !more || len(jobs) == 0 {
			break
		}
		after = jobs[len(jobs)-1].ID
	}
	for _, h := range o.s.heads.learners() {
		j, ok := newest[h.id]
		if !ok || learnTo(j) <= h.consumed {
			continue
		}
		if err := o.s.heads.setConsumed(h.id, learnTo(j), j.ID); err != nil {
			o.log.Warn("record an unrecorded retraining job", "head", h.id, "job", j.ID, "error", err)
			continue
		}
		o.log.Info("found a retraining job the registry had not recorded", "head", h.id, "job", j.ID, "consumed_seq", learnTo(j))
	}
}

// learnTo is the last sequence number a retraining job consumed.
func learnTo(j finetune.Job) uint64 {
	n, _ := strconv.ParseUint(j.Metadata[learnMetaTo], 10, 64)
	return n
}

// learn starts a retraining of head h when it is due, and returns the
// job's id ("" when none was started).
func (o *orchestrator) learn(ctx context.Context, h learner) (string, error) {
	s := o.s
	if h.pinned {
		return "", nil
	}
	if h.job != "" {
		if rec, err := s.tuning.jobs.Get(h.job); err == nil && !finetune.Terminal(rec.Job.Status) {
			return "", nil // one job per head at a time
		}
	}
	lg, err := s.trafficLog(ctx)
	if err != nil {
		return "", err
	}
	consumed := h.consumed
	last, err := lg.LastSeq(ctx)
	if err != nil {
		return "", err
	}
	if consumed > last {
		// The stream was recreated: its numbers start again.
		o.log.Warn("the traffic log is behind the head's consumed sequence; starting from its beginning", "head", h.id,
			"consumed_seq", consumed, "log_last_seq", last)
		consumed = 0
	}
	n, err := lg.Pending(ctx, h.id, consumed)
	if err != nil || n < h.t.MinSamples {
		return "", err
	}
	b, err := lg.Read(ctx, h.id, trafficlog.ReadOptions{After: consumed, Limit: h.t.MaxSamples,
		Before: time.Now().Add(-time.Duration(s.cfg.LearnFeedbackWait))})
	if err != nil {
		return "", err
	}
	if len(b.Examples)+b.Excluded < h.t.MinSamples {
		// Enough samples, but not all old enough to have their feedback:
		// the ticker comes back.
		return "", nil
	}
	train, valid, skipped := learnFiles(b.Examples, h.t.Holdout)
	if len(train)+len(valid) == 1 {
		return "", nil // one usable sample cannot be validated: wait for another
	}
	if len(train) == 0 || len(valid) == 0 {
		o.log.Info("new samples hold too little to train on; skipped", "head", h.id, "samples", n,
			"excluded_by_feedback", b.Excluded, "unusable", skipped, "through_seq", b.Next)
		return "", s.heads.setConsumed(h.id, b.Next, "")
	}
	if _, err := s.trainer(); err != nil {
		return "", fmt.Errorf("retrain head %s: %w", h.id, err)
	}
	name := fmt.Sprintf("%s-traffic-%d-%d", h.id, consumed+1, b.Next)
	tf, err := s.storeFile(name+".train.jsonl", finetune.PurposeFineTune, joinLines(train))
	if err != nil {
		return "", fmt.Errorf("retrain head %s: store the training file: %w", h.id, err)
	}
	vf, err := s.storeFile(name+".valid.jsonl", finetune.PurposeFineTune, joinLines(valid))
	if err != nil {
		_ = s.tuning.files.Delete(tf.ID)
		return "", fmt.Errorf("retrain head %s: store the validation file: %w", h.id, err)
	}
	req := finetune.JobRequest{Model: h.id, TrainingFile: tf.ID, ValidationFile: vf.ID, Metadata: map[string]string{
		learnMetaHead: h.id, learnMetaFrom: strconv.FormatUint(consumed+1, 10), learnMetaTo: strconv.FormatUint(b.Next, 10)}}
	job, err := s.createJob(ctx, req, &tuneTarget{Head: h.id, PromoteIfBetter: true})
	if err != nil {
		_ = s.tuning.files.Delete(tf.ID)
		_ = s.tuning.files.Delete(vf.ID)
		return "", fmt.Errorf("retrain head %s: create the job: %w", h.id, err)
	}
	if err := s.heads.setConsumed(h.id, b.Next, job.ID); err != nil {
		// The next start finds the job by its metadata.
		o.log.Error("retraining job started but not recorded", "head", h.id, "job", job.ID, "error", err)
	}
	o.log.Info("retraining job started from logged traffic", "head", h.id, "job", job.ID, "train", len(train), "valid", len(valid),
		"excluded_by_feedback", b.Excluded, "unusable", skipped, "from_seq", consumed+1, "through_seq", b.Next)
	return job.ID, nil
}

// learnFiles turns examples into chat-format training lines and holds
// out a fraction of them (chosen by a hash of the completion id, so the
// split does not depend on what else arrived; at least one each way when
// there are two or more). Text completions and examples with an empty
// target or an unknown role are skipped and counted.
func learnFiles(examples []trafficlog.Example, holdout float64) (train, valid [][]byte, skipped int) {
	var lines [][]byte
	var held []bool
	for _, ex := range examples {
		line, ok := chatLine(ex)
		if !ok {
			skipped++
			continue
		}
		lines = append(lines, line)
		held = append(held, idFraction(ex.ID) < holdout)
	}
	if len(lines) < 2 {
		return lines, nil, skipped
	}
	nHeld := 0
	for _, h := range held {
		if h {
			nHeld++
		}
	}
	switch {
	case nHeld == 0 && holdout > 0:
		held[len(held)-1] = true
	case nHeld == len(held):
		held[0] = false
	}
	for i, line := range lines {
		if held[i] {
			valid = append(valid, line)
		} else {
			train = append(train, line)
		}
	}
	return train, valid, skipped
}

// chatLine is one training line: the logged conversation with its
// earlier assistant turns not trained, and the target as the trained
// answer.
func chatLine(ex trafficlog.Example) ([]byte, bool) {
	if ex.Kind != trafficlog.KindChat || ex.Target == "" || len(ex.Messages) == 0 {
		return nil, false
	}
	type message struct {
		Role    string   `json:"role"`
		Content string   `json:"content"`
		Weight  *float64 `json:"weight,omitempty"`
	}
	zero := 0.0
	msgs := make([]message, 0, len(ex.Messages)+1)
	for _, m := range ex.Messages {
		switch m.Role {
		case "system", "developer", "user", "tool":
			msgs = append(msgs, message{Role: m.Role, Content: m.Content})
		case "assistant":
			msgs = append(msgs, message{Role: m.Role, Content: m.Content, Weight: &zero})
		default:
			return nil, false
		}
	}
	msgs = append(msgs, message{Role: "assistant", Content: ex.Target})
	b, err := json.Marshal(struct {
		Messages []message `json:"messages"`
	}{msgs})
	return b, err == nil
}

// idFraction maps a completion id to [0, 1), uniformly over ids.
func idFraction(id string) float64 {
	h := sha256.Sum256([]byte(id))
	return float64(binary.BigEndian.Uint64(h[:8])>>11) / math.Exp2(53)
}

func joinLines(lines [][]byte) []byte {
	return append(bytes.Join(lines, []byte("\n")), '\n')
}
