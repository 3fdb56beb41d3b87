package gguf

import (
	"fmt"
	"math"
)

// ValueType is the type tag of a metadata value in a GGUF file.
type ValueType uint32

// The metadata value types of the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

// Metadata is the ordered set of key/value pairs of a GGUF file. Values are
// held as Go values: uint8 … uint64, int8 … int64, float32, float64, bool,
// string, or a slice of one of those (nested arrays are []any).
// The zero value is an empty set ready to use.
type Metadata struct {
	keys   []string
	values map[string]any
}

// Keys returns the keys in file order.
func (m *Metadata) Keys() []string { return m.keys }

// Len returns the number of pairs.
func (m *Metadata) Len() int { return len(m.keys) }

// Value returns the value stored under key.
func (m *Metadata) Value(key string) (any, bool) {
	v, ok := m.values[key]
	return v, ok
}

// Set stores v under key, keeping the key's position if it already exists.
// v must be one of the value kinds listed on Metadata; int, uint and
// []int are accepted as int32, uint32 and []int32 for convenience.
func (m *Metadata) Set(key string, v any) {
	switch x := v.(type) {
	case int:
		v = int32(x)
	case uint:
		v = uint32(x)
	case []int:
		s := make([]int32, len(x))
		for i, e := range x {
			s[i] = int32(e)
		}
		v = s
	}
	if m.values == nil {
		m.values = make(map[string]any)
	}
	if _, ok := m.values[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.values[key] = v
}

// String returns a string value.
func (m *Metadata) String(key string) (string, bool) {
	s, ok := m.values[key].(string)
	return s, ok
}

// Bool returns a bool value.
func (m *Metadata) Bool(key string) (bool, bool) {
	b, ok := m.values[key].(bool)
	return b, ok
}

// Int returns an integer value of any integer type that fits in an int64.
func (m *Metadata) Int(key string) (int64, bool) {
	return toInt(m.values[key])
}

// Uint returns a non-negative integer value of any integer type.
func (m *Metadata) Uint(key string) (uint64, bool) {
	if u, ok := m.values[key].(uint64); ok {
		return u, true
	}
	i, ok := toInt(m.values[key])
	if !ok || i < 0 {
		return 0, false
	}
	return uint64(i), true
}

// Float returns a value of any numeric type as a float64.
func (m *Metadata) Float(key string) (float64, bool) {
	switch x := m.values[key].(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case uint64:
		return float64(x), true
	}
	i, ok := toInt(m.values[key])
	return float64(i), ok
}

// Strings returns a string array.
func (m *Metadata) Strings(key string) ([]string, bool) {
	s, ok := m.values[key].([]string)
	return s, ok
}

// Float32s returns a float array (float32 or float64 elements) as float32s.
func (m *Metadata) Float32s(key string) ([]float32, bool) {
	switch x := m.values[key].(type) {
	case []float32:
		return x, true
	case []float64:
		out := make([]float32, len(x))
		for i, e := range x {
			out[i] = float32(e)
		}
		return out, true
	}
	return nil, false
}

// Int32s returns an integer array of any integer element type whose values
// all fit in an int32.
func (m *Metadata) Int32s(key string) ([]int32, bool) {
	switch x := m.values[key].(type) {
	case []int32:
		return x, true
	case []uint8:
		return convertInts(x)
	case []int8:
		return convertInts(x)
	case []uint16:
		return convertInts(x)
	case []int16:
		return convertInts(x)
	case []uint32:
		return convertInts(x)
	case []uint64:
		return convertInts(x)
	case []int64:
		return convertInts(x)
	}
	return nil, false
}

func convertInts[T uint8 | int8 | uint16 | int16 | uint32 | uint64 | int64](x []T) ([]int32, bool) {
	out := make([]int32, len(x))
	for i, e := range x {
		if int64(e) < math.MinInt32 || int64(e) > math.MaxInt32 || (e > 0 && uint64(e) > math.MaxInt32) {
			return nil, false
		}
		out[i] = int32(e)
	}
	return out, true
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}
