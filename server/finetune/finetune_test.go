package finetune

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodLine = `{"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`

func TestParseChat(t *testing.T) {
	convs, err := ParseChat("f", []byte(goodLine+"\n\n"+
		`{"messages":[{"role":"user","content":[{"type":"text","text":"p1"},{"type":"text","text":"p2"}]},{"role":"assistant","content":"x","weight":0},{"role":"user","content":"again"},{"role":"assistant","content":"y"}]}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(convs) != 2 || convs[0].Line != 1 || convs[1].Line != 3 {
		t.Fatalf("conversations %+v", convs)
	}
	m := convs[1].Messages
	if m[0].Content != "p1p2" || m[1].Trained || !m[3].Trained || m[0].Trained {
		t.Fatalf("messages %+v", m)
	}

	cases := []struct {
		name, data string
		want       []string
	}{
		{"empty", "", []string{"the file is empty"}},
		{"blank", "\n  \n", []string{"no conversations"}},
		{"lines", goodLine + "\n" +
			"[1,2]\n" +
			`{"msgs":[]}` + "\n" +
			`{"messages":[]}` + "\n" +
			`{"messages":[{"content":"x"}]}` + "\n" +
			`{"messages":[{"role":"robot","content":"x"}]}` + "\n" +
			`{"messages":[{"role":"user","content":"q"}]}` + "\n" +
			`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":0}]}` + "\n" +
			`{"messages":[{"role":"user","content":5},{"role":"assistant","content":"a"}]}` + "\n" +
			`{"messages":[{"role":"user","content":"q","weight":1},{"role":"assistant","content":"a"}]}` + "\n" +
			`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":""}]}` + "\n",
			[]string{"line 2: not a JSON object", `line 3: missing "messages"`, `line 4: "messages" is empty`,
				"line 5: message 0 has no role", `line 6: message 0 has role "robot"`, "line 7: no assistant message",
				"line 8: no assistant message", "line 9: message 0 (user): content must be", "line 10: message 0 (user): only assistant",
				"line 11: message 1: a trained assistant message has empty content"}},
	}
	for _, c := range cases {
		_, err := ParseChat("train.jsonl", []byte(c.data))
		var verr *ValidationError
		if !errors.As(err, &verr) {
			t.Fatalf("%s: %v, want a ValidationError", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
		if c.name == "lines" && (verr.Total != 10 || len(verr.Lines) != 10 || strings.Contains(err.Error(), "line 1:")) {
			t.Errorf("lines: %d errors listed of %d: %v", len(verr.Lines), verr.Total, err)
		}
	}
	// Many bad lines are listed up to a bound, with the count.
	_, err = ParseChat("f", []byte(strings.Repeat("x\n", 30)))
	if !strings.Contains(err.Error(), "line 20:") || strings.Contains(err.Error(), "line 21:") || !strings.Contains(err.Error(), "(and 10 more)") {
		t.Errorf("30 bad lines: %v", err)
	}
	_, err = ParseChat("f", make([]byte, MaxFileBytes+1))
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("too large: %v", err)
	}
}

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Put("a.jsonl", PurposeFineTune, []byte(goodLine))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("b.jsonl", "batch", []byte(goodLine)); !errors.Is(err, ErrInvalid) {
		t.Errorf("other purpose: %v", err)
	}
	var verr *ValidationError
	if _, err := s.Put("c.jsonl", PurposeFineTune, []byte("nope")); !errors.As(err, &verr) {
		t.Errorf("bad content: %v", err)
	}
	b, _ := s.Put("../../b.jsonl", PurposeFineTune, []byte(goodLine+"\n"))
	if b.Filename != "b.jsonl" {
		t.Errorf("file name %q", b.Filename)
	}
	// Reopened, the store has the same files.
	s2, err := OpenFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.List(); len(got) != 2 || got[0].ID != b.ID || got[1].ID != a.ID {
		t.Fatalf("reopened list %+v, want b then a (newest first)", got)
	}
	data, err := s2.Content(a.ID)
	if err != nil || string(data) != goodLine {
		t.Fatalf("content %q %v", data, err)
	}
	if err := s2.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted file: %v", err)
	}
	if err := s2.Delete(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := s2.Content("../x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("content of a bad id: %v", err)
	}
}

