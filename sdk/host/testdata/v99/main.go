// Command v99 is a plugin for the host package's tests that serves only
// protocol version 99, which no host speaks.
package main

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/carryon/carryon/sdk/internal/wire"
)

type futureHead struct {
	plugin.NetRPCUnsupportedPlugin
}

func (futureHead) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (futureHead) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  wire.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{99: {wire.HeadPlugin: futureHead{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
