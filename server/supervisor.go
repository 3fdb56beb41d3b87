package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/carryon/carryon/sdk"
	"github.com/carryon/carryon/sdk/host"
)

// Supervision timing.
const (
	pingEvery      = 5 * time.Second
	pingTimeout    = 5 * time.Second
	restartMin     = 100 * time.Millisecond
	restartMax     = 10 * time.Second
	pluginCallTime = 30 * time.Second
)

// errPluginDown is wrapped by the errors of calls to a plugin that is not
// running (crashed and not restarted yet).
var errPluginDown = errors.New("plugin is not running")

// supervisor starts the plugins of the plugins directory (head plugins and
// forecaster plugins, told apart by the kind they serve), watches them and
// restarts them with backoff when they exit. It is the only code that
// starts or stops plugin processes.
type supervisor struct {
	log     hclog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	plugins []*pluginProc
	wg      sync.WaitGroup
}

// pluginProc is one supervised plugin binary. It implements
// scheduler.HeadPlugin: calls go to the process that is running now.
type pluginProc struct {
	name     string
	path     string
	checksum []byte
	log      hclog.Logger

	seq atomic.Uint64 // sequence ids, never reused across restarts

	// admin serializes Load and Unload calls (and the reload after a
	// restart), so that an unload of a version cannot overtake its
	// reload.
	admin sync.Mutex

	mu       sync.Mutex
	proc     *host.Plugin
	heads    *host.HeadClient
	info     sdk.PluginInfo
	loaded   map[string]string // plugin-side head id -> directory
	restarts int
	lastErr  string

	// forecasts is set once the plugin has started as a forecaster
	// plugin; fc is its client while it runs, and fcLoaded its loaded
	// model directories (plugin-side id -> directory), for restarts.
	forecasts bool
	fc        *host.ForecasterClient
	fcLoaded  map[string]string
}

// startSupervisor starts every executable file of dir as a plugin: a head
// plugin, or a forecaster plugin when it serves no heads.
// A missing directory means no plugins. A plugin that fails to start is
// logged and retried in the background.
func startSupervisor(dir string, log hclog.Logger) (*supervisor, error) {
	ctx, cancel := context.WithCancel(context.Background())
	sv := &supervisor{log: log.Named("plugins"), ctx: ctx, cancel: cancel}
	if dir == "" {
		return sv, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		sv.log.Info("no plugins directory; heads are unavailable", "dir", dir)
		return sv, nil
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("plugins directory %s: %w", dir, err)
	}
	for _, e := range entries {
		st, err := e.Info()
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 || strings.HasSuffix(e.Name(), ".sha256") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		sum, err := pluginChecksum(path)
		if err != nil {
			sv.log.Warn("skipping a plugin whose checksum cannot be read", "path", path, "error", err)
			continue
		}
		pp := &pluginProc{name: e.Name(), path: path, checksum: sum, log: sv.log, loaded: map[string]string{}, fcLoaded: map[string]string{}}
		sv.plugins = append(sv.plugins, pp)
	}
	var wg sync.WaitGroup
	for _, pp := range sv.plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pp.start(ctx); err != nil {
				sv.log.Error("plugin failed to start", "plugin", pp.name, "error", err)
			}
		}()
	}
	wg.Wait()
	for _, pp := range sv.plugins {
		sv.wg.Add(1)
		go func() {
			defer sv.wg.Done()
			pp.supervise(ctx)
		}()
	}
	return sv, nil
}

// pluginChecksum returns the SHA-256 a plugin binary must have: the hex
// digest in PATH.sha256 when that file exists, otherwise the binary's
// digest now (so that a binary replaced while the server runs is refused
// at its next start).
func pluginChecksum(path string) ([]byte, error) {
	if b, err := os.ReadFile(path + ".sha256"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return nil, fmt.Errorf("checksum file %s.sha256 is empty", path)
		}
		sum, err := hex.DecodeString(f[0])
		if err != nil {
			return nil, fmt.Errorf("checksum file %s.sha256: %w", path, err)
		}
		return sum, nil
	}
	return host.FileChecksum(path)
}

