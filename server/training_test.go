package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carryon/carryon/server/config"
	"github.com/carryon/carryon/server/finetune"
)

// chatLines returns n training conversations of one fixed-reply domain.
func chatLines(n, offset int) string {
	var b strings.Builder
	for i := range n {
		line, _ := json.Marshal(map[string]any{"messages": []map[string]string{
			{"role": "system", "content": "You answer in one sentence."},
			{"role": "user", "content": fmt.Sprintf("What is item %d?", i+offset)},
			{"role": "assistant", "content": "It is a red box."},
		}})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// upload posts a file to /v1/files as the SDKs do.
func upload(t testing.TB, s *testServer, name, purpose, content string) response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	if purpose != "" {
		_ = w.WriteField("purpose", purpose)
	}
	fw, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte(content))
	w.Close()
	res, err := http.Post(s.url+"/v1/files", w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: out.Bytes()}
}

func uploadOK(t testing.TB, s *testServer, content string) finetune.File {
	t.Helper()
	r := upload(t, s, "train.jsonl", "fine-tune", content)
	if r.status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var f finetune.File
	r.json(t, &f)
	return f
}

// waitJob polls a job until it is over and returns it.
func waitJob(t testing.TB, s *testServer, id string, timeout time.Duration) finetune.Job {
	t.Helper()
	var j finetune.Job
	waitFor(t, timeout, "job "+id+" to finish", func() bool {
		r := s.get(t, "/v1/fine_tuning/jobs/"+id)
		if r.status != http.StatusOK {
			t.Fatalf("get job: %d %s", r.status, r.body)
		}
		j = finetune.Job{}
		r.json(t, &j)
		return finetune.Terminal(j.Status)
	})
	return j
}

func createJob(t testing.TB, s *testServer, body string) finetune.Job {
	t.Helper()
	r := s.post(t, "/v1/fine_tuning/jobs", body)
	if r.status != http.StatusOK {
		t.Fatalf("create job: %d %s", r.status, r.body)
	}
	var j finetune.Job
	r.json(t, &j)
	return j
}

func TestFilesRoutes(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	f := uploadOK(t, s, chatLines(3, 0))
	if !strings.HasPrefix(f.ID, "file-") || f.Object != "file" || f.Purpose != "fine-tune" || f.Filename != "train.jsonl" || f.Bytes != int64(len(chatLines(3, 0))) {
		t.Fatalf("file %+v", f)
	}
	r := s.get(t, "/v1/files/"+f.ID+"/content")
	if r.status != http.StatusOK || string(r.body) != chatLines(3, 0) {
		t.Fatalf("content: %d %q", r.status, r.body)
	}
	var list struct {
		Object  string          `json:"object"`
		Data    []finetune.File `json:"data"`
		HasMore bool            `json:"has_more"`
	}
	s.get(t, "/v1/files").json(t, &list)
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != f.ID {
		t.Fatalf("list %+v", list)
	}

	// Validation errors name the lines.
	bad := `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}` + "\n" +
		"{not json\n" +
		`{"messages":[{"role":"wizard","content":"x"}]}` + "\n" +
		`{"messages":[{"role":"user","content":"only a question"}]}` + "\n"
	r = upload(t, s, "bad.jsonl", "fine-tune", bad)
	wantError(t, r, http.StatusBadRequest, "invalid_value", "file")
	for _, want := range []string{"line 2: not a JSON object", `line 3: message 0 has role`, "line 4: no assistant message"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("error %s does not say %q", r.body, want)
		}
	}
	wantError(t, upload(t, s, "empty.jsonl", "fine-tune", ""), http.StatusBadRequest, "invalid_value", "file")
	wantError(t, upload(t, s, "x.jsonl", "assistants", chatLines(1, 0)), http.StatusBadRequest, "unsupported_value", "purpose")
	wantError(t, upload(t, s, "x.jsonl", "", chatLines(1, 0)), http.StatusBadRequest, "missing_required_parameter", "purpose")
	wantError(t, s.get(t, "/v1/files/file-000000000000000000000000"), http.StatusNotFound, "not_found", "")

	r = s.do(t, http.MethodDelete, "/v1/files/"+f.ID, "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"deleted":true`) {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantError(t, s.get(t, "/v1/files/"+f.ID), http.StatusNotFound, "not_found", "")
}

