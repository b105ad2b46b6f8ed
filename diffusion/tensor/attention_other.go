//go:build !amd64 || purego

package tensor

// attnRows6 is nil: without a vector kernel the GEMM path serves every
// shape.
var attnRows6 rowsKernel
