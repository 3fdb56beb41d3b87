// Package carryonv1 holds the gRPC services between the carryon core and its
// plugins: Head (carry-on heads) and Forecaster (time-series models), and the
// messages they exchange. Tensors travel as packed little-endian bytes with a
// shape and an element type.
//
// Everything but this file is generated from the .proto files beside it by
// `make proto`; plugin authors use the sdk package instead of these types.
package carryonv1