// close stops every plugin.
func (sv *supervisor) close() {
	sv.cancel()
	sv.wg.Wait()
	for _, pp := range sv.plugins {
		pp.mu.Lock()
		p := pp.proc
		pp.proc, pp.heads, pp.fc = nil, nil, nil
		pp.mu.Unlock()
		if p != nil {
			_ = p.Close()
		}
	}
}

// forType returns the running-or-restarting plugin that loads heads of a
// type, preferring the built-in one named after the type.
func (sv *supervisor) forType(typ string) *pluginProc {
	var found *pluginProc
	for _, pp := range sv.plugins {
		pp.mu.Lock()
		ok := slices.Contains(pp.info.Types, typ) && !pp.forecasts
		pp.mu.Unlock()
		if ok && (found == nil || pp.name == typ) {
			found = pp
		}
	}
	return found
}

// byName returns the plugin with a binary name.
func (sv *supervisor) byName(name string) *pluginProc {
	for _, pp := range sv.plugins {
		if pp.name == name {
			return pp
		}
	}
	return nil
}

// start starts the process and asks it to describe itself.
func (pp *pluginProc) start(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p, err := host.Start(sctx, host.Config{Path: pp.path, Checksum: pp.checksum, Logger: pp.log})
	if err != nil {
		pp.setErr(err)
		return fmt.Errorf("start plugin %s: %w", pp.name, err)
	}
	hc, err := p.Head(sctx)
	if errors.Is(err, host.ErrKind) {
		if err = pp.startForecaster(sctx, p); err == nil {
			return nil
		}
	} else if err == nil {
		var info sdk.PluginInfo
		if info, err = hc.Info(sctx); err == nil {
			pp.mu.Lock()
			pp.proc, pp.heads, pp.info = p, hc, info
			pp.mu.Unlock()
			pp.log.Info("plugin started", "plugin", pp.name, "pid", p.Pid(), "types", info.Types)
			return nil
		}
	}
	_ = p.Close()
	pp.setErr(err)
	return fmt.Errorf("start plugin %s: %w", pp.name, err)
}

// startForecaster completes the start of a plugin that serves
// forecasters.
func (pp *pluginProc) startForecaster(ctx context.Context, p *host.Plugin) error {
	fc, err := p.Forecaster(ctx)
	if err != nil {
		return err
	}
	info, err := fc.Info(ctx)
	if err != nil {
		return err
	}
	// After a restart, the models are loaded again before the client is
	// published, so that no request finds them missing.
	pp.reloadForecasters(ctx, fc)
	pp.mu.Lock()
	pp.proc, pp.fc, pp.info, pp.forecasts = p, fc, info, true
	pp.mu.Unlock()
	pp.log.Info("forecaster plugin started", "plugin", pp.name, "pid", p.Pid(), "types", info.Types, "models", info.Models)
	return nil
}

func (pp *pluginProc) setErr(err error) {
	pp.mu.Lock()
	pp.lastErr = err.Error()
	pp.mu.Unlock()
}

// supervise pings the plugin and restarts it, with exponential backoff,
// whenever it exits or stops answering; after a restart it loads the
// heads again.
func (pp *pluginProc) supervise(ctx context.Context) {
	backoff := restartMin
	tick := time.NewTicker(pingEvery)
	defer tick.Stop()
	for {
		pp.mu.Lock()
		p := pp.proc
		pp.mu.Unlock()
		if p == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, restartMax)
			if err := pp.start(ctx); err != nil {
				pp.log.Warn("plugin restart failed", "plugin", pp.name, "error", err, "retry_in", backoff)
				continue
			}
			pp.mu.Lock()
			pp.restarts++
			pp.mu.Unlock()
			pp.reload(ctx)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-p.Done():
			pp.log.Warn("plugin exited; restarting it", "plugin", pp.name, "pid", p.Pid())
			pp.down(p, "the plugin process exited")
		case <-tick.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := p.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				pp.log.Warn("plugin does not answer pings; restarting it", "plugin", pp.name, "error", err)
				pp.down(p, "the plugin stopped answering: "+err.Error())
				_ = p.Close()
			} else {
				backoff = restartMin
			}
		}
	}
}

