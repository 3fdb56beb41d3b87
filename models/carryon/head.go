package carryon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/carryon/carryon/models/safetensors"
)

// The files of a head directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "weights.safetensors"
)

// SeqID names a sequence. The caller chooses it; a head keeps a key/value
// cache per sequence until Release.
type SeqID uint64

// Errors wrapped by Forward.
var (
	// ErrUnknownHead: a row names a head that is not in the Set.
	ErrUnknownHead = errors.New("unknown head")
	// ErrRows: the rows are malformed (input width, positions).
	ErrRows = errors.New("invalid rows")
)

// Row is one token's input to a head.
type Row struct {
	// Head is the id of the head in a Set (Head.Forward ignores it).
	Head string
	// Seq is the token's sequence and Pos its position, from 0.
	Seq SeqID
	Pos int
	// Input is the base model's states at this token for the head's taps,
	// concatenated (Config.InputDim floats).
	Input []float32
}

// Head is a loaded carry-on head and the key/value caches of its sequences.
// It is safe for concurrent use; Forward calls on one head run one at a
// time.
type Head struct {
	cfg     Config
	w       *weights
	version string

	mu   sync.Mutex
	seqs map[SeqID]*seqState
}

// seqState is a sequence's key/value cache: n positions, each block's keys
// and values n×Width floats.
type seqState struct {
	n    int
	k, v [][]float32
}

// New returns a head with fresh random weights drawn from cfg.Seed: the
// transformer's matrices N(0, 1/fan_in) (the residual projections scaled by
// 1/√(2·Blocks)), norms 1, biases 0, and the delta projection
// N(0, DeltaInitStd²/Width), so that a fresh head's delta is small.
func New(cfg Config) (*Head, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Taps = append([]int(nil), cfg.taps()...)
	h := &Head{cfg: cfg, w: initWeights(&cfg), seqs: map[SeqID]*seqState{}}
	c, wts, err := h.encode()
	if err != nil {
		return nil, err
	}
	h.version = Version(c, wts)
	return h, nil
}

// Load reads a head directory (config.json and weights.safetensors). Any
// problem with either file is an error naming the file.
func Load(dir string) (*Head, error) {
	cpath, wpath := filepath.Join(dir, ConfigFile), filepath.Join(dir, WeightsFile)
	cdata, err := os.ReadFile(cpath)
	if err != nil {
		return nil, fmt.Errorf("load head: %w", err)
	}
	cfg, err := parseConfig(cdata)
	if err != nil {
		return nil, fmt.Errorf("load head %s: %w", cpath, err)
	}
	wdata, err := os.ReadFile(wpath)
	if err != nil {
		return nil, fmt.Errorf("load head: %w", err)
	}
	f, err := safetensors.Parse(wdata)
	if err != nil {
		return nil, fmt.Errorf("load head %s: %w", wpath, err)
	}
	w, err := decodeWeights(&cfg, f)
	if err != nil {
		return nil, fmt.Errorf("load head %s: %w", wpath, err)
	}
	cfg.Taps = append([]int(nil), cfg.taps()...)
	return &Head{cfg: cfg, w: w, version: Version(cdata, wdata), seqs: map[SeqID]*seqState{}}, nil
}

// encode returns the bytes of config.json and weights.safetensors.
func (h *Head) encode() (config, weights []byte, err error) {
	config, err = json.MarshalIndent(h.cfg, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode head config: %w", err)
	}
	config = append(config, '\n')
	wr, err := encodeWeights(&h.cfg, h.w)
	if err != nil {
		return nil, nil, fmt.Errorf("encode head weights: %w", err)
	}
	var buf bytes.Buffer
	if _, err := wr.WriteTo(&buf); err != nil {
		return nil, nil, fmt.Errorf("encode head weights: %w", err)
	}
	return config, buf.Bytes(), nil
}

// Save writes the head's directory (creating it if needed): config.json and
// weights.safetensors, whose contents hash to Version.
func (h *Head) Save(dir string) error {
	config, weights, err := h.encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save head: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{WeightsFile, weights}, {ConfigFile, config}} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("save head: %w", err)
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Version returns the version id of a head whose config.json and
// weights.safetensors hold these bytes: the hex SHA-256 of both,
// each preceded by its length.
func Version(config, weights []byte) string {
	h := sha256.New()
	var n [8]byte
	for _, b := range [][]byte{config, weights} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DirVersion returns the version id of the head directory dir without
// loading it.
func DirVersion(dir string) (string, error) {
	c, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return "", fmt.Errorf("head version: %w", err)
	}
	w, err := os.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return "", fmt.Errorf("head version: %w", err)
	}
	return Version(c, w), nil
}

// Config returns the head's configuration.
func (h *Head) Config() Config {
	c := h.cfg
	c.Taps = append([]int(nil), c.Taps...)
	return c
}

// Version returns the head's version id (see Version).
func (h *Head) Version() string { return h.version }

// Parameters returns the number of parameters.
func (h *Head) Parameters() int64 { return h.cfg.count() }

// InputDim returns the width of a row's input.
func (h *Head) InputDim() int { return h.cfg.InputDim() }

// Dim returns the width of the delta (the base model's width).
func (h *Head) Dim() int { return h.cfg.Base.Dim }

// Sequences returns the number of sequences with state.
func (h *Head) Sequences() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seqs)
}

// Positions returns the number of positions held for a sequence.
func (h *Head) Positions(seq SeqID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.seqs[seq]; st != nil {
		return st.n
	}
	return 0
}

// Release drops sequences' key/value caches; unknown ones are ignored.
func (h *Head) Release(seqs ...SeqID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range seqs {
		delete(h.seqs, s)
	}
}

// Forward runs rows through the head (Row.Head is ignored) and returns one
// delta of Dim floats per row; see Set.Forward for the rules rows follow.
func (h *Head) Forward(ctx context.Context, rows []Row) ([][]float32, error) {
	heads := make([]*Head, len(rows))
	for i := range heads {
		heads[i] = h
	}
	return forward(ctx, rows, heads, 0)
}
