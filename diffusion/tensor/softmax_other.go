//go:build !amd64 || purego

package tensor

// softmaxKernels is the implementation softmaxRow uses.
var softmaxKernels = softmaxGo

// softmaxImpls lists the implementations this CPU can run (the tests check
// each one).
func softmaxImpls() []softmaxImpl { return []softmaxImpl{softmaxGo} }

// siluKernels is the SiLU implementation in use.
var siluKernels = siluGo

// siluImpls lists the SiLU implementations (the tests check each one).
func siluImpls() []siluImpl { return []siluImpl{siluGo} }
