// Package finetune holds the pure parts of carryon's OpenAI-compatible
// fine-tuning API: the JSON shapes of files, jobs, events and checkpoints
// as the official OpenAI SDKs read them, the validation of chat-format JSONL
// training files (with line-numbered errors), the parsing of job requests
// ("auto" or numeric hyperparameters, carryon's head-shape extensions), and
// the stores that keep files, jobs and their events in the data directory.
//
// A job moves through the states validating_files → queued → running →
// succeeded | failed | cancelled; CanTransition states which moves are
// allowed. The stores persist every change at once, so that files, jobs and
// events survive a restart; OpenJobs marks a job that was running when the
// previous process stopped as failed.
//
// The training itself (tokenizing conversations, base features, the head
// plugin's Train stream, registering the result) is in package server.
package finetune
