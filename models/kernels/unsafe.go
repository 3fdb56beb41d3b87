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
