package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carryon/carryon/server/config"
	"github.com/carryon/carryon/server/finetune"
	"github.com/carryon/carryon/server/trafficlog"
)

func TestLearnFiles(t *testing.T) {
	correction := "fixed"
	var exs []trafficlog.Example
	for i := range 40 {
		exs = append(exs, trafficlog.Example{Sample: trafficlog.Sample{ID: fmt.Sprintf("chatcmpl-%d", i), Kind: trafficlog.KindChat,
			Messages:   []trafficlog.Message{{Role: "system", Content: "s"}, {Role: "user", Content: "q"}, {Role: "assistant", Content: ""}, {Role: "user", Content: "again"}},
			Completion: "a"}, Target: "a"})
	}
	exs[3].Feedback = &trafficlog.Feedback{Correction: &correction}
	exs[3].Target = correction
	exs = append(exs,
		trafficlog.Example{Sample: trafficlog.Sample{ID: "cmpl-1", Kind: trafficlog.KindCompletion, Prompt: "p", Completion: "c"}, Target: "c"},
		trafficlog.Example{Sample: trafficlog.Sample{ID: "chatcmpl-empty", Kind: trafficlog.KindChat, Messages: []trafficlog.Message{{Role: "user", Content: "q"}}}},
		trafficlog.Example{Sample: trafficlog.Sample{ID: "chatcmpl-fn", Kind: trafficlog.KindChat, Messages: []trafficlog.Message{{Role: "function", Content: "q"}}}, Target: "x"},
	)
	train, valid, skipped := learnFiles(exs, 0.25)
	if skipped != 3 || len(train)+len(valid) != 40 || len(valid) < 4 || len(valid) > 18 {
		t.Fatalf("%d train, %d valid, %d skipped", len(train), len(valid), skipped)
	}
	// Every line is a valid training conversation whose only trained turn
	// is the target.
	data := joinLines(append(append([][]byte(nil), train...), valid...))
	convs, err := finetune.ParseChat("traffic.jsonl", data)
	if err != nil {
		t.Fatal(err)
	}
	sawCorrection := false
	for _, c := range convs {
		trained := 0
		for i, m := range c.Messages {
			if m.Trained {
				trained++
				if i != len(c.Messages)-1 {
					t.Fatalf("an earlier turn is trained: %+v", c.Messages)
				}
				sawCorrection = sawCorrection || m.Content == correction
			}
		}
		if trained != 1 || len(c.Messages) != 5 {
			t.Fatalf("conversation %+v", c.Messages)
		}
	}
	if !sawCorrection {
		t.Error("the correction is not a target")
	}
	// The split depends on the ids alone.
	train2, valid2, _ := learnFiles(exs[:20], 0.25)
	for _, v := range valid2 {
		found := false
		for _, w := range valid {
			found = found || string(v) == string(w)
		}
		if !found {
			t.Fatalf("a sample held out among 20 was trained among 40: %s", v)
		}
	}
	if len(train2) == 0 {
		t.Fatal("nothing to train among 20")
	}
	// Two samples: one each way, whatever their hashes.
	if tr, va, _ := learnFiles(exs[:2], 0.01); len(tr) != 1 || len(va) != 1 {
		t.Fatalf("two samples at 1%%: %d train, %d valid", len(tr), len(va))
	}
	if tr, va, _ := learnFiles(exs[:2], 0.5); len(tr) != 1 || len(va) != 1 {
		t.Fatalf("two samples at 50%%: %d train, %d valid", len(tr), len(va))
	}
}

// headStatus reads a head's status through the admin API.
func headStatus(t testing.TB, s *testServer, id string) HeadStatus {
	t.Helper()
	var st HeadStatus
	r := s.get(t, "/v1/heads/"+id)
	if r.status != http.StatusOK {
		t.Fatalf("get head %s: %d %s", id, r.status, r.body)
	}
	r.json(t, &st)
	if st.Learning == nil {
		st.Learning = &HeadLearning{}
	}
	return st
}

// askHead sends n chat completions to a head and returns their ids.
func askHead(t testing.TB, s *testServer, head string, n, offset int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		r := s.post(t, "/v1/chat/completions", fmt.Sprintf(`{"model":%q,"messages":[{"role":"system","content":"You answer in one sentence."},{"role":"user","content":"What is item %d?"}],"max_tokens":6,"temperature":0}`, head, i+offset))
		if r.status != http.StatusOK || r.header.Get(headerStored) != "true" {
			t.Fatalf("ask %s: %d stored=%q %s", head, r.status, r.header.Get(headerStored), r.body)
		}
		var reply chatReply
		r.json(t, &reply)
		ids = append(ids, reply.ID)
	}
	return ids
}

