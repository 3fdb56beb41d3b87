package host

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carryon/carryon/sdk"
)

// Error is an error from a call to a plugin. It wraps the sentinel that
// says what kind of failure it is (sdk.ErrUnknownHead, sdk.ErrInvalid,
// sdk.ErrUnsupported, ErrExited, ErrUnavailable, a context error), or
// nothing for an error the plugin reported without a kind.
type Error struct {
	// Plugin is the plugin's name, Op the operation ("forward", ...).
	Plugin, Op string
	// Code is the gRPC status code of the failed call.
	Code codes.Code
	// Message is the plugin's (or the transport's) description.
	Message string
	kind    error
}

func (e *Error) Error() string {
	s := "plugin " + e.Plugin + ": " + e.Op + ": "
	if e.kind == ErrExited || e.kind == ErrUnavailable {
		s += e.kind.Error() + ": "
	}
	return s + e.Message
}

// Unwrap returns the kind of failure.
func (e *Error) Unwrap() error { return e.kind }

// callError turns a failed call's error into an *Error. A transport failure
// is classified as ErrExited when the process has exited or exits within a
// second (a crash shows up as a broken connection slightly before the
// process is reaped), ErrUnavailable otherwise.
func (p *Plugin) callError(op string, err error) error {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err)
	e := &Error{Plugin: p.name, Op: op, Code: st.Code(), Message: st.Message()}
	switch st.Code() {
	case codes.NotFound:
		e.kind = sdk.ErrUnknownHead
	case codes.InvalidArgument:
		e.kind = sdk.ErrInvalid
	case codes.Unimplemented:
		e.kind = sdk.ErrUnsupported
	case codes.Canceled:
		e.kind = context.Canceled
	case codes.DeadlineExceeded:
		e.kind = context.DeadlineExceeded
	case codes.Unavailable, codes.Internal, codes.Aborted:
		e.kind = ErrUnavailable
		if p.waitExit(time.Second) {
			e.kind = ErrExited
		}
	}
	if errors.Is(err, context.Canceled) {
		e.kind = context.Canceled
	}
	return e
}

// waitExit reports whether the process exits within d.
func (p *Plugin) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// exitedError returns the error of a call made after the process exited.
func (p *Plugin) exitedError(op string) error {
	return &Error{Plugin: p.name, Op: op, Code: codes.Unavailable, Message: "the process is gone", kind: ErrExited}
}
