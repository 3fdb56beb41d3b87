package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/server/openai"
	"github.com/carryon/carryon/server/scheduler"
)

// headIDPattern is what a head id may look like: it is a model name for
// clients and a directory name in the data directory.
var headIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// headVersion is one stored version of a head.
type headVersion struct {
	Version string    `json:"version"`
	Created time.Time `json:"created"`

	refs    int  // requests running on it
	loaded  bool // loaded in the plugin
	retired bool // no longer current: unloaded once refs is 0
	taps    []int
}

// headEntry is a registered head.
type headEntry struct {
	ID       string         `json:"id"`
	Base     string         `json:"base"`
	Plugin   string         `json:"plugin"`
	Type     string         `json:"type"`
	Current  string         `json:"current"`
	Pinned   bool           `json:"pinned"`
	Versions []*headVersion `json:"versions"`
	// Learn is how the head learns from its traffic; nil serves only.
	Learn *headLearning `json:"learn,omitempty"`

	lastErr  string
	learnErr string // why the last retraining could not start
}

func (e *headEntry) version(v string) *headVersion {
	for _, hv := range e.Versions {
		if hv.Version == v {
			return hv
		}
	}
	return nil
}

// headRegistry maps head ids to their base model, plugin and versions. It
// is kept in <data-dir>/heads/registry.json; version files are stored in
// <data-dir>/heads/<id>/<version>/.
type headRegistry struct {
	dir    string
	log    hclog.Logger
	sup    *supervisor
	models map[string]*Model

	mu    sync.Mutex
	heads map[string]*headEntry
	bases map[string]carryonhead.Base // by model name, computed once

	// learnDefaults fills the thresholds a learning head leaves unset.
	learnDefaults learnThresholds
}

// headError is an error with the HTTP status it answers.
type headError struct {
	status int
	code   string
	err    error
}

func (e *headError) Error() string { return e.err.Error() }
func (e *headError) Unwrap() error { return e.err }

func herr(status int, code string, format string, args ...any) error {
	return &headError{status: status, code: code, err: fmt.Errorf(format, args...)}
}

// pluginID is the id a head version is loaded under in its plugin.
func pluginID(id, version string) string { return id + "@" + version }

