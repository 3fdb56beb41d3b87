// Package trafficlog is carryon's traffic log: the completions that
// clients asked to store (or that a head learning from its traffic
// served), and the feedback clients sent about them, kept in a NATS
// JetStream stream.
//
// By default the log runs an embedded, in-process NATS server with
// JetStream file storage in a directory of the data directory and no
// network listener; with a URL it talks to an external NATS server or
// cluster instead, which is how several serving replicas share one log.
//
// Every record is published synchronously: Append and AppendFeedback
// return only once the server has acknowledged the record, which with
// file storage means it has been written to the stream's files (written,
// not fsynced, unless Options.SyncAlways is set: a killed process loses
// nothing, a power cut may lose the last records).
//
// Subjects:
//
//	carryon.traffic.<model>.<id>    a Sample, one per completion id
//	carryon.feedback.<model>.<id>   a Feedback about that sample
//
// where <model> is the head id (or base model name) the request named,
// escaped to one subject token (see Token). Read returns a model's
// samples after a stream sequence, each joined with its latest feedback.
package trafficlog
