package sdk

import "context"

// Trainer is implemented by a Head that trains new head versions. The core
// checks for it with a type assertion; a plugin whose Head does not
// implement it answers training requests with ErrUnsupported.
type Trainer interface {
	// Train trains a new head version as job describes, reading examples
	// from s until it returns io.EOF, and reporting progress through s.
	// It returns the new version, written to job.OutDir.
	Train(ctx context.Context, job TrainJob, s TrainStream) (HeadInfo, error)
}

// TrainJob describes a training run.
type TrainJob struct {
	// Head is a loaded head to start from; when empty, Dir is read.
	Head string
	// Dir is a head directory to start from when Head is empty.
	Dir string
	// OutDir receives the new version's files.
	OutDir string
	// BasePath is the base model's GGUF file, whose LM head the loss needs
	// (read-only).
	BasePath string
	// Options holds hyperparameters by name (learning rate, steps, ...).
	Options map[string]string
}

// TrainExample is one sequence of training data: the head's input at each
// position and the token that followed it.
type TrainExample struct {
	// Hidden holds len(Targets) rows of the head's input width.
	Hidden [][]float32
	// Targets holds the next token after each position.
	Targets []int32
}

// TrainProgress reports how a training run goes.
type TrainProgress struct {
	// Step counts the optimizer steps taken.
	Step int
	// Loss is the recent training loss.
	Loss float64
	// Message is free text for the log.
	Message string
}

// TrainStream connects a training run with the core.
type TrainStream interface {
	// Recv returns the next example, or io.EOF when the core has sent all.
	Recv() (TrainExample, error)
	// Send reports progress.
	Send(TrainProgress) error
}