func TestFineTuningJobRequests(t *testing.T) {
	s := headServer(t, nil)
	f := uploadOK(t, s, chatLines(4, 0))
	cases := []struct {
		body, code, param string
		status            int
	}{
		{`{"training_file":"` + f.ID + `"}`, "missing_required_parameter", "model", 400},
		{`{"model":"tiny"}`, "missing_required_parameter", "training_file", 400},
		{`{"model":"nope","training_file":"` + f.ID + `"}`, "model_not_found", "model", 404},
		{`{"model":"tiny","training_file":"file-000000000000000000000000"}`, "invalid_value", "training_file", 400},
		{`{"model":"tiny","training_file":"` + f.ID + `","hyperparameters":{"n_epochs":0}}`, "invalid_value", "hyperparameters.n_epochs", 400},
		{`{"model":"tiny","training_file":"` + f.ID + `","hyperparameters":{"batch_size":"big"}}`, "invalid_value", "hyperparameters", 400},
		{`{"model":"tiny","training_file":"` + f.ID + `","hyperparameters":{"epochs":3}}`, "invalid_value", "hyperparameters", 400},
		{`{"model":"tiny","training_file":"` + f.ID + `","suffix":"a:b"}`, "invalid_value", "suffix", 400},
		{`{"model":"tiny","training_file":"` + f.ID + `","carryon":{"layers":9}}`, "invalid_value", "hyperparameters.layers", 400},
	}
	for _, c := range cases {
		wantError(t, s.post(t, "/v1/fine_tuning/jobs", c.body), c.status, c.code, c.param)
	}
	wantError(t, s.get(t, "/v1/fine_tuning/jobs/ftjob-000000000000000000000000"), http.StatusNotFound, "not_found", "")
	wantError(t, s.post(t, "/v1/fine_tuning/jobs/ftjob-000000000000000000000000/cancel", ""), http.StatusNotFound, "not_found", "")
}