// down forgets the process p.
func (pp *pluginProc) down(p *host.Plugin, why string) {
	pp.mu.Lock()
	if pp.proc == p {
		pp.proc, pp.heads, pp.fc = nil, nil, nil
		pp.lastErr = why
	}
	pp.mu.Unlock()
}

// reload loads every head (or forecasting model) of a restarted plugin
// again.
func (pp *pluginProc) reload(ctx context.Context) {
	pp.admin.Lock()
	defer pp.admin.Unlock()
	pp.mu.Lock()
	if pp.forecasts {
		n := len(pp.fcLoaded)
		pp.mu.Unlock()
		pp.log.Info("forecaster plugin restarted", "plugin", pp.name, "models", n)
		return // its models were loaded during the start
	}
	hc := pp.heads
	ids := make([]string, 0, len(pp.loaded))
	for id := range pp.loaded {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = pp.loaded[id]
	}
	pp.mu.Unlock()
	if hc == nil {
		return
	}
	for i, id := range ids {
		lctx, cancel := context.WithTimeout(ctx, pluginCallTime)
		_, err := hc.Load(lctx, id, dirs[i])
		cancel()
		if err != nil {
			pp.log.Error("reloading a head after a restart failed", "plugin", pp.name, "head", id, "error", err)
		}
	}
	pp.log.Info("plugin restarted", "plugin", pp.name, "heads", len(ids))
}

// client returns the head client of the running process.
func (pp *pluginProc) client() (*host.HeadClient, error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.heads == nil {
		return nil, fmt.Errorf("plugin %s: %w (restarting)", pp.name, errPluginDown)
	}
	return pp.heads, nil
}

// status says whether the plugin runs, for the heads listing.
func (pp *pluginProc) status() (up bool, restarts int, lastErr string) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.heads != nil || pp.fc != nil, pp.restarts, pp.lastErr
}

// pid returns the process id, or 0 while the plugin is down.
func (pp *pluginProc) pid() int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.proc == nil {
		return 0
	}
	return pp.proc.Pid()
}

// load loads a head directory under id and remembers it for restarts.
// The caller holds pp.admin.
func (pp *pluginProc) load(ctx context.Context, id, dir string) (sdk.HeadInfo, error) {
	hc, err := pp.client()
	if err != nil {
		return sdk.HeadInfo{}, err
	}
	info, err := hc.Load(ctx, id, dir)
	if err != nil {
		return sdk.HeadInfo{}, err
	}
	pp.mu.Lock()
	pp.loaded[id] = dir
	pp.mu.Unlock()
	return info, nil
}

// unload drops a head. The caller holds pp.admin.
func (pp *pluginProc) unload(ctx context.Context, id string) error {
	pp.mu.Lock()
	delete(pp.loaded, id)
	pp.mu.Unlock()
	hc, err := pp.client()
	if err != nil {
		return nil // the restarted process will not load it
	}
	if err := hc.Unload(ctx, id); err != nil && !errors.Is(err, sdk.ErrUnknownHead) {
		return err
	}
	return nil
}

// Forward sends rows to the running process.
func (pp *pluginProc) Forward(ctx context.Context, rows []sdk.Row) ([][]float32, error) {
	hc, err := pp.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, pluginCallTime)
	defer cancel()
	return hc.Forward(ctx, rows)
}

// Release drops sequences in the running process.
func (pp *pluginProc) Release(ctx context.Context, seqs []sdk.SeqID) error {
	hc, err := pp.client()
	if err != nil {
		return nil // a restarted process has no state to drop
	}
	return hc.Release(ctx, seqs)
}

// NewSeq returns a fresh sequence id.
func (pp *pluginProc) NewSeq() sdk.SeqID { return sdk.SeqID(pp.seq.Add(1)) }
