package host

import (
	"os/exec"
	"syscall"
)

// killWithParent asks the kernel to kill the plugin when the thread that
// starts it exits. Go never ends the threads that ordinary (unlocked)
// goroutines run on, so in practice that is when the core process dies.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
