//go:build !amd64 || purego

package tensor

// attnRows6 is nil: without a vector kernel the GEMM path serves every
// shape.
var attnRows6 rowsKernel

// winoImpls lists the Winograd transforms: only the scalar ones, which
// Conv2d does not use (they cost about what the products save).
func winoImpls() []winoImpl { return []winoImpl{winoGo} }
