//go:build amd64 && !noasm

package kernels

import "unsafe"

//go:noescape
func dotRows16F16(out *float32, q *float32, rows unsafe.Pointer, stride uintptr, d int, blocks int)

//go:noescape
func dotRows16F32(out *float32, q *float32, rows unsafe.Pointer, stride uintptr, d int, blocks int)

//go:noescape
func axpyGroup(out *[4]*float32, w *[4]*float32, rows unsafe.Pointer, stride uintptr, n int, half bool)

// dotRowsCacheAVX2 dispatches to the AVX2 row kernels.
func dotRowsCacheAVX2(out, q []float32, rows cacheRows, stride int) {
	if rows.half != nil {
		dotRowsF16AVX2(out, q, rows.half, stride)
		return
	}
	dotRowsF32AVX2(out, q, rows.f32, stride)
}

// axpyHeadsAVX2 sums each head's weighted values with the AVX2 kernel.
func axpyHeadsAVX2(out, w []float32, heads int, rows cacheRows, stride, n, dv int) {
	for j := range heads {
		o := out[j*dv : (j+1)*dv]
		clear(o)
		if rows.half != nil {
			axpyRowsF16AVX2(o, w[j*n:(j+1)*n], rows.half, stride)
		} else {
			axpyRowsF32AVX2(o, w[j*n:(j+1)*n], rows.f32, stride)
		}
	}
}

// dotRowsCacheAVX512 computes the products of blocks of 16 positions with
// one accumulator per position when the head size is a multiple of 16,
// and the rest one position at a time.
func dotRowsCacheAVX512(out, q []float32, rows cacheRows, stride int) {
	d, n := len(q), len(out)
	blocks := n / 16
	if d%16 != 0 || blocks == 0 {
		if rows.half != nil {
			dotRowsF16AVX512(out, q, rows.half, stride)
		} else {
			dotRowsF32AVX2(out, q, rows.f32, stride)
		}
		return
	}
	done := 16 * blocks
	if rows.half != nil {
		_ = rows.half[2*((n-1)*stride+d)-1]
		dotRows16F16(&out[0], &q[0], unsafe.Pointer(&rows.half[0]), uintptr(2*stride), d, blocks)
		if done < n {
			dotRowsF16AVX512(out[done:], q, rows.half[2*done*stride:], stride)
		}
		return
	}
	_ = rows.f32[(n-1)*stride+d-1]
	dotRows16F32(&out[0], &q[0], unsafe.Pointer(&rows.f32[0]), uintptr(4*stride), d, blocks)
	if done < n {
		dotRowsF32AVX2(out[done:], q, rows.f32[done*stride:], stride)
	}
}

// axpyHeadsAVX512 sums the weighted values of up to four heads at a time
// over 64-value slices of the rows, converting each row slice once for
// all of them; value sizes that are not a multiple of 64 leave a rest to
// the one-head kernel.
func axpyHeadsAVX512(out, w []float32, heads int, rows cacheRows, stride, n, dv int) {
	slabs := dv / 64
	if slabs == 0 {
		axpyHeadsAVX2(out, w, heads, rows, stride, n, dv)
		return
	}
	var base unsafe.Pointer
	esize := 4
	if rows.half != nil {
		_ = rows.half[2*((n-1)*stride+dv)-1]
		base, esize = unsafe.Pointer(&rows.half[0]), 2
	} else {
		_ = rows.f32[(n-1)*stride+dv-1]
		base = unsafe.Pointer(&rows.f32[0])
	}
	_ = w[heads*n-1]
	_ = out[heads*dv-1]
	var spare [64]float32 // the output of unused head slots
	var op, wp [4]*float32
	for j0 := 0; j0 < heads; j0 += 4 {
		for s := range slabs {
			for k := range 4 {
				j := j0 + k
				if j < heads {
					op[k], wp[k] = &out[j*dv+64*s], &w[j*n]
				} else {
					op[k], wp[k] = &spare[0], &w[j0*n]
				}
			}
			axpyGroup(&op, &wp, unsafe.Add(base, 64*s*esize), uintptr(stride*esize), n, rows.half != nil)
		}
	}
	if rest := dv - 64*slabs; rest > 0 {
		for j := range heads {
			o := out[j*dv+64*slabs : (j+1)*dv]
			clear(o)
			if rows.half != nil {
				axpyRowsF16AVX2(o, w[j*n:(j+1)*n], rows.half[2*64*slabs:], stride)
			} else {
				axpyRowsF32AVX2(o, w[j*n:(j+1)*n], rows.f32[64*slabs:], stride)
			}
		}
	}
}
