package sdk

import (
	"context"
	"errors"
)

// Head is what a head plugin implements: it loads heads from directories and
// runs rows of a frozen base model's hidden states through them.
//
// A head reads, for each token of a sequence, the base model's hidden states
// (the final-norm state and any tapped layers, concatenated) and returns a
// delta of the base's width; the core adds it to the final-norm state and
// applies the base model's LM head. A head may keep state per sequence (a
// key/value cache, for instance) from one Forward call to the next until
// Release.
//
// The core calls the methods from several goroutines at once; an
// implementation must be safe for concurrent use. Errors should wrap
// ErrUnknownHead, ErrInvalid or ErrUnsupported where they apply, so that the
// core can tell bad requests from failures.
type Head interface {
	// Info describes the plugin.
	Info(ctx context.Context) (PluginInfo, error)

	// Load reads the head directory dir and makes it available under id,
	// an opaque name the core chooses (it names a head version, so a new
	// version is loaded under a new id next to the old one). Loading an id
	// that is already loaded replaces that head and drops the state of its
	// sequences. A directory that cannot be used is an error wrapping
	// ErrInvalid, and nothing changes.
	Load(ctx context.Context, id, dir string) (HeadInfo, error)

	// Unload drops a head and the state of its sequences. Unloading an id
	// that is not loaded is an error wrapping ErrUnknownHead.
	Unload(ctx context.Context, id string) error

	// Forward runs rows through their heads and returns one delta per row,
	// of HeadInfo.Dim floats each, in row order. Rows may belong to
	// different heads and sequences. The rows of one sequence come in
	// increasing, consecutive positions, and the first of them is at most
	// the number of positions the head has seen for that sequence: equal
	// continues it, smaller rewinds it to that position first (its later
	// state is dropped). A row of an unknown head is an error wrapping
	// ErrUnknownHead, a malformed row one wrapping ErrInvalid; a failed
	// Forward leaves every sequence as it was. Row.Hidden slices are valid
	// only during the call, and the returned deltas belong to the caller.
	Forward(ctx context.Context, rows []Row) ([][]float32, error)

	// Release drops the state of the given sequences in every head.
	// Unknown sequences are ignored.
	Release(ctx context.Context, seqs []SeqID) error
}

// SeqID names a sequence. The core chooses it and keeps it unique among the
// live sequences of one plugin process.
type SeqID uint64

// FinalLayer is the tap that stands for the base model's final-norm hidden
// state (the input of its LM head), as opposed to the residual stream after
// a numbered layer.
const FinalLayer = -1

// Row is one token's input to a head.
type Row struct {
	// Head is the id the head was loaded under.
	Head string
	// Seq is the sequence the token belongs to.
	Seq SeqID
	// Pos is the token's position in its sequence, from 0.
	Pos int
	// Hidden holds the base model's states at this token for the head's
	// taps, concatenated in HeadInfo.Taps order: HeadInfo.InputDim() floats.
	Hidden []float32
}

// HeadInfo describes a loaded head: what it expects as input and what it
// returns.
type HeadInfo struct {
	// ID is the id the head was loaded under.
	ID string
	// Version is the content hash of the head's directory.
	Version string
	// Type is the head type, such as "carryon".
	Type string
	// Base identifies the base model the head was made for; the core
	// refuses to run a head on another base.
	Base BaseModel
	// Taps lists the layers whose states make up a row's Hidden, in order:
	// FinalLayer for the final-norm state, n ≥ 0 for the residual stream
	// after layer n. Empty means {FinalLayer}.
	Taps []int
	// Dim is the width of each tap and of the returned delta (the base
	// model's embedding width).
	Dim int
	// Alpha is the merge scale the head applies; the returned delta already
	// includes it. A head with Alpha 0 returns zero deltas.
	Alpha float32
	// Parameters is the number of trainable parameters.
	Parameters int64
}

// InputDim returns the number of floats in a row's Hidden.
func (h HeadInfo) InputDim() int {
	if len(h.Taps) == 0 {
		return h.Dim
	}
	return len(h.Taps) * h.Dim
}

// BaseModel identifies a frozen base model.
type BaseModel struct {
	// Arch is the model's architecture (general.architecture).
	Arch string
	// Dim is the width of its hidden states.
	Dim int
	// Vocab is its vocabulary size.
	Vocab int
	// Layers is its number of transformer blocks.
	Layers int
	// Fingerprint is a hash of its weights, such as "sha256:<hex>".
	Fingerprint string
}

// PluginInfo describes a plugin process.
type PluginInfo struct {
	// Name is the plugin's name, such as "carryon".
	Name string
	// Version is the plugin build's version.
	Version string
	// Types lists the head types (or forecaster kinds) the plugin loads.
	Types []string
	// Training says whether the plugin trains new versions (implements
	// Trainer).
	Training bool
	// Models lists the ids of the models the plugin serves from its
	// start, without a Load (such as a forecaster's embedded default
	// model).
	Models []string
}

// Errors a plugin returns, wrapped with details, so that the core can react:
// the core answers a request naming an unknown head with "not found", and a
// malformed request with a client error, and restarts nothing for either.
var (
	// ErrUnknownHead says that a head (or forecasting model) id is not
	// loaded.
	ErrUnknownHead = errors.New("unknown head")
	// ErrInvalid says that a request or a head directory is malformed.
	ErrInvalid = errors.New("invalid request")
	// ErrUnsupported says that the plugin does not implement an operation.
	ErrUnsupported = errors.New("not supported")
)
