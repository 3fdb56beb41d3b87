package trafficlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStream is the name of the JetStream stream that holds the log.
const DefaultStream = "CARRYON_TRAFFIC"

const (
	trafficPrefix  = "carryon.traffic."
	feedbackPrefix = "carryon.feedback."
	// maxPayload is the embedded server's largest record (a long
	// conversation); NATS's default is 1 MiB.
	maxPayload = 8 << 20
	// startTimeout bounds the embedded server's start.
	startTimeout = 30 * time.Second
	// fetchWait bounds one fetch of records that are known to exist.
	fetchWait = 10 * time.Second
	// fetchBatch is the records asked for per fetch.
	fetchBatch = 512
)

// Options configure Open.
type Options struct {
	// URL names an external NATS server (nats://host:4222, or several
	// separated by commas). When empty, Open starts an embedded server
	// that keeps its files in Dir.
	URL string
	// Dir is the embedded server's storage directory, conventionally
	// <data-dir>/nats. It must be set when URL is empty.
	Dir string
	// Stream is the stream's name; DefaultStream when empty.
	Stream string
	// SyncAlways makes the embedded server fsync every record before
	// acknowledging it, so that a power cut loses nothing either; it is
	// much slower. Without it a killed process still loses nothing.
	SyncAlways bool
	// MaxAge, when positive, drops records older than it (a stream
	// created by Open only; an existing stream keeps its settings).
	MaxAge time.Duration
	// Replicas is the number of copies an external cluster keeps of a
	// stream that Open creates (1 when zero).
	Replicas int
	// Logger receives the log's and the embedded server's messages; nil
	// discards them.
	Logger hclog.Logger
}

// Log is an open traffic log. Its methods are safe for concurrent use.
type Log struct {
	name   string
	log    hclog.Logger
	ns     *server.Server // the embedded server; nil with an external one
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream

	mu     sync.RWMutex
	closed bool
}

// Open connects to the log's NATS server (starting the embedded one when
// o.URL is empty) and creates the stream if it does not exist.
func Open(ctx context.Context, o Options) (*Log, error) {
	l := &Log{name: o.Stream, log: o.Logger}
	if l.name == "" {
		l.name = DefaultStream
	}
	if l.log == nil {
		l.log = hclog.NewNullLogger()
	}
	var err error
	if o.URL == "" {
		if o.Dir == "" {
			return nil, fmt.Errorf("open traffic log: %w: neither a NATS URL nor a storage directory is given", ErrInvalid)
		}
		if l.ns, err = startEmbedded(o.Dir, o.SyncAlways, l.log); err != nil {
			return nil, err
		}
		l.nc, err = nats.Connect("", nats.InProcessServer(l.ns), nats.Name("carryon"))
	} else {
		l.nc, err = nats.Connect(o.URL, nats.Name("carryon"), nats.MaxReconnects(-1),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				l.log.Warn("traffic log: disconnected from NATS", "error", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				l.log.Info("traffic log: reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			}))
	}
	if err != nil {
		l.shutdownServer()
		where := o.URL
		if where == "" {
			where = "the embedded server"
		}
		return nil, fmt.Errorf("open traffic log: connect to %s: %w", where, err)
	}
	if l.js, err = jetstream.New(l.nc); err != nil {
		l.Close()
		return nil, fmt.Errorf("open traffic log: %w", err)
	}
	if l.stream, err = l.ensureStream(ctx, o); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// startEmbedded starts an in-process NATS server with JetStream file
// storage in dir and no network listener.
func startEmbedded(dir string, syncAlways bool, log hclog.Logger) (*server.Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open traffic log: create %s: %w", dir, err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "carryon",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: syncAlways,
		NoSigs:     true,
		MaxPayload: maxPayload,
	})
	if err != nil {
		return nil, fmt.Errorf("open traffic log: configure the embedded NATS server in %s: %w", dir, err)
	}
	ns.SetLoggerV2(natsLogger{log.Named("nats")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(startTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("open traffic log: the embedded NATS server in %s did not start within %v", dir, startTimeout)
	}
	return ns, nil
}

// ensureStream returns the stream, creating it when it does not exist.
// An existing stream keeps its settings (an operator may have changed
// them), but must take the log's subjects.
func (l *Log) ensureStream(ctx context.Context, o Options) (jetstream.Stream, error) {
	st, err := l.js.Stream(ctx, l.name)
	if err == nil {
		subjects := st.CachedInfo().Config.Subjects
		if !covers(subjects, trafficPrefix+">") || !covers(subjects, feedbackPrefix+">") {
			return nil, fmt.Errorf("open traffic log: stream %s exists with subjects %v, which do not take %s> and %s>", l.name, subjects, trafficPrefix, feedbackPrefix)
		}
		return st, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("open traffic log: look up stream %s: %w", l.name, err)
	}
	cfg := jetstream.StreamConfig{
		Name:        l.name,
		Description: "carryon traffic log: stored completions and feedback about them",
		Subjects:    []string{trafficPrefix + ">", feedbackPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.MaxAge,
		Replicas:    max(o.Replicas, 1),
		Duplicates:  2 * time.Minute,
	}
	st, err = l.js.CreateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open traffic log: create stream %s: %w", l.name, err)
	}
	l.log.Info("traffic log stream created", "stream", l.name)
	return st, nil
}

// covers reports whether subjects include want exactly or through a
// catch-all wildcard.
func covers(subjects []string, want string) bool {
	for _, s := range subjects {
		if s == want || s == ">" {
			return true
		}
	}
	return false
}

// Embedded reports whether the log runs its own in-process server.
func (l *Log) Embedded() bool { return l.ns != nil }

// Close closes the connection and stops the embedded server. Records
// already acknowledged are on disk. Close may be called more than once.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	// Calls in flight hold l.mu, so nothing is waiting for an
	// acknowledgement here.
	if l.nc != nil {
		l.nc.Close()
	}
	l.shutdownServer()
	return nil
}

func (l *Log) shutdownServer() {
	if l.ns != nil {
		l.ns.Shutdown()
		l.ns.WaitForShutdown()
	}
}

// use runs f unless the log is closed.
func (l *Log) use(f func() error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	return f()
}

// Append stores a sample and returns its stream sequence number once the
// server has acknowledged it. A sample whose id was stored in the last
// two minutes is not stored again; the first one's sequence is returned.
func (l *Log) Append(ctx context.Context, s *Sample) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return 0, fmt.Errorf("append sample %s: %w", s.ID, err)
	}
	return l.publish(ctx, trafficSubject(s.Model, s.ID), s.ID, data)
}

// AppendFeedback stores feedback about a sample and returns its stream
// sequence number once the server has acknowledged it. Call Sample first
// to learn the sample's model; feedback about an id the log does not
// hold is stored but never joined.
func (l *Log) AppendFeedback(ctx context.Context, f *Feedback) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	data, err := json.Marshal(f)
	if err != nil {
		return 0, fmt.Errorf("append feedback about %s: %w", f.ID, err)
	}
	return l.publish(ctx, feedbackSubject(f.Model, f.ID), "", data)
}