// TestFineTuningEndToEnd uploads a training file, runs a real job on the
// tiny model through the plugin, checks the job's events and losses, chats
// with the ft: model, trains a second job from the first's features (all
// cache hits) and continues the head as a new version (promote if better).
func TestFineTuningEndToEnd(t *testing.T) {
	s := headServer(t, nil)
	train := uploadOK(t, s, chatLines(24, 0))
	valid := uploadOK(t, s, chatLines(4, 100))
	j := createJob(t, s, fmt.Sprintf(`{"model":"tiny","training_file":%q,"validation_file":%q,"suffix":"box","seed":7,
		"hyperparameters":{"n_epochs":"auto","batch_size":4,"learning_rate_multiplier":5},"carryon":{"steps":60,"layers":1,"dim":32}}`, train.ID, valid.ID))
	if !strings.HasPrefix(j.ID, "ftjob-") || j.Object != "fine_tuning.job" || j.Model != "tiny" || j.Seed != 7 {
		t.Fatalf("created job %+v", j)
	}
	j = waitJob(t, s, j.ID, 3*time.Minute)
	if j.Status != finetune.StatusSucceeded {
		t.Fatalf("job %s: %+v", j.Status, j.Error)
	}
	want := "ft:tiny:box:" + strings.TrimPrefix(j.ID, "ftjob-")[:8]
	if j.FineTunedModel == nil || *j.FineTunedModel != want || j.FinishedAt == nil || j.TrainedTokens == nil || *j.TrainedTokens <= 0 {
		t.Fatalf("finished job %+v", j)
	}
	rep := j.Carryon
	if rep.BaseValidLoss == nil || rep.ValidLoss == nil || rep.TrainLoss == nil || rep.Steps != 60 || rep.FeatureComputed != 28 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("validation loss: base %.3f, fine-tuned %.3f (train %.3f)", *rep.BaseValidLoss, *rep.ValidLoss, *rep.TrainLoss)
	if *rep.ValidLoss > *rep.BaseValidLoss-1 {
		t.Fatalf("validation loss %.3f, base %.3f: want at least 1 nat lower", *rep.ValidLoss, *rep.BaseValidLoss)
	}
	if got := j.Hyperparameters; got.BatchSize.Value != 4 || got.LearningRateMultiplier.Value != 5 || !got.NEpochs.Set {
		t.Errorf("resolved hyperparameters %+v", got)
	}

	// Events: newest first, with metrics.
	var evs struct {
		Data    []finetune.Event `json:"data"`
		HasMore bool             `json:"has_more"`
	}
	s.get(t, "/v1/fine_tuning/jobs/"+j.ID+"/events?limit=100").json(t, &evs)
	metrics := 0
	for _, ev := range evs.Data {
		if ev.Type == "metrics" {
			metrics++
			if _, ok := ev.Data["step"]; !ok {
				t.Errorf("metrics event without step: %+v", ev)
			}
		}
	}
	if len(evs.Data) < 5 || metrics < 5 || evs.Data[0].Message != "The job has successfully completed" {
		t.Fatalf("%d events (%d metrics), newest %+v", len(evs.Data), metrics, evs.Data[0])
	}
	var page struct {
		Data    []finetune.Event `json:"data"`
		HasMore bool             `json:"has_more"`
	}
	s.get(t, "/v1/fine_tuning/jobs/"+j.ID+"/events?limit=2&after="+evs.Data[1].ID).json(t, &page)
	if len(page.Data) != 2 || page.Data[0].ID != evs.Data[2].ID || !page.HasMore {
		t.Fatalf("second page %+v", page)
	}
	var ckpts struct {
		Data []finetune.Checkpoint `json:"data"`
	}
	s.get(t, "/v1/fine_tuning/jobs/"+j.ID+"/checkpoints").json(t, &ckpts)
	if len(ckpts.Data) != 1 || ckpts.Data[0].FineTunedModelCheckpoint != want {
		t.Fatalf("checkpoints %+v", ckpts)
	}

	// The fine-tuned model serves at once.
	r := s.post(t, "/v1/chat/completions", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"What is item 7?"}],"max_tokens":8,"temperature":0}`, want))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"model":"`+want+`"`) {
		t.Fatalf("chat with %s: %d %s", want, r.status, r.body)
	}
	var reply struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	r.json(t, &reply)
	if got := reply.Choices[0].Message.Content; !strings.HasPrefix(got, "It is a red") {
		t.Errorf("the fine-tuned model replies %q, want the trained reply", got)
	}

	// Continue the head: a new version, registered only if better.
	other := createJob(t, s, fmt.Sprintf(`{"model":"tiny","training_file":%q,"validation_file":%q,"hyperparameters":{"batch_size":4},"carryon":{"steps":20}}`, train.ID, valid.ID))
	j2, err := s.createJob(s.ctx, finetune.JobRequest{TrainingFile: train.ID, ValidationFile: valid.ID,
		Hyperparameters: finetune.Hyperparameters{BatchSize: finetune.Num(4), Steps: 20}}, &tuneTarget{Head: want, PromoteIfBetter: true})
	if err != nil {
		t.Fatal(err)
	}
	if o := waitJob(t, s, other.ID, 3*time.Minute); o.FineTunedModel == nil || *o.FineTunedModel != "ft:tiny::"+strings.TrimPrefix(o.ID, "ftjob-")[:8] {
		t.Fatalf("job without a suffix: %+v", o)
	}
	j2 = waitJob(t, s, j2.ID, 3*time.Minute)
	rep2 := j2.Carryon
	if j2.Status != finetune.StatusSucceeded || rep2.FeatureHits != 28 || rep2.FeatureComputed != 0 || rep2.CompareValidLoss == nil || rep2.Promoted == nil {
		t.Fatalf("continued job %s %+v: %+v", j2.Status, j2.Error, rep2)
	}
	if *rep2.CompareValidLoss != *rep.ValidLoss {
		t.Errorf("the comparison loss %.5f is not the first version's %.5f", *rep2.CompareValidLoss, *rep.ValidLoss)
	}
	st, _ := s.heads.get(want)
	if *rep2.Promoted != (*rep2.ValidLoss < *rep2.CompareValidLoss) || (st.Version == rep2.Version) != *rep2.Promoted || len(st.Versions) != map[bool]int{true: 2, false: 1}[*rep2.Promoted] {
		t.Fatalf("promoted %v (loss %.4f vs %.4f), head now at %s with %d versions", *rep2.Promoted, *rep2.ValidLoss, *rep2.CompareValidLoss, st.Version, len(st.Versions))
	}

	// A new version that is no better is not promoted: a learning rate too
	// small to change the F16 weights gives the same loss.
	before, _ := s.heads.get(want)
	j3, err := s.createJob(s.ctx, finetune.JobRequest{TrainingFile: train.ID, ValidationFile: valid.ID,
		Hyperparameters: finetune.Hyperparameters{LearningRateMultiplier: finetune.Num(1e-6), Steps: 2}}, &tuneTarget{Head: want, PromoteIfBetter: true})
	if err != nil {
		t.Fatal(err)
	}
	j3 = waitJob(t, s, j3.ID, 3*time.Minute)
	after, _ := s.heads.get(want)
	if j3.Status != finetune.StatusSucceeded || j3.Carryon.Promoted == nil || *j3.Carryon.Promoted || after.Version != before.Version || len(after.Versions) != len(before.Versions) {
		t.Fatalf("a version that is not better: %s promoted %v, head version %s -> %s", j3.Status, j3.Carryon.Promoted, before.Version, after.Version)
	}
	if evs, _, _ := s.tuning.jobs.Events(j3.ID, "", 3); !strings.Contains(evs[1].Message, "not promoted") {
		t.Errorf("events %+v do not say that the version was not promoted", evs)
	}

	// Fine-tuning a fine-tuned model starts from its weights and makes
	// another ft: head.
	again := createJob(t, s, fmt.Sprintf(`{"model":%q,"training_file":%q,"validation_file":%q,"suffix":"again","carryon":{"steps":3}}`, want, train.ID, valid.ID))
	again = waitJob(t, s, again.ID, 3*time.Minute)
	if again.Status != finetune.StatusSucceeded || again.FineTunedModel == nil || !strings.HasPrefix(*again.FineTunedModel, "ft:tiny:again:") ||
		again.Carryon.CompareValidLoss == nil || *again.Carryon.ValidLoss > *rep.BaseValidLoss-1 {
		t.Fatalf("job on a fine-tuned model: %s %+v %+v", again.Status, again.Error, again.Carryon)
	}

	// Jobs list newest first, paginated.
	var jobs struct {
		Data    []finetune.Job `json:"data"`
		HasMore bool           `json:"has_more"`
	}
	s.get(t, "/v1/fine_tuning/jobs?limit=2").json(t, &jobs)
	if len(jobs.Data) != 2 || !jobs.HasMore || jobs.Data[0].ID != again.ID {
		t.Fatalf("jobs page %+v", jobs)
	}
	s.get(t, "/v1/fine_tuning/jobs?after="+jobs.Data[1].ID).json(t, &jobs)
	if len(jobs.Data) != 3 || jobs.Data[2].ID != j.ID || jobs.HasMore {
		t.Fatalf("last jobs page %+v", jobs)
	}
}

