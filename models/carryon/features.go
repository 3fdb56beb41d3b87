package carryon

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/carryon/carryon/models/llm"
)

// Sequence is a tokenized training text: the model reads Tokens[:n-1] and
// is trained to predict Tokens[1:].
type Sequence struct {
	Tokens []int32
	// Trained marks which next tokens are targets (len(Tokens)-1 entries);
	// nil trains on all of them.
	Trained []bool
}

// ErrNotCached reports that Features was given no base model for
// sequences whose states are not in its cache.
var ErrNotCached = errors.New("base states not cached")

// FeatureStats counts the sequences a feature extraction found in its
// cache and the ones it computed.
type FeatureStats struct {
	Hits, Computed int
}

// Features computes training examples for seqs for a head of configuration
// cfg: the base model's final-norm states, and the residual streams of the
// head's taps, at every position but the last. The base runs in batches of
// sequences, as serving runs it. When cacheDir is not empty each sequence's
// states are stored there under the SHA-256 of the base's fingerprint, the
// taps and the token ids, and read back instead of recomputed, so epochs and
// retraining never run the base again. The cache holds raw states (the
// delta is added to them exactly); the bridge is applied when training.
//
// base may be nil when cacheDir holds every sequence's states: then no
// base model is needed at all. When base is nil and some sequence is not
// cached, Features fails with an error wrapping ErrNotCached.
func Features(ctx context.Context, base *llm.Model, cfg Config, seqs []Sequence, cacheDir string) ([]Example, FeatureStats, error) {
	var stats FeatureStats
	d := cfg.Base.Dim
	if base != nil && base.Config().Dim != d {
		return nil, stats, fmt.Errorf("features: the head reads states of width %d, the base model has %d", d, base.Config().Dim)
	}
	taps := cfg.taps()
	var layers []int
	for _, t := range taps {
		if t != FinalLayer {
			layers = append(layers, t)
		}
	}
	out := make([]Example, len(seqs))
	keys := make([]string, len(seqs))
	var todo []int
	for i, s := range seqs {
		if len(s.Tokens) < 2 {
			return nil, stats, fmt.Errorf("features: sequence %d has %d tokens, at least 2 are needed", i, len(s.Tokens))
		}
		if s.Trained != nil && len(s.Trained) != len(s.Tokens)-1 {
			return nil, stats, fmt.Errorf("features: sequence %d: %d trained marks for %d targets", i, len(s.Trained), len(s.Tokens)-1)
		}
		n := len(s.Tokens) - 1
		e := &out[i]
		e.Targets = make([]int32, n)
		for j := range n {
			e.Targets[j] = s.Tokens[j+1]
			if s.Trained != nil && !s.Trained[j] {
				e.Targets[j] = -1
			}
		}
		keys[i] = featureKey(cfg.Base.Fingerprint, taps, s.Tokens[:n])
		if cacheDir != "" {
			if states, err := readFeatures(filepath.Join(cacheDir, keys[i]), n*d*(1+len(layers))); err == nil {
				setStates(e, &cfg, taps, states, n)
				stats.Hits++
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, stats, fmt.Errorf("features: %w", err)
			}
		}
		todo = append(todo, i)
	}
	if base == nil && len(todo) > 0 {
		return nil, stats, fmt.Errorf("features: %d of %d sequences are not in the cache %q: %w", len(todo), len(seqs), cacheDir, ErrNotCached)
	}
	if cacheDir != "" && len(todo) > 0 {
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			return nil, stats, fmt.Errorf("features: %w", err)
		}
	}
	const perBatch = 8
	for b0 := 0; b0 < len(todo); b0 += perBatch {
		group := todo[b0:min(b0+perBatch, len(todo))]
		longest := 0
		for _, i := range group {
			longest = max(longest, len(seqs[i].Tokens)-1)
		}
		cache, err := base.NewCache(llm.CacheOptions{MaxSequences: len(group), SeqContext: longest})
		if err != nil {
			return nil, stats, fmt.Errorf("features: %w", err)
		}
		var batch llm.Batch
		batch.Taps = layers
		ids := make([]llm.SeqID, len(group))
		starts := make([]int, len(group))
		for k, i := range group {
			if ids[k], err = cache.NewSeq(); err != nil {
				return nil, stats, fmt.Errorf("features: %w", err)
			}
			starts[k] = len(batch.Rows)
			for p, tok := range seqs[i].Tokens[:len(seqs[i].Tokens)-1] {
				batch.Add(tok, ids[k], p, false, true)
			}
		}
		var o llm.Output
		if err := base.Forward(ctx, cache, &batch, &o); err != nil {
			return nil, stats, fmt.Errorf("features: base forward: %w", err)
		}
		for k, i := range group {
			n := len(seqs[i].Tokens) - 1
			states := make([]float32, n*d*(1+len(layers)))
			for p := range n {
				copy(states[p*d:(p+1)*d], o.RowHidden(starts[k]+p))
				for l := range layers {
					copy(states[(l+1)*n*d+p*d:], o.RowTap(l, starts[k]+p))
				}
			}
			setStates(&out[i], &cfg, taps, states, n)
			stats.Computed++
			if cacheDir != "" {
				if err := writeFeatures(filepath.Join(cacheDir, keys[i]), states); err != nil {
					return nil, stats, fmt.Errorf("features: %w", err)
				}
			}
		}
	}
	return out, stats, nil
}

// setStates fills an example from its stored states: the final-norm states
// (n×d), then each tapped layer's (n×d), in the order of the head's taps
// without the final one.
func setStates(e *Example, cfg *Config, taps []int, states []float32, n int) {
	d := cfg.Base.Dim
	e.Hidden = states[:n*d]
	if len(taps) == 1 && taps[0] == FinalLayer {
		return
	}
	in := cfg.InputDim()
	e.Input = make([]float32, n*in)
	for p := range n {
		layer := 0
		for k, t := range taps {
			dst := e.Input[p*in+k*d : p*in+(k+1)*d]
			if t == FinalLayer {
				copy(dst, e.Hidden[p*d:(p+1)*d])
				continue
			}
			layer++
			copy(dst, states[layer*n*d+p*d:layer*n*d+(p+1)*d])
		}
	}
}

func featureKey(fingerprint string, taps []int, tokens []int32) string {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(len(fingerprint)))
	h.Write(b[:])
	h.Write([]byte(fingerprint))
	binary.LittleEndian.PutUint64(b[:], uint64(len(taps)))
	h.Write(b[:])
	for _, t := range taps {
		binary.LittleEndian.PutUint64(b[:], uint64(int64(t)))
		h.Write(b[:])
	}
	for _, t := range tokens {
		binary.LittleEndian.PutUint32(b[:4], uint32(t))
		h.Write(b[:4])
	}
	return hex.EncodeToString(h.Sum(nil)) + ".f32"
}

func readFeatures(path string, n int) ([]float32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) != 4*n {
		return nil, fmt.Errorf("feature file %s holds %d bytes, want %d", path, len(data), 4*n)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return v, nil
}

func writeFeatures(path string, v []float32) error {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return writeFileAtomic(path, data)
}
