package kernels

import "unsafe"

// bytesF32 views a little-endian float32 row as a []float32 without
// copying. It returns nil when b is not 4-byte aligned or the machine is
// big-endian, in which case callers decode values one by one.
func bytesF32(b []byte) []float32 {
	if len(b) < 4 || uintptr(unsafe.Pointer(&b[0]))%4 != 0 || !littleEndian() {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// halfBytes views half-precision bit patterns as their little-endian bytes
// (the layout of memory on the little-endian machines the vector kernels
// run on; the portable kernels decode the same bytes).
func halfBytes(h []uint16) []byte {
	if len(h) == 0 {
		return nil
	}
	if !littleEndian() {
		b := make([]byte, 2*len(h))
		for i, v := range h {
			b[2*i], b[2*i+1] = byte(v), byte(v>>8)
		}
		return b
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), 2*len(h))
}
