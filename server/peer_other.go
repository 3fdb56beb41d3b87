//go:build !unix

package server

import "net"

// peerGone cannot tell on this platform; client departures are noticed
// only through failed writes.
func peerGone(net.Conn) (gone, ok bool) { return false, false }
