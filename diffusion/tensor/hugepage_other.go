//go:build !linux

package tensor

// makeFloats returns make([]float32, n) (see the Linux version, which asks
// for transparent huge pages).
func makeFloats(n int) []float32 { return make([]float32, n) }
