//go:build !amd64 || noasm

package kernels

// active is the kernel set in use: the portable code on this build.
var active = &generic

// kernelSets lists every implementation that runs on this machine.
func kernelSets() []*kernelSet { return []*kernelSet{&generic} }

// spinPause is one step of a spin-wait loop.
func spinPause() {}
