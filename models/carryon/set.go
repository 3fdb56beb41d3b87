package carryon

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Set holds many loaded heads by id, and runs rows of any of them in one
// Forward call. It is safe for concurrent use: Forward calls that touch
// different heads run at the same time, calls that share a head take turns.
type Set struct {
	// Workers bounds the goroutines of one Forward call; 0 means
	// GOMAXPROCS. Set it before the first Forward.
	Workers int

	mu    sync.RWMutex
	heads map[string]*Head
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{heads: map[string]*Head{}}
}

// Load reads the head directory dir and puts it in the set under id,
// replacing (and dropping the sequences of) any head loaded under id before.
// On error the set is unchanged.
func (s *Set) Load(id, dir string) (*Head, error) {
	h, err := Load(dir)
	if err != nil {
		return nil, err
	}
	s.Put(id, h)
	return h, nil
}

// Put puts h in the set under id, replacing any head there.
func (s *Set) Put(id string, h *Head) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heads[id] = h
}

// Unload removes a head and its sequences' state. It reports whether the id
// was loaded.
func (s *Set) Unload(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.heads[id]
	delete(s.heads, id)
	return ok
}

// Head returns the head loaded under id.
func (s *Set) Head(id string) (*Head, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.heads[id]
	return h, ok
}

// IDs returns the ids of the loaded heads, sorted.
func (s *Set) IDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, 0, len(s.heads))
	for id := range s.heads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Release drops the sequences' state in every head.
func (s *Set) Release(seqs ...SeqID) {
	s.mu.RLock()
	heads := make([]*Head, 0, len(s.heads))
	for _, h := range s.heads {
		heads = append(heads, h)
	}
	s.mu.RUnlock()
	for _, h := range heads {
		h.Release(seqs...)
	}
}

// Forward runs every row through the head Row.Head names and returns one
// delta of that head's Dim floats per row, in row order.
//
// Rows may mix heads and sequences in any order, but the rows of one
// sequence of one head come in consecutive positions, the first of which is
// at most the number of positions the head holds for the sequence: equal
// continues the sequence, smaller first drops the positions from there on
// (a rewind). Positions must stay below the head's context. Rows naming an
// unknown head give an error wrapping ErrUnknownHead, malformed rows one
// wrapping ErrRows; either way no state changes. The sequences of one call
// run in parallel.
func (s *Set) Forward(ctx context.Context, rows []Row) ([][]float32, error) {
	heads := make([]*Head, len(rows))
	s.mu.RLock()
	for i, r := range rows {
		h, ok := s.heads[r.Head]
		if !ok {
			s.mu.RUnlock()
			return nil, fmt.Errorf("%w %q (row %d)", ErrUnknownHead, r.Head, i)
		}
		heads[i] = h
	}
	s.mu.RUnlock()
	return forward(ctx, rows, heads, s.Workers)
}
