// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the packed little-endian tensor data. carryon
// stores head and forecaster weights this way.
//
// The reader checks everything before it trusts it: the header length
// against the file, the JSON (no duplicate names, only known fields), each
// dtype and shape against its byte range, and that the ranges tile the data
// section exactly, with no gaps or overlaps. A damaged or hostile file is an
// error that says what is wrong, never a panic or a huge allocation. F32,
// F16 and BF16 tensors convert to float32; other dtypes are read as raw
// bytes.
package safetensors