// publish sends one record and waits for its acknowledgement.
func (l *Log) publish(ctx context.Context, subject, msgID string, data []byte) (uint64, error) {
	var seq uint64
	err := l.use(func() error {
		// While a connection to an external server is down, a publish
		// would wait for its deadline; the caller is better told at once.
		if !l.nc.IsConnected() {
			return fmt.Errorf("%w: not connected to NATS (%s)", ErrUnavailable, l.nc.Status())
		}
		var opts []jetstream.PublishOpt
		opts = append(opts, jetstream.WithExpectStream(l.name))
		if msgID != "" {
			opts = append(opts, jetstream.WithMsgID(msgID))
		}
		ack, err := l.js.Publish(ctx, subject, data, opts...)
		if err != nil {
			return err
		}
		seq = ack.Sequence
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("publish %s to stream %s: %w", subject, l.name, err)
	}
	return seq, nil
}

// Sample returns the sample stored under a completion id and its stream
// sequence number, or ErrNotFound.
func (l *Log) Sample(ctx context.Context, id string) (Sample, uint64, error) {
	var s Sample
	if !ValidID(id) {
		return s, 0, fmt.Errorf("look up sample %q: %w", id, ErrNotFound)
	}
	var msg *jetstream.RawStreamMsg
	err := l.use(func() error {
		var err error
		msg, err = l.stream.GetLastMsgForSubject(ctx, trafficPrefix+"*."+id)
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return s, 0, fmt.Errorf("look up sample %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return s, 0, fmt.Errorf("look up sample %s in stream %s: %w", id, l.name, err)
	}
	if err := json.Unmarshal(msg.Data, &s); err != nil {
		return s, 0, fmt.Errorf("look up sample %s: record %d is not a sample: %w", id, msg.Sequence, err)
	}
	return s, msg.Sequence, nil
}

// LastSeq returns the stream's last sequence number (0 when empty).
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	var last uint64
	err := l.use(func() error {
		info, err := l.stream.Info(ctx)
		if err != nil {
			return err
		}
		last = info.State.LastSeq
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the state of stream %s: %w", l.name, err)
	}
	return last, nil
}

// natsLogger passes the embedded server's messages to an hclog logger.
type natsLogger struct{ log hclog.Logger }

func (n natsLogger) Noticef(format string, v ...any) { n.log.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Warnf(format string, v ...any)   { n.log.Warn(fmt.Sprintf(format, v...)) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.log.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Errorf(format string, v ...any)  { n.log.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Debugf(format string, v ...any)  { n.log.Trace(fmt.Sprintf(format, v...)) }
func (n natsLogger) Tracef(format string, v ...any)  { n.log.Trace(fmt.Sprintf(format, v...)) }

var _ server.Logger = natsLogger{}