// newHeadRegistry reads the registry file (if any) and loads every head's
// current version into its plugin. Heads that cannot be loaded stay
// registered with their error.
func newHeadRegistry(dataDir string, sup *supervisor, models []*Model, log hclog.Logger) (*headRegistry, error) {
	reg := &headRegistry{dir: filepath.Join(dataDir, "heads"), log: log.Named("heads"), sup: sup,
		models: map[string]*Model{}, heads: map[string]*headEntry{}, bases: map[string]carryonhead.Base{}}
	for _, m := range models {
		reg.models[m.Name] = m
	}
	b, err := os.ReadFile(filepath.Join(reg.dir, "registry.json"))
	if errors.Is(err, os.ErrNotExist) {
		return reg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read head registry: %w", err)
	}
	var file struct {
		Heads []*headEntry `json:"heads"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("read head registry %s: %w", filepath.Join(reg.dir, "registry.json"), err)
	}
	for _, e := range file.Heads {
		reg.heads[e.ID] = e
		v := e.version(e.Current)
		pp := sup.byName(e.Plugin)
		switch {
		case v == nil:
			e.lastErr = "the registry names no current version"
		case reg.models[e.Base] == nil:
			e.lastErr = fmt.Sprintf("base model %s is not loaded", e.Base)
		case pp == nil:
			e.lastErr = fmt.Sprintf("plugin %s is not installed", e.Plugin)
		default:
			if err := reg.loadVersion(context.Background(), e, v, pp); err != nil {
				e.lastErr = err.Error()
			}
		}
		if e.lastErr != "" {
			reg.log.Warn("registered head cannot serve", "head", e.ID, "error", e.lastErr)
		}
	}
	return reg, nil
}

// loadVersion loads a stored version into its plugin and checks it.
func (reg *headRegistry) loadVersion(ctx context.Context, e *headEntry, v *headVersion, pp *pluginProc) error {
	pp.admin.Lock()
	defer pp.admin.Unlock()
	reg.mu.Lock()
	loaded := v.loaded
	reg.mu.Unlock()
	if loaded {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pluginCallTime)
	defer cancel()
	info, err := pp.load(ctx, pluginID(e.ID, v.Version), filepath.Join(reg.dir, e.ID, v.Version))
	if err != nil {
		if errors.Is(err, sdk.ErrInvalid) || errors.Is(err, sdk.ErrUnsupported) {
			return herr(http.StatusBadRequest, openai.CodeInvalidValue, "head %s: the plugin refused the directory: %v", e.ID, err)
		}
		return herr(http.StatusServiceUnavailable, openai.CodeUnavailable, "head %s: plugin %s: %v", e.ID, pp.name, err)
	}
	m := reg.models[e.Base]
	if m != nil && info.Dim != m.model.Config().Dim {
		_ = pp.unload(ctx, pluginID(e.ID, v.Version))
		return herr(http.StatusBadRequest, openai.CodeInvalidValue, "head %s has width %d but base %s has %d", e.ID, info.Dim, e.Base, m.model.Config().Dim)
	}
	reg.mu.Lock()
	v.loaded, v.taps = true, info.Taps
	reg.mu.Unlock()
	return nil
}

// baseOf returns the identity of a loaded model.
func (reg *headRegistry) baseOf(m *Model) (carryonhead.Base, error) {
	reg.mu.Lock()
	b, ok := reg.bases[m.Name]
	reg.mu.Unlock()
	if ok {
		return b, nil
	}
	f, err := gguf.Open(m.Path)
	if err != nil {
		return carryonhead.Base{}, err
	}
	defer f.Close()
	b, err = carryonhead.BaseFromGGUF(f)
	if err != nil {
		return b, err
	}
	reg.mu.Lock()
	reg.bases[m.Name] = b
	reg.mu.Unlock()
	return b, nil
}

// headFiles is what a head directory holds for the registry.
type headFiles struct {
	config, weights []byte
	typ             string
	base            carryonhead.Base
}

// readHeadDir reads and checks a head directory.
func readHeadDir(dir string) (*headFiles, error) {
	var hf headFiles
	var err error
	if hf.config, err = os.ReadFile(filepath.Join(dir, carryonhead.ConfigFile)); err != nil {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "head directory %s: %v", dir, err)
	}
	if hf.weights, err = os.ReadFile(filepath.Join(dir, carryonhead.WeightsFile)); err != nil {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "head directory %s: %v", dir, err)
	}
	return hf.parse(dir)
}

func (hf *headFiles) parse(where string) (*headFiles, error) {
	var cfg struct {
		Type string           `json:"type"`
		Base carryonhead.Base `json:"base"`
	}
	if err := json.Unmarshal(hf.config, &cfg); err != nil {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "head %s: %s is not valid JSON: %v", where, carryonhead.ConfigFile, err)
	}
	if cfg.Type == "" {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "head %s: %s names no type", where, carryonhead.ConfigFile)
	}
	hf.typ, hf.base = cfg.Type, cfg.Base
	return hf, nil
}

// register stores a new version of head id from its files and makes it
// current. create asks for a new head (409 if it exists), otherwise the
// head must exist and not be pinned. baseName may name the base model;
// otherwise the base is found by the head's fingerprint. On any error the
// current version keeps serving.
func (reg *headRegistry) register(ctx context.Context, id, baseName string, hf *headFiles, create bool) (*headEntry, error) {
	if !headIDPattern.MatchString(id) {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "head id %q: use letters, digits and . _ : - (at most 128)", id)
	}
	if _, ok := reg.models[id]; ok {
		return nil, herr(http.StatusConflict, "conflict", "head id %q is the name of a base model", id)
	}
	reg.mu.Lock()
	e := reg.heads[id]
	switch {
	case create && e != nil:
		reg.mu.Unlock()
		return nil, herr(http.StatusConflict, "conflict", "head %s already exists; PUT /v1/heads/%s registers a new version", id, id)
	case !create && e == nil:
		reg.mu.Unlock()
		return nil, herr(http.StatusNotFound, openai.CodeModelNotFound, "head %s does not exist", id)
	case e != nil && e.Pinned:
		reg.mu.Unlock()
		return nil, herr(http.StatusConflict, "conflict", "head %s is pinned to version %s; unpin it first", id, e.Current)
	}
	reg.mu.Unlock()
	// The base: named, or the one whose fingerprint the head carries.
	var m *Model
	if baseName != "" {
		if m = reg.models[baseName]; m == nil {
			return nil, herr(http.StatusNotFound, openai.CodeModelNotFound, "base model %s is not loaded", baseName)
		}
	} else if e != nil {
		m = reg.models[e.Base]
	}
	names := make([]string, 0, len(reg.models))
	for n := range reg.models {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if m != nil {
			break
		}
		b, err := reg.baseOf(reg.models[n])
		if err == nil && b.Fingerprint == hf.base.Fingerprint {
			m = reg.models[n]
		}
	}
	if m == nil {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "head %s: no loaded base model has fingerprint %q that the head was made for", id, hf.base.Fingerprint)
	}
	b, err := reg.baseOf(m)
	if err != nil {
		return nil, herr(http.StatusInternalServerError, "server_error", "identify base %s: %v", m.Name, err)
	}
	if hf.base.Fingerprint != b.Fingerprint || hf.base.Dim != b.Dim || hf.base.Vocab != b.Vocab || hf.base.Arch != b.Arch {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue,
			"head %s was made for base %s d=%d vocab=%d (fingerprint %s), not for model %s: %s d=%d vocab=%d (fingerprint %s)",
			id, hf.base.Arch, hf.base.Dim, hf.base.Vocab, hf.base.Fingerprint, m.Name, b.Arch, b.Dim, b.Vocab, b.Fingerprint)
	}
	if e != nil && e.Base != m.Name {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "head %s runs on base %s; a new version cannot move it to %s", id, e.Base, m.Name)
	}
	pp := reg.sup.forType(hf.typ)
	if pp == nil {
		return nil, herr(http.StatusBadRequest, openai.CodeInvalidValue, "head %s: no installed plugin loads heads of type %q", id, hf.typ)
	}
	version := carryonhead.Version(hf.config, hf.weights)
	dir := filepath.Join(reg.dir, id, version)
	if err := storeHead(dir, hf); err != nil {
		return nil, herr(http.StatusInternalServerError, "server_error", "store head %s: %v", id, err)
	}
	reg.mu.Lock()
	var v *headVersion
	if e != nil {
		v = e.version(version)
	}
	if v == nil {
		v = &headVersion{Version: version, Created: time.Now().UTC()}
	}
	// A retired version coming back must not be unloaded meanwhile.
	wasRetired := v.retired
	v.retired = false
	reg.mu.Unlock()
	probe := &headEntry{ID: id, Base: m.Name}
	if err := reg.loadVersion(ctx, probe, v, pp); err != nil {
		reg.mu.Lock()
		if wasRetired {
			reg.retire(v, pp, id)
		}
		reg.mu.Unlock()
		return nil, err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	cur := reg.heads[id]
	if cur == nil {
		if !create {
			reg.retire(v, pp, id)
			return nil, herr(http.StatusNotFound, openai.CodeModelNotFound, "head %s was removed meanwhile", id)
		}
		cur = &headEntry{ID: id, Base: m.Name, Plugin: pp.name, Type: hf.typ}
		reg.heads[id] = cur
	}
	if old := cur.version(cur.Current); old != nil && old != v {
		reg.retire(old, reg.sup.byName(cur.Plugin), id)
	}
	if cur.version(version) == nil {
		cur.Versions = append(cur.Versions, v)
	}
	v.retired = false
	cur.Current, cur.Plugin, cur.Type, cur.lastErr = version, pp.name, hf.typ, ""
	if err := reg.saveLocked(); err != nil {
		reg.log.Error("save head registry", "error", err)
	}
	reg.log.Info("head version is current", "head", id, "version", version, "base", m.Name, "plugin", pp.name)
	return cur, nil
}

// storeHead writes a head's files into dir (a version directory; it is
// left alone when it exists, as its name is the content hash).
func storeHead(dir string, hf *headFiles) error {
	if _, err := os.Stat(filepath.Join(dir, carryonhead.WeightsFile)); err == nil {
		return nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, carryonhead.ConfigFile), hf.config, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, carryonhead.WeightsFile), hf.weights, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// retire marks a version as no longer current and unloads it once no
// request uses it. The caller holds reg.mu.
func (reg *headRegistry) retire(v *headVersion, pp *pluginProc, id string) {
	v.retired = true
	if v.refs == 0 {
		reg.unloadLater(v, pp, id)
	}
}

// unloadLater unloads a retired version without holding reg.mu, unless
// it became current again meanwhile.
func (reg *headRegistry) unloadLater(v *headVersion, pp *pluginProc, id string) {
	if pp == nil {
		return
	}
	go func() {
		pp.admin.Lock()
		defer pp.admin.Unlock()
		reg.mu.Lock()
		if !v.retired || v.refs > 0 || !v.loaded {
			reg.mu.Unlock()
			return
		}
		v.loaded = false
		reg.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), pluginCallTime)
		defer cancel()
		if err := pp.unload(ctx, pluginID(id, v.Version)); err != nil {
			reg.log.Warn("unload head version", "head", id, "version", v.Version, "error", err)
		}
	}()
}

// saveLocked writes registry.json atomically. The caller holds reg.mu.
func (reg *headRegistry) saveLocked() error {
	ids := make([]string, 0, len(reg.heads))
	for id := range reg.heads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var file struct {
		Heads []*headEntry `json:"heads"`
	}
	for _, id := range ids {
		file.Heads = append(file.Heads, reg.heads[id])
	}
	b, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(reg.dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(reg.dir, "registry.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(reg.dir, "registry.json"))
}

// acquire returns the current version of head id for n requests (each
// ends with one call of the returned function), the base model and the
// scheduler head.
func (reg *headRegistry) acquire(id string, n int) (*Model, *scheduler.Head, func(), error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	e := reg.heads[id]
	if e == nil {
		return nil, nil, nil, herr(http.StatusNotFound, openai.CodeModelNotFound, "head %s does not exist", id)
	}
	v := e.version(e.Current)
	pp := reg.sup.byName(e.Plugin)
	if v == nil || !v.loaded || pp == nil || reg.models[e.Base] == nil {
		why := e.lastErr
		if why == "" {
			why = "its version is not loaded"
		}
		return nil, nil, nil, herr(http.StatusServiceUnavailable, openai.CodeUnavailable, "head %s is unavailable: %s", id, why)
	}
	v.refs += n
	left := n
	done := func() {
		reg.mu.Lock()
		defer reg.mu.Unlock()
		if left == 0 {
			return
		}
		left--
		v.refs--
		if v.refs == 0 && v.retired {
			reg.unloadLater(v, pp, id)
		}
	}
	return reg.models[e.Base], &scheduler.Head{ID: pluginID(id, v.Version), Plugin: pp, Taps: v.taps}, done, nil
}

// remove deletes a head: new requests get 404 at once, running ones
// finish, and its files are deleted.
func (reg *headRegistry) remove(id string) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	e := reg.heads[id]
	if e == nil {
		return herr(http.StatusNotFound, openai.CodeModelNotFound, "head %s does not exist", id)
	}
	if e.Pinned {
		return herr(http.StatusConflict, "conflict", "head %s is pinned; unpin it first", id)
	}
	delete(reg.heads, id)
	pp := reg.sup.byName(e.Plugin)
	for _, v := range e.Versions {
		reg.retire(v, pp, id)
	}
	if err := reg.saveLocked(); err != nil {
		return herr(http.StatusInternalServerError, "server_error", "save head registry: %v", err)
	}
	// The plugin read the files at load; they are not needed any more,
	// except by a restart of the plugin while old requests run.
	_ = os.RemoveAll(filepath.Join(reg.dir, id))
	return nil
}

// pin sets or clears a head's pin.
func (reg *headRegistry) pin(id string, pinned bool) (*headEntry, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	e := reg.heads[id]
	if e == nil {
		return nil, herr(http.StatusNotFound, openai.CodeModelNotFound, "head %s does not exist", id)
	}
	e.Pinned = pinned
	if err := reg.saveLocked(); err != nil {
		return nil, herr(http.StatusInternalServerError, "server_error", "save head registry: %v", err)
	}
	return e, nil
}

// HeadVersionStatus describes one stored version of a head.
type HeadVersionStatus struct {
	Version string    `json:"version"`
	Created time.Time `json:"created"`
	Current bool      `json:"current"`
	Loaded  bool      `json:"loaded"`
	// Requests counts the requests running on this version.
	Requests int `json:"requests"`
}

// HeadStatus is how GET /v1/heads describes a head.
type HeadStatus struct {
	ID        string              `json:"id"`
	Object    string              `json:"object"` // "head"
	Base      string              `json:"base"`
	Plugin    string              `json:"plugin"`
	Type      string              `json:"type"`
	Version   string              `json:"version"`
	Pinned    bool                `json:"pinned"`
	Status    string              `json:"status"` // ready, unavailable, error
	Error     string              `json:"error,omitempty"`
	PluginPID int                 `json:"plugin_pid,omitempty"`
	Restarts  int                 `json:"plugin_restarts"`
	Versions  []HeadVersionStatus `json:"versions"`
	// Policy is "serve" (the default) or "learn": a learning head's
	// traffic is logged and periodically trained into new versions.
	Policy string `json:"policy"`
	// Learning describes a learning head's thresholds and progress.
	Learning *HeadLearning `json:"learning,omitempty"`
}

// list describes every head, sorted by id.
func (reg *headRegistry) list() []HeadStatus {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	out := make([]HeadStatus, 0, len(reg.heads))
	for _, e := range reg.heads {
		out = append(out, reg.statusLocked(e))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (reg *headRegistry) statusLocked(e *headEntry) HeadStatus {
	st := HeadStatus{ID: e.ID, Object: "head", Base: e.Base, Plugin: e.Plugin, Type: e.Type, Version: e.Current,
		Pinned: e.Pinned, Status: "ready", Error: e.lastErr, Versions: []HeadVersionStatus{}}
	for _, v := range e.Versions {
		st.Versions = append(st.Versions, HeadVersionStatus{Version: v.Version, Created: v.Created,
			Current: v.Version == e.Current, Loaded: v.loaded, Requests: v.refs})
	}
	st.Policy, st.Learning = e.learningStatus(reg.learnDefaults)
	cur := e.version(e.Current)
	if pp := reg.sup.byName(e.Plugin); pp != nil {
		up, restarts, lastErr := pp.status()
		st.Restarts, st.PluginPID = restarts, pp.pid()
		if !up {
			st.Status, st.Error = "unavailable", lastErr
		}
	} else {
		st.Status = "error"
	}
	if cur == nil || !cur.loaded {
		st.Status = "error"
	}
	return st
}

// get describes one head.
func (reg *headRegistry) get(id string) (HeadStatus, bool) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	e := reg.heads[id]
	if e == nil {
		return HeadStatus{}, false
	}
	return reg.statusLocked(e), true
}

// exists reports whether a head id is registered.
func (reg *headRegistry) exists(id string) bool {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return reg.heads[id] != nil
}

// Head policies.
const (
	// policyServe serves the head; its traffic is logged only when a
	// request asks for it (store: true).
	policyServe = "serve"
	// policyLearn logs every completion the head serves and retrains it
	// from them (see orchestrator.go).
	policyLearn = "learn"
)

// learnThresholds decide when and on what a learning head is retrained.
// A zero field takes the server's default.
type learnThresholds struct {
	// MinSamples is the number of new logged samples that starts a
	// retraining.
	MinSamples int `json:"min_samples,omitempty"`
	// Holdout is the fraction of a retraining's samples held out as its
	// validation file.
	Holdout float64 `json:"holdout,omitempty"`
	// MaxSamples bounds the samples of one retraining (the oldest go
	// first; the rest wait for the next one).
	MaxSamples int `json:"max_samples,omitempty"`
}

// or fills t's unset fields from def.
func (t learnThresholds) or(def learnThresholds) learnThresholds {
	if t.MinSamples == 0 {
		t.MinSamples = def.MinSamples
	}
	if t.Holdout == 0 {
		t.Holdout = def.Holdout
	}
	if t.MaxSamples == 0 {
		t.MaxSamples = def.MaxSamples
	}
	return t
}

// headLearning is a head's policy, thresholds and retraining progress,
// kept in registry.json.
type headLearning struct {
	Policy string `json:"policy"`
	learnThresholds
	// Consumed is the last traffic-log sequence number whose samples were
	// handed to a retraining job; the next one starts after it.
	Consumed uint64 `json:"consumed_seq,omitempty"`
	// Job is the last retraining job; no other starts while it has not
	// ended.
	Job string `json:"job,omitempty"`
}

// HeadLearning is how GET /v1/heads describes a head's learning
// settings (defaults filled in) and progress.
type HeadLearning struct {
	MinSamples int     `json:"min_samples"`
	Holdout    float64 `json:"holdout"`
	MaxSamples int     `json:"max_samples"`
	// ConsumedSeq is the last traffic-log sequence number trained on.
	ConsumedSeq uint64 `json:"consumed_seq"`
	// Job is the last retraining job's id.
	Job string `json:"job,omitempty"`
	// Error says why the last attempt to start a retraining failed.
	Error string `json:"error,omitempty"`
}

// learningStatus returns the head's policy and, when it has learning
// settings, their description.
func (e *headEntry) learningStatus(def learnThresholds) (string, *HeadLearning) {
	if e.Learn == nil {
		return policyServe, nil
	}
	t := e.Learn.learnThresholds.or(def)
	return e.Learn.Policy, &HeadLearning{MinSamples: t.MinSamples, Holdout: t.Holdout, MaxSamples: t.MaxSamples,
		ConsumedSeq: e.Learn.Consumed, Job: e.Learn.Job, Error: e.learnErr}
}

// setLearnError records why a head's retraining could not start ("" once
// one did, or nothing was due).
func (reg *headRegistry) setLearnError(id, msg string) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if e := reg.heads[id]; e != nil {
		e.learnErr = msg
	}
}

// policyUpdate is a change of a head's policy; nil fields stay as they
// are.
type policyUpdate struct {
	Policy     *string
	MinSamples *int
	Holdout    *float64
	MaxSamples *int
}

// setPolicy changes a head's policy and thresholds and saves the
// registry. The caller has validated the values.
func (reg *headRegistry) setPolicy(id string, u policyUpdate) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	e := reg.heads[id]
	if e == nil {
		return herr(http.StatusNotFound, openai.CodeModelNotFound, "head %s does not exist", id)
	}
	l := headLearning{Policy: policyServe}
	if e.Learn != nil {
		l = *e.Learn
	}
	if u.Policy != nil {
		l.Policy = *u.Policy
	}
	if u.MinSamples != nil {
		l.MinSamples = *u.MinSamples
	}
	if u.Holdout != nil {
		l.Holdout = *u.Holdout
	}
	if u.MaxSamples != nil {
		l.MaxSamples = *u.MaxSamples
	}
	if eff := l.learnThresholds.or(reg.learnDefaults); eff.MaxSamples > 0 && eff.MaxSamples < eff.MinSamples {
		return herr(http.StatusBadRequest, openai.CodeInvalidValue, "head %s: max_samples %d is below min_samples %d", id, eff.MaxSamples, eff.MinSamples)
	}
	old := e.Learn
	e.Learn = &l
	if err := reg.saveLocked(); err != nil {
		e.Learn = old
		return herr(http.StatusInternalServerError, "server_error", "save head registry: %v", err)
	}
	reg.log.Info("head policy set", "head", id, "policy", l.Policy)
	return nil
}

// policy returns a head's policy (policyServe for an unknown head).
func (reg *headRegistry) policy(id string) string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if e := reg.heads[id]; e != nil && e.Learn != nil {
		return e.Learn.Policy
	}
	return policyServe
}

// learner is a snapshot of a learning head for the orchestrator.
type learner struct {
	id       string
	pinned   bool
	t        learnThresholds // defaults filled in
	consumed uint64
	job      string
}

// learners returns the heads whose policy is learn, sorted by id.
func (reg *headRegistry) learners() []learner {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var out []learner
	for _, e := range reg.heads {
		if e.Learn == nil || e.Learn.Policy != policyLearn {
			continue
		}
		out = append(out, learner{id: e.ID, pinned: e.Pinned, t: e.Learn.learnThresholds.or(reg.learnDefaults),
			consumed: e.Learn.Consumed, job: e.Learn.Job})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// setConsumed records that a head's samples up to seq went to job (job
// may be empty when they were skipped) and saves the registry.
func (reg *headRegistry) setConsumed(id string, seq uint64, job string) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	e := reg.heads[id]
	if e == nil || e.Learn == nil {
		return fmt.Errorf("record the training progress of head %s: it was removed or stopped learning", id)
	}
	prev := *e.Learn
	e.Learn.Consumed = seq
	if job != "" {
		e.Learn.Job = job
	}
	if err := reg.saveLocked(); err != nil {
		*e.Learn = prev
		return fmt.Errorf("record the training progress of head %s: save head registry: %w", id, err)
	}
	return nil
}