func TestParseJobRequest(t *testing.T) {
	req, perr := ParseJobRequest([]byte(`{"model":"m","training_file":"file-1","suffix":"s-1","seed":3,
		"hyperparameters":{"n_epochs":"auto","batch_size":4,"learning_rate_multiplier":0.5,"layers":2},
		"method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":3}}},
		"carryon":{"dim":32,"alpha":0.5,"steps":10}}`))
	if perr != nil {
		t.Fatal(perr)
	}
	h := req.Hyperparameters
	if req.Model != "m" || *req.Seed != 3 || req.Suffix != "s-1" || h.NEpochs != Num(3) || h.BatchSize != Num(4) ||
		h.LearningRateMultiplier != Num(0.5) || h.Layers != 2 || h.Dim != 32 || *h.Alpha != 0.5 || h.Steps != 10 {
		t.Fatalf("request %+v", req)
	}
	b, _ := json.Marshal(JobHyperparameters{NEpochs: Setting{}, BatchSize: Num(4)})
	if string(b) != `{"n_epochs":"auto","batch_size":4,"learning_rate_multiplier":"auto"}` {
		t.Errorf("marshal %s", b)
	}
	for body, param := range map[string]string{
		`[]`:                    "",
		`{"training_file":"f"}`: "model",
		`{"model":"m"}`:         "training_file",
		`{"model":"m","training_file":"f","suffix":"a:b"}`:                                    "suffix",
		`{"model":"m","training_file":"f","hyperparameters":{"n_epochs":1.5}}`:                "hyperparameters.n_epochs",
		`{"model":"m","training_file":"f","hyperparameters":{"batch_size":0}}`:                "hyperparameters.batch_size",
		`{"model":"m","training_file":"f","hyperparameters":{"learning_rate_multiplier":-1}}`: "hyperparameters.learning_rate_multiplier",
		`{"model":"m","training_file":"f","hyperparameters":{"n_epochs":"many"}}`:             "hyperparameters",
		`{"model":"m","training_file":"f","hyperparameters":{"lr":1}}`:                        "hyperparameters",
		`{"model":"m","training_file":"f","carryon":{"dim":31}}`:                              "hyperparameters.dim",
		`{"model":"m","training_file":"f","method":{"type":"dpo"}}`:                           "method.type",
	} {
		_, perr := ParseJobRequest([]byte(body))
		if perr == nil || perr.Param != param {
			t.Errorf("%s: %v, want an error about %q", body, perr, param)
		}
	}
}

func TestJobStates(t *testing.T) {
	moves := map[[2]string]bool{
		{StatusValidating, StatusQueued}: true, {StatusQueued, StatusRunning}: true, {StatusRunning, StatusSucceeded}: true,
		{StatusQueued, StatusCancelled}: true, {StatusRunning, StatusCancelled}: true, {StatusRunning, StatusFailed}: true,
		{StatusValidating, StatusFailed}: true,
		{StatusQueued, StatusSucceeded}:  false, {StatusSucceeded, StatusCancelled}: false, {StatusCancelled, StatusRunning}: false,
		{StatusFailed, StatusQueued}: false, {StatusRunning, StatusQueued}: false,
	}
	for m, want := range moves {
		if got := CanTransition(m[0], m[1]); got != want {
			t.Errorf("%s -> %s: %v, want %v", m[0], m[1], got, want)
		}
	}
	j := NewJob(JobRequest{Model: "m", TrainingFile: "f"}, 1)
	if err := j.SetStatus(StatusSucceeded); err == nil || j.Status != StatusValidating {
		t.Fatalf("skipping states: %v, %s", err, j.Status)
	}
	for _, s := range []string{StatusQueued, StatusRunning, StatusSucceeded} {
		if err := j.SetStatus(s); err != nil {
			t.Fatal(err)
		}
	}
	if j.FinishedAt == nil {
		t.Fatal("finished_at not set")
	}
}