// TestFineTuningCancelAndRestart cancels a running job (whatever served
// keeps serving, no head is made), cancels a queued one, and restarts the
// server over a job store holding a job that was running: it is failed.
func TestFineTuningCancelAndRestart(t *testing.T) {
	dataDir := t.TempDir()
	s := headServer(t, func(c *config.Config) { c.DataDir = dataDir })
	train := uploadOK(t, s, chatLines(24, 0))
	body := fmt.Sprintf(`{"model":"tiny","training_file":%q,"carryon":{"steps":100000}}`, train.ID)
	long := createJob(t, s, body)
	queued := createJob(t, s, body)
	waitFor(t, time.Minute, "the job to run", func() bool {
		r, _ := s.tuning.jobs.Get(long.ID)
		return r.Job.Status == finetune.StatusRunning
	})
	r := s.post(t, "/v1/fine_tuning/jobs/"+queued.ID+"/cancel", "")
	var j finetune.Job
	r.json(t, &j)
	if r.status != http.StatusOK || j.Status != finetune.StatusCancelled {
		t.Fatalf("cancel queued: %d %s", r.status, r.body)
	}
	wantError(t, s.post(t, "/v1/fine_tuning/jobs/"+queued.ID+"/cancel", ""), http.StatusBadRequest, "invalid_value", "")
	// Let it reach the plugin, then cancel.
	waitFor(t, time.Minute, "training steps", func() bool {
		evs, _, _ := s.tuning.jobs.Events(long.ID, "", 100)
		for _, ev := range evs {
			if ev.Type == "metrics" {
				return true
			}
		}
		return false
	})
	t0 := time.Now()
	if r := s.post(t, "/v1/fine_tuning/jobs/"+long.ID+"/cancel", ""); r.status != http.StatusOK {
		t.Fatalf("cancel running: %d %s", r.status, r.body)
	}
	j = waitJob(t, s, long.ID, 30*time.Second)
	if j.Status != finetune.StatusCancelled || j.FineTunedModel != nil {
		t.Fatalf("cancelled job %+v", j)
	}
	t.Logf("cancel took %v", time.Since(t0))
	if len(s.heads.list()) != 0 {
		t.Fatalf("a cancelled job registered a head: %+v", s.heads.list())
	}
	if r := s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`); r.status != http.StatusOK {
		t.Fatalf("the base stopped serving: %d %s", r.status, r.body)
	}

	// A job recorded as running when the server starts is failed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	jobsDir := filepath.Join(dataDir, "fine_tuning", "jobs")
	rec, _ := s.tuning.jobs.Get(long.ID)
	rec.Job.ID, rec.Job.Status, rec.Job.FinishedAt = "ftjob-00000000000000000000abcd", finetune.StatusRunning, nil
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(jobsDir, rec.Job.ID+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, func() config.Config {
		c := testConfig(t, tinyModel())
		c.DataDir, c.PluginsDir = dataDir, testPlugins(t)
		return c
	}())
	r = s2.get(t, "/v1/fine_tuning/jobs/"+rec.Job.ID)
	j = finetune.Job{}
	r.json(t, &j)
	if j.Status != finetune.StatusFailed || j.Error == nil || j.Error.Code != "server_restarted" {
		t.Fatalf("job running at restart: %+v", j)
	}
	r = s2.get(t, "/v1/files/"+train.ID)
	if r.status != http.StatusOK {
		t.Fatalf("the file did not survive the restart: %d %s", r.status, r.body)
	}
}

// TestConversationTargets checks which tokens a conversation trains on:
// exactly those of the trained assistant turns (with the template's end of
// turn), not the system or user turns, nor an assistant turn of weight 0.
func TestConversationTargets(t *testing.T) {
	s := startServer(t, testConfig(t, tinyModel()))
	m := s.byName["tiny"]
	convs, err := finetune.ParseChat("f", []byte(`{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},`+
		`{"role":"assistant","content":"Skip me","weight":0},{"role":"user","content":"Again"},{"role":"assistant","content":"Hello there"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	seq, err := conversationSequence(m, convs[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	var trained []int32
	for j, on := range seq.Trained {
		if on {
			trained = append(trained, seq.Tokens[j+1])
		}
	}
	if got := m.tok.Decode(trained); got != "Hello there<|im_end|>\n" {
		t.Fatalf("trained text %q, want the last reply and its end of turn", got)
	}
	// A cut that leaves no trained token drops the conversation.
	if seq, _ := conversationSequence(m, convs[0], 10); seq.Tokens != nil {
		t.Fatalf("a 10-token cut kept %d tokens", len(seq.Tokens))
	}
}

// TestFineTuningPluginCrash kills the plugin during a job: the job fails
// with a clear error, the server keeps serving, and the restarted plugin
// runs the next job.
func TestFineTuningPluginCrash(t *testing.T) {
	s := headServer(t, nil)
	train := uploadOK(t, s, chatLines(24, 0))
	long := createJob(t, s, fmt.Sprintf(`{"model":"tiny","training_file":%q,"carryon":{"steps":100000}}`, train.ID))
	waitFor(t, time.Minute, "training steps", func() bool {
		evs, _, _ := s.tuning.jobs.Events(long.ID, "", 100)
		for _, ev := range evs {
			if ev.Type == "metrics" {
				return true
			}
		}
		return false
	})
	pp := s.plugins.forType("carryon")
	if err := syscall.Kill(pp.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, s, long.ID, 30*time.Second)
	if j.Status != finetune.StatusFailed || j.Error == nil || j.Error.Code != "plugin_failed" {
		t.Fatalf("job after the plugin crashed: %s %+v", j.Status, j.Error)
	}
	if r := s.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`); r.status != http.StatusOK {
		t.Fatalf("the server stopped serving: %d %s", r.status, r.body)
	}
	waitFor(t, 30*time.Second, "the plugin to come back", func() bool { up, _, _ := pp.status(); return up })
	next := createJob(t, s, fmt.Sprintf(`{"model":"tiny","training_file":%q,"carryon":{"steps":5,"dim":16,"layers":1}}`, train.ID))
	if j := waitJob(t, s, next.ID, time.Minute); j.Status != finetune.StatusSucceeded {
		t.Fatalf("job after the restart: %s %+v", j.Status, j.Error)
	}
}

// TestFineTuningAdminKey: with an admin key configured, the file and
// fine-tuning routes need it.
func TestFineTuningAdminKey(t *testing.T) {
	s := startServer(t, func() config.Config {
		c := testConfig(t, tinyModel())
		c.AdminKey = "sesame"
		return c
	}())
	for _, path := range []string{"/v1/files", "/v1/fine_tuning/jobs"} {
		wantError(t, s.get(t, path), http.StatusUnauthorized, "invalid_api_key", "")
		req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
		req.Header.Set("Authorization", "Bearer sesame")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s with the key: %d", path, res.StatusCode)
		}
	}
}
