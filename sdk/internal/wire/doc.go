// Package wire holds what both ends of a carryon plugin connection must agree
// on: the handshake (magic cookie, protocol versions, plugin names), the gRPC
// message limits, and the packing of tensors into carryonv1.Tensor messages.
// The sdk package (the plugin side) and sdk/host (the core side) build on it.
package wire
