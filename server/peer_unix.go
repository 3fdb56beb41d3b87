//go:build unix

package server

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerGone reports whether the peer of a TCP connection has closed it,
// without consuming anything: it peeks at the socket's receive queue. A
// closed peer reads as end of file; pending bytes (a pipelined request) or
// an empty queue mean the peer is still there. ok is false when the state
// cannot be told (not a socket, or an unexpected error).
func peerGone(c net.Conn) (gone, ok bool) {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var buf [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true
	})
	if err != nil {
		return false, false
	}
	switch {
	case rerr == nil && n == 0:
		return true, true
	case rerr == nil:
		return false, true
	case errors.Is(rerr, unix.EAGAIN), errors.Is(rerr, unix.EWOULDBLOCK), errors.Is(rerr, unix.EINTR):
		return false, true
	case errors.Is(rerr, unix.ECONNRESET), errors.Is(rerr, unix.EPIPE), errors.Is(rerr, unix.ENOTCONN):
		return true, true
	}
	return false, false
}
