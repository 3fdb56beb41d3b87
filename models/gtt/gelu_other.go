//go:build !amd64 || noasm

package gtt

func gelu(g, t, u []float32) { geluGeneric(g, t, u) }

func geluBackward(du, dg, u, t []float32) { geluBackwardGeneric(du, dg, u, t) }
