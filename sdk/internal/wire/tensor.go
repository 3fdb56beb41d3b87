package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	pb "github.com/carryon/carryon/proto/carryon/v1"
)

// littleEndian is whether this machine stores numbers little-endian, as the
// wire does; then float32 slices are copied as bytes in one go.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// ErrTensor is wrapped by every error about a malformed tensor.
var ErrTensor = errors.New("malformed tensor")

// PackF32 returns an F32 tensor of the given shape holding x, whose length
// must be the product of shape.
func PackF32(x []float32, shape ...int64) *pb.Tensor {
	data := make([]byte, 4*len(x))
	if littleEndian && len(x) > 0 {
		copy(data, unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x)))
	} else {
		for i, v := range x {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
	}
	return &pb.Tensor{Data: data, Shape: shape, Dtype: pb.DType_DTYPE_F32}
}

// PackF16 returns an F16 tensor of the given shape holding x rounded to
// half precision (to nearest even; values beyond the half range become
// infinities).
func PackF16(x []float32, shape ...int64) *pb.Tensor {
	data := make([]byte, 2*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint16(data[2*i:], f32ToF16(v))
	}
	return &pb.Tensor{Data: data, Shape: shape, Dtype: pb.DType_DTYPE_F16}
}

// Elements checks a tensor's shape against its data and returns the number
// of elements. want, when given, is the rank and the dimensions the shape
// must have; a negative entry accepts any size.
func Elements(t *pb.Tensor, want ...int64) (int, error) {
	if t == nil {
		return 0, fmt.Errorf("%w: missing", ErrTensor)
	}
	if len(want) > 0 {
		if len(t.Shape) != len(want) {
			return 0, fmt.Errorf("%w: shape %v has rank %d, want %d", ErrTensor, t.Shape, len(t.Shape), len(want))
		}
		for i, w := range want {
			if w >= 0 && t.Shape[i] != w {
				return 0, fmt.Errorf("%w: shape %v, want %v", ErrTensor, t.Shape, want)
			}
		}
	}
	size := dtypeSize(t.Dtype)
	if size == 0 {
		return 0, fmt.Errorf("%w: unknown dtype %v", ErrTensor, t.Dtype)
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension in shape %v", ErrTensor, t.Shape)
		}
		if d != 0 && n > math.MaxInt32/d {
			return 0, fmt.Errorf("%w: shape %v is too large", ErrTensor, t.Shape)
		}
		n *= d
	}
	if int64(len(t.Data)) != n*int64(size) {
		return 0, fmt.Errorf("%w: shape %v of %v needs %d bytes, data has %d", ErrTensor, t.Shape, t.Dtype, n*int64(size), len(t.Data))
	}
	return int(n), nil
}

// UnpackF32 decodes a floating-point tensor (F32, F16 or BF16) into float32
// values, reusing dst's storage when it is large enough. want constrains the
// shape as in Elements.
func UnpackF32(t *pb.Tensor, dst []float32, want ...int64) ([]float32, error) {
	n, err := Elements(t, want...)
	if err != nil {
		return nil, err
	}
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	switch t.Dtype {
	case pb.DType_DTYPE_F32:
		if littleEndian && n > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*n), t.Data)
		} else {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
			}
		}
	case pb.DType_DTYPE_F16:
		for i := range dst {
			dst[i] = f16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case pb.DType_DTYPE_BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	default:
		return nil, fmt.Errorf("%w: dtype %v is not a floating-point type", ErrTensor, t.Dtype)
	}
	return dst, nil
}

func dtypeSize(d pb.DType) int {
	switch d {
	case pb.DType_DTYPE_F32, pb.DType_DTYPE_I32:
		return 4
	case pb.DType_DTYPE_F16, pb.DType_DTYPE_BF16:
		return 2
	case pb.DType_DTYPE_I8:
		return 1
	case pb.DType_DTYPE_I64:
		return 8
	}
	return 0
}

// f16ToF32 widens an IEEE half-precision value exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = mant · 2^-24.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// f32ToF16 rounds a float32 to the nearest half-precision value, ties to
// even.
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff { // infinity or NaN (NaN keeps a mantissa bit)
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		// Subnormal: shift the mantissa with its implicit bit into place.
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which rounds up to infinity correctly
	}
	return sign | uint16(r)
}

// PackF32Rows returns an F32 tensor [n, width] whose row i is row(i), which
// must hold width floats.
func PackF32Rows(n, width int, row func(i int) []float32) *pb.Tensor {
	data := make([]byte, 4*n*width)
	for i := range n {
		r := row(i)[:width]
		dst := data[4*i*width : 4*(i+1)*width]
		if littleEndian && width > 0 {
			copy(dst, unsafe.Slice((*byte)(unsafe.Pointer(&r[0])), 4*width))
			continue
		}
		for j, v := range r {
			binary.LittleEndian.PutUint32(dst[4*j:], math.Float32bits(v))
		}
	}
	return &pb.Tensor{Data: data, Shape: []int64{int64(n), int64(width)}, Dtype: pb.DType_DTYPE_F32}
}
