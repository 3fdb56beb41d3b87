package trafficlog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Batch is what Read returns: a model's samples after a sequence number,
// in stream order, joined with their latest feedback.
type Batch struct {
	// Examples are the samples to train on.
	Examples []Example
	// Excluded counts the samples left out because their latest feedback
	// rated them below zero without a correction.
	Excluded int
	// Next is the sequence to pass as After to the next Read so that it
	// neither repeats nor skips a sample: the last sample taken when the
	// limit or the time cut the batch, else the last record of the model
	// that existed when Read started (After itself when there was none).
	Next uint64
}

// Pending counts a model's samples with a sequence number above after.
func (l *Log) Pending(ctx context.Context, model string, after uint64) (int, error) {
	var n int
	err := l.use(func() error {
		c, err := l.consumer(ctx, []string{trafficPrefix + Token(model) + ".*"}, after)
		if err != nil {
			return err
		}
		defer l.dropConsumer(c)
		n = int(c.CachedInfo().NumPending)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count samples of %s after %d in stream %s: %w", model, after, l.name, err)
	}
	return n, nil
}

// ReadOptions select the samples Read returns.
type ReadOptions struct {
	// After is the sequence number the read starts after (0: from the
	// beginning).
	After uint64
	// Limit, when positive, bounds the samples considered (excluded ones
	// count), the oldest first.
	Limit int
	// Before, when set, ends the read at the first sample stored after
	// it, so that feedback has time to arrive before a sample is used.
	Before time.Time
}

// Read returns the samples of model with sequence numbers above o.After,
// joined with their latest feedback (feedback stored after the sample, up
// to the moment Read started). When o.Limit or o.Before cut the batch,
// Batch.Next points at the last sample taken.
func (l *Log) Read(ctx context.Context, model string, o ReadOptions) (*Batch, error) {
	after, limit := o.After, o.Limit
	b := &Batch{Next: after}
	err := l.use(func() error {
		tok := Token(model)
		c, err := l.consumer(ctx, []string{trafficPrefix + tok + ".*", feedbackPrefix + tok + ".*"}, after)
		if err != nil {
			return err
		}
		defer l.dropConsumer(c)
		// The records that exist now; later ones wait for the next Read.
		left := int(c.CachedInfo().NumPending)
		var samples []Example
		index := map[string]int{}
		full := false
		for left > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			batch, err := c.Fetch(min(left, fetchBatch), jetstream.FetchMaxWait(fetchWait))
			if err != nil {
				return err
			}
			got := 0
			for m := range batch.Messages() {
				got++
				left--
				md, err := m.Metadata()
				if err != nil {
					return fmt.Errorf("record metadata: %w", err)
				}
				seq := md.Sequence.Stream
				switch subj := m.Subject(); {
				case strings.HasPrefix(subj, trafficPrefix):
					if full {
						continue
					}
					var s Sample
					if err := json.Unmarshal(m.Data(), &s); err != nil {
						return fmt.Errorf("record %d (%s) is not a sample: %w", seq, subj, err)
					}
					if !o.Before.IsZero() && s.Time.After(o.Before) {
						full = true
						continue
					}
					if i, dup := index[s.ID]; dup {
						// A repeated id (after the duplicate window)
						// replaces the earlier record.
						samples[i].Sample = s
						samples[i].Seq = seq
					} else {
						index[s.ID] = len(samples)
						samples = append(samples, Example{Sample: s, Seq: seq})
					}
					b.Next = seq
					full = limit > 0 && len(samples) >= limit
				case strings.HasPrefix(subj, feedbackPrefix):
					var f Feedback
					if err := json.Unmarshal(m.Data(), &f); err != nil {
						return fmt.Errorf("record %d (%s) is not feedback: %w", seq, subj, err)
					}
					if i, ok := index[f.ID]; ok {
						samples[i].Feedback = &f
					}
					if !full {
						b.Next = seq
					}
				}
			}
			if err := batch.Error(); err != nil {
				return err
			}
			if got == 0 {
				return fmt.Errorf("no records arrived within %v though %d are pending", fetchWait, left)
			}
		}
		for _, ex := range samples {
			if ex.Feedback.Excluded() {
				b.Excluded++
				continue
			}
			ex.Target = ex.Completion
			if ex.Feedback != nil && ex.Feedback.Correction != nil {
				ex.Target = *ex.Feedback.Correction
			}
			b.Examples = append(b.Examples, ex)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read samples of %s after %d from stream %s: %w", model, after, l.name, err)
	}
	return b, nil
}

// consumer creates an ephemeral, unacknowledged consumer of subjects
// from sequence after+1.
func (l *Log) consumer(ctx context.Context, subjects []string, after uint64) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	return l.stream.CreateConsumer(ctx, cfg)
}

// dropConsumer deletes an ephemeral consumer (the server would delete it
// after InactiveThreshold anyway).
func (l *Log) dropConsumer(c jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.stream.DeleteConsumer(ctx, c.CachedInfo().Name); err != nil {
		l.log.Debug("traffic log: delete a reading consumer", "error", err)
	}
}
