//go:build amd64 && !noasm

package gtt

//go:noescape
func geluAVX512(dst, th, src *float32, n int)

//go:noescape
func geluBackwardAVX512(dx, dy, src, th *float32, n int)

// gelu sets g = gelu(u) and t = the tanh term, kept for the backward pass.
func gelu(g, t, u []float32) {
	n := len(u)
	_, _ = g[:n], t[:n]
	v := 0
	if hasAVX512 {
		v = n &^ 15
		if v > 0 {
			geluAVX512(&g[0], &t[0], &u[0], v)
		}
	}
	geluGeneric(g[v:n], t[v:n], u[v:n])
}

// geluBackward sets du = dg·gelu'(u), with t from gelu.
func geluBackward(du, dg, u, t []float32) {
	n := len(u)
	_, _, _ = du[:n], dg[:n], t[:n]
	v := 0
	if hasAVX512 {
		v = n &^ 15
		if v > 0 {
			geluBackwardAVX512(&du[0], &dg[0], &u[0], &t[0], v)
		}
	}
	geluBackwardGeneric(du[v:n], dg[v:n], u[v:n], t[v:n])
}