// TestOrchestratorRetrainsFromTraffic runs the whole loop on the tiny
// model: a learning head's traffic with corrections in, a retraining job
// started by the orchestrator, the new version promoted; then no job
// without new samples, none while pinned, and after a restart neither a
// repeat nor a job that was started but not recorded.
func TestOrchestratorRetrainsFromTraffic(t *testing.T) {
	dataDir := t.TempDir()
	edit := func(c *config.Config) {
		c.DataDir = dataDir
		c.LearnInterval = config.Duration(time.Hour) // passes come from samples and the test
		c.LearnFeedbackWait = 0
	}
	s := headServer(t, edit)
	registerHead(t, s, "h", writeHead(t, 0.5, 3))
	first := headStatus(t, s, "h").Version
	if r := s.post(t, "/v1/heads/h", `{"policy":"learn","min_samples":1000,"holdout":0.25}`); r.status != http.StatusOK {
		t.Fatalf("policy: %d %s", r.status, r.body)
	}
	ids := askHead(t, s, "h", 9, 0)
	// Corrections teach one reply; one answer is only rated down.
	for i, id := range ids {
		body := fmt.Sprintf(`{"id":%q,"correction":"It is a red box."}`, id)
		if i == 4 {
			body = fmt.Sprintf(`{"id":%q,"rating":-1}`, id)
		}
		if r := s.post(t, "/v1/feedback", body); r.status != http.StatusOK {
			t.Fatalf("feedback: %d %s", r.status, r.body)
		}
	}
	if st := headStatus(t, s, "h"); st.Learning.Job != "" {
		t.Fatalf("a job started below min_samples: %+v", st.Learning)
	}
	lg, err := s.trafficLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	last, _ := lg.LastSeq(context.Background())

	// Lowering the threshold wakes the orchestrator.
	if r := s.post(t, "/v1/heads/h", `{"min_samples":9}`); r.status != http.StatusOK {
		t.Fatalf("policy: %d %s", r.status, r.body)
	}
	var st HeadStatus
	waitFor(t, time.Minute, "the orchestrator to start a job", func() bool {
		st = headStatus(t, s, "h")
		return st.Learning.Job != ""
	})
	if st.Learning.ConsumedSeq != last {
		t.Errorf("consumed_seq %d, want the log's last record %d", st.Learning.ConsumedSeq, last)
	}
	j := waitJob(t, s, st.Learning.Job, 3*time.Minute)
	if j.Status != finetune.StatusSucceeded {
		t.Fatalf("job %s: %+v", j.Status, j.Error)
	}
	rep := j.Carryon
	if rep.Target != "h" || !rep.PromoteIfBetter || rep.TrainExamples+rep.ValidExamples != 8 || rep.ValidExamples < 1 ||
		j.Metadata[learnMetaHead] != "h" || j.Metadata[learnMetaTo] != strconv.FormatUint(last, 10) || j.Metadata[learnMetaFrom] != "1" {
		t.Fatalf("job %+v, report %+v", j, rep)
	}
	t.Logf("retrained on %d samples (%d held out): validation loss %.3f as it was, %.3f new; promoted %v",
		rep.TrainExamples+rep.ValidExamples, rep.ValidExamples, *rep.CompareValidLoss, *rep.ValidLoss, *rep.Promoted)
	st = headStatus(t, s, "h")
	if !*rep.Promoted || st.Version != rep.Version || st.Version == first || len(st.Versions) != 2 {
		t.Fatalf("promoted %v (loss %.4f vs %.4f); head at %s (first %s) with %d versions",
			*rep.Promoted, *rep.ValidLoss, *rep.CompareValidLoss, st.Version, first, len(st.Versions))
	}
	// The new version serves and is what the next samples record.
	next := askHead(t, s, "h", 1, 100)
	if smp := storedSample(t, s, next[0]); smp.Version != st.Version {
		t.Errorf("a sample after the swap names version %s, want %s", smp.Version, st.Version)
	}

	// One new sample is below the threshold: no job.
	s.learner.pass(context.Background())
	if got := headStatus(t, s, "h").Learning; got.Job != j.ID || got.ConsumedSeq != last {
		t.Fatalf("a pass without enough samples changed %+v", got)
	}
	// A pinned head is not retrained, whatever arrives.
	if r := s.post(t, "/v1/heads/h", `{"min_samples":2}`); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	if r := s.post(t, "/v1/heads/h/pin", ""); r.status != http.StatusOK {
		t.Fatalf("pin: %d %s", r.status, r.body)
	}
	askHead(t, s, "h", 2, 200)
	s.learner.pass(context.Background())
	if got := headStatus(t, s, "h").Learning; got.Job != j.ID {
		t.Fatalf("a pinned head got job %s", got.Job)
	}

	// A job started but not recorded (the server stopped in between) is
	// found after a restart and its samples are not trained again.
	last, _ = lg.LastSeq(context.Background())
	train := uploadOK(t, s, chatLines(4, 0))
	lost, err := s.createJob(context.Background(), finetune.JobRequest{TrainingFile: train.ID, ValidationFile: train.ID,
		Metadata: map[string]string{learnMetaHead: "h", learnMetaFrom: "1", learnMetaTo: strconv.FormatUint(last, 10)}},
		&tuneTarget{Head: "h", PromoteIfBetter: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.cancelJob(lost.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := headServer(t, edit)
	if r := s2.post(t, "/v1/heads/h/unpin", ""); r.status != http.StatusOK {
		t.Fatalf("unpin: %d %s", r.status, r.body)
	}
	s2.learner.pass(context.Background())
	got := headStatus(t, s2, "h")
	if got.Policy != policyLearn || got.Learning.Job != lost.ID || got.Learning.ConsumedSeq != last || got.Version != st.Version {
		t.Fatalf("after the restart: policy %s, learning %+v, version %s (want job %s, consumed %d, version %s)",
			got.Policy, got.Learning, got.Version, lost.ID, last, st.Version)
	}

	// New samples after the restart start a job of their own, from where
	// the last one ended; cancelling it leaves the version serving.
	askHead(t, s2, "h", 2, 300)
	waitFor(t, time.Minute, "a job for the new samples", func() bool {
		got = headStatus(t, s2, "h")
		return got.Learning.Job != lost.ID
	})
	var job2 finetune.Job
	s2.get(t, "/v1/fine_tuning/jobs/"+got.Learning.Job).json(t, &job2)
	if job2.Metadata[learnMetaFrom] != strconv.FormatUint(last+1, 10) {
		t.Fatalf("the new job starts at %s, want %d", job2.Metadata[learnMetaFrom], last+1)
	}
	if _, err := s2.cancelJob(job2.ID); err != nil && !strings.Contains(err.Error(), "already") {
		t.Fatal(err)
	}
	job2 = waitJob(t, s2, job2.ID, 3*time.Minute)
	if job2.Status == finetune.StatusCancelled {
		if v := headStatus(t, s2, "h").Version; v != st.Version {
			t.Fatalf("a cancelled job changed the version to %s", v)
		}
	}
	if r := s2.post(t, "/v1/chat/completions", `{"model":"h","messages":[{"role":"user","content":"still there?"}],"max_tokens":3}`); r.status != http.StatusOK {
		t.Fatalf("the head stopped serving: %d %s", r.status, r.body)
	}
}

// TestOrchestratorSkipsUnusableSamples consumes samples that cannot be
// trained on (all rated down) without starting a job.
func TestOrchestratorSkipsUnusableSamples(t *testing.T) {
	s := headServer(t, func(c *config.Config) { c.LearnInterval, c.LearnFeedbackWait = config.Duration(time.Hour), 0 })
	registerHead(t, s, "g", writeHead(t, 0.5, 4))
	if r := s.post(t, "/v1/heads/g", `{"policy":"learn","min_samples":1000}`); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	for _, id := range askHead(t, s, "g", 3, 0) {
		if r := s.post(t, "/v1/feedback", fmt.Sprintf(`{"id":%q,"rating":-1}`, id)); r.status != http.StatusOK {
			t.Fatal(r.status)
		}
	}
	if r := s.post(t, "/v1/heads/g", `{"min_samples":3}`); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	lg, _ := s.trafficLog(context.Background())
	last, _ := lg.LastSeq(context.Background())
	s.learner.pass(context.Background())
	got := headStatus(t, s, "g").Learning
	if got.Job != "" || got.ConsumedSeq != last {
		t.Fatalf("learning %+v, want no job and consumed_seq %d", got, last)
	}
	var jobs struct {
		Data []json.RawMessage `json:"data"`
	}
	s.get(t, "/v1/fine_tuning/jobs").json(t, &jobs)
	if len(jobs.Data) != 0 {
		t.Fatalf("%d jobs were started", len(jobs.Data))
	}
}

// TestOrchestratorWaitsForFeedback leaves samples younger than
// learn_feedback_wait alone, however many there are.
func TestOrchestratorWaitsForFeedback(t *testing.T) {
	s := headServer(t, func(c *config.Config) { c.LearnInterval = config.Duration(time.Hour) })
	registerHead(t, s, "w", writeHead(t, 0.5, 5))
	if r := s.post(t, "/v1/heads/w", `{"policy":"learn","min_samples":2}`); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	askHead(t, s, "w", 3, 0)
	s.learner.pass(context.Background())
	if got := headStatus(t, s, "w").Learning; got.Job != "" || got.ConsumedSeq != 0 {
		t.Fatalf("samples younger than a minute were used: %+v", got)
	}
}

// TestOrchestratorReportsErrors shows why a learning head cannot be
// retrained in its status.
func TestOrchestratorReportsErrors(t *testing.T) {
	s := headServer(t, func(c *config.Config) {
		c.LearnInterval = config.Duration(time.Hour)
		c.NATS = "nats://127.0.0.1:1" // nothing listens there
	})
	registerHead(t, s, "e", writeHead(t, 0.5, 6))
	if r := s.post(t, "/v1/heads/e", `{"policy":"learn"}`); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	s.learner.pass(context.Background())
	got := headStatus(t, s, "e").Learning
	if !strings.Contains(got.Error, "traffic log") || got.Job != "" {
		t.Fatalf("learning %+v: want the traffic log's error", got)
	}
	// The head still serves, and says its completion was not stored.
	r := s.post(t, "/v1/chat/completions", `{"model":"e","messages":[{"role":"user","content":"hi"}],"max_tokens":3}`)
	if r.status != http.StatusOK || r.header.Get(headerStored) != "false" {
		t.Fatalf("%d stored=%q", r.status, r.header.Get(headerStored))
	}
}
