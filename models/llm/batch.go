package llm

// Batch is the input of one Forward call: rows of tokens, each placed in a
// sequence at a position, and the layers whose residual stream to return.
// Rows of one sequence must come in increasing, consecutive positions that
// continue the sequence: the first one at the sequence's cache length.
// Rows of different sequences may interleave. A Batch can be reused:
// Clear it and add rows again.
type Batch struct {
	Rows []BatchRow
	// Taps lists layer indices (0 is the first block) after which the
	// residual stream is returned for the rows that want hidden states.
	Taps []int
}

// BatchRow is one token of a Batch.
type BatchRow struct {
	Token int32
	Seq   SeqID
	Pos   int
	// Logits asks for the row's next-token logits.
	Logits bool
	// Hidden asks for the row's final-norm hidden state and its tap
	// layers' residual streams.
	Hidden bool
}

// Add appends a row.
func (b *Batch) Add(token int32, seq SeqID, pos int, logits, hidden bool) {
	b.Rows = append(b.Rows, BatchRow{Token: token, Seq: seq, Pos: pos, Logits: logits, Hidden: hidden})
}

// AddSequence appends the tokens of one sequence at positions start,
// start+1, …; only the last row asks for logits (and, when hidden is
// set, for hidden states).
func (b *Batch) AddSequence(seq SeqID, start int, tokens []int32, hidden bool) {
	for i, t := range tokens {
		last := i == len(tokens)-1
		b.Add(t, seq, start+i, last, hidden && last)
	}
}

// Clear removes the rows and taps, keeping their storage.
func (b *Batch) Clear() {
	b.Rows = b.Rows[:0]
	b.Taps = b.Taps[:0]
}

// Output receives the results of Forward. Its slices are reused from call
// to call: what one call returns is valid until the next call with the
// same Output.
type Output struct {
	// Logits holds Vocab floats for each row that asked for logits, in
	// batch order; LogitRows gives the batch row of each.
	Logits    []float32
	LogitRows []int
	// Hidden holds Dim floats, the final-norm hidden state (the input of
	// the LM head), for each row that asked for hidden states, in batch
	// order; HiddenRows gives the batch row of each.
	Hidden     []float32
	HiddenRows []int
	// Taps[i] holds, for Batch.Taps[i], the residual stream after that
	// layer: Dim floats for each row of HiddenRows.
	Taps [][]float32

	vocab, dim              int
	logitIndex, hiddenIndex []int // batch row → output row, or -1
}

// RowLogits returns the logits of batch row r, or nil if it did not ask
// for them.
func (o *Output) RowLogits(r int) []float32 {
	if r < 0 || r >= len(o.logitIndex) || o.logitIndex[r] < 0 {
		return nil
	}
	i := o.logitIndex[r]
	return o.Logits[i*o.vocab : (i+1)*o.vocab]
}

// RowHidden returns the final-norm hidden state of batch row r, or nil if
// it did not ask for it.
func (o *Output) RowHidden(r int) []float32 {
	if r < 0 || r >= len(o.hiddenIndex) || o.hiddenIndex[r] < 0 {
		return nil
	}
	i := o.hiddenIndex[r]
	return o.Hidden[i*o.dim : (i+1)*o.dim]
}

// RowTap returns the residual stream of batch row r after the layer
// Batch.Taps[tap], or nil if the row did not ask for hidden states.
func (o *Output) RowTap(tap, r int) []float32 {
	if tap < 0 || tap >= len(o.Taps) || r < 0 || r >= len(o.hiddenIndex) || o.hiddenIndex[r] < 0 {
		return nil
	}
	i := o.hiddenIndex[r]
	return o.Taps[tap][i*o.dim : (i+1)*o.dim]
}

// prepare sizes the output for b.
func (o *Output) prepare(b *Batch, vocab, dim int) {
	o.vocab, o.dim = vocab, dim
	n := len(b.Rows)
	o.logitIndex = resize(o.logitIndex, n)
	o.hiddenIndex = resize(o.hiddenIndex, n)
	o.LogitRows, o.HiddenRows = o.LogitRows[:0], o.HiddenRows[:0]
	for r, row := range b.Rows {
		o.logitIndex[r], o.hiddenIndex[r] = -1, -1
		if row.Logits {
			o.logitIndex[r] = len(o.LogitRows)
			o.LogitRows = append(o.LogitRows, r)
		}
		if row.Hidden {
			o.hiddenIndex[r] = len(o.HiddenRows)
			o.HiddenRows = append(o.HiddenRows, r)
		}
	}
	o.Logits = resize(o.Logits, len(o.LogitRows)*vocab)
	o.Hidden = resize(o.Hidden, len(o.HiddenRows)*dim)
	if cap(o.Taps) < len(b.Taps) {
		o.Taps = append(o.Taps[:cap(o.Taps)], make([][]float32, len(b.Taps)-cap(o.Taps))...)
	}
	o.Taps = o.Taps[:len(b.Taps)]
	for i := range o.Taps {
		o.Taps[i] = resize(o.Taps[i], len(o.HiddenRows)*dim)
	}
}

// resize returns s with length n, reusing its storage when large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}
