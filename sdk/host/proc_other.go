//go:build !linux

package host

import "os/exec"

// killWithParent does nothing on this system; plugins watch their parent
// process themselves.
func killWithParent(*exec.Cmd) {}