func TestJobStorePersistsAndFailsInterrupted(t *testing.T) {
	dir := t.TempDir()
	s, _, err := OpenJobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		j := NewJob(JobRequest{Model: "m", TrainingFile: "f"}, int64(i))
		j.CreatedAt = 1000 // the same second: the store keeps the creation order
		if _, err := s.Create(Record{Job: j}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	// 0 stays validating, 1 queued, 2 running, 3 succeeded, 4 queued.
	set := func(id string, states ...string) {
		for _, st := range states {
			if _, err := s.Update(id, func(r *Record) error { return r.Job.SetStatus(st) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	set(ids[1], StatusQueued)
	set(ids[2], StatusQueued, StatusRunning)
	set(ids[3], StatusQueued, StatusRunning, StatusSucceeded)
	set(ids[4], StatusQueued)
	if _, err := s.Update(ids[3], func(r *Record) error { return r.Job.SetStatus(StatusCancelled) }); err == nil {
		t.Error("cancelled a succeeded job")
	}
	for i := range 25 {
		if _, err := s.AddEvent(ids[2], "info", fmt.Sprintf("event %d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddEvent(ids[2], "info", "metrics", map[string]any{"step": 1}); err != nil {
		t.Fatal(err)
	}
	// A torn last line (a crash mid-write) is ignored.
	f, _ := os.OpenFile(filepath.Join(dir, ids[2]+".events.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"id":"ftevent-`)
	f.Close()

	s2, interrupted, err := OpenJobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(interrupted) != 2 {
		t.Fatalf("interrupted %v, want jobs 0 and 2", interrupted)
	}
	for _, id := range []string{ids[0], ids[2]} {
		r, _ := s2.Get(id)
		if r.Job.Status != StatusFailed || r.Job.Error == nil || r.Job.Error.Code != "server_restarted" || r.Job.FinishedAt == nil {
			t.Errorf("job after restart %+v", r.Job)
		}
	}
	if q := s2.Queued(); len(q) != 2 || q[0] != ids[1] || q[1] != ids[4] {
		t.Errorf("queued %v, want %v oldest first", q, []string{ids[1], ids[4]})
	}
	// Jobs page newest first.
	page, more := s2.List("", 2)
	if len(page) != 2 || page[0].ID != ids[4] || page[1].ID != ids[3] || !more {
		t.Fatalf("first page %v %v", page, more)
	}
	page, more = s2.List(ids[3], 10)
	if len(page) != 3 || page[0].ID != ids[2] || more {
		t.Fatalf("second page %v %v", page, more)
	}
	if page, _ := s2.List("ftjob-unknown", 10); len(page) != 0 {
		t.Errorf("after an unknown id: %v", page)
	}
	// Events page newest first: the restart's error, the metrics, then
	// the 25 messages.
	evs, more, err := s2.Events(ids[2], "", 0)
	if err != nil || len(evs) != DefaultLimit || !more {
		t.Fatalf("events %d %v %v", len(evs), more, err)
	}
	if evs[0].Level != "error" || evs[1].Type != "metrics" || evs[1].Data["step"] != float64(1) || evs[2].Message != "event 24" || evs[2].Type != "message" {
		t.Fatalf("newest events %+v", evs[:3])
	}
	rest, more, _ := s2.Events(ids[2], evs[len(evs)-1].ID, 100)
	if len(rest) != 7 || more || rest[6].Message != "event 0" {
		t.Fatalf("rest %d %v", len(rest), more)
	}
	if _, _, err := s2.Events("ftjob-nope", "", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("events of an unknown job: %v", err)
	}
}

func TestCheckpoints(t *testing.T) {
	j := NewJob(JobRequest{Model: "m", TrainingFile: "f"}, 1)
	if len(Checkpoints(j)) != 0 {
		t.Fatal("a job that did not finish has a checkpoint")
	}
	name, yes, loss := "ft:m::1", true, 0.5
	j.Status, j.FineTunedModel, j.Carryon = StatusSucceeded, &name, Report{Promoted: &yes, Version: "abc", Steps: 9, ValidLoss: &loss}
	c := Checkpoints(j)
	if len(c) != 1 || c[0].FineTunedModelCheckpoint != name || c[0].StepNumber != 9 || c[0].Metrics["valid_loss"] != 0.5 {
		t.Fatalf("checkpoints %+v", c)
	}
}
