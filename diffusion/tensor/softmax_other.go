//go:build !amd64 || purego

package tensor

// softmaxKernels is the implementation softmaxRow uses.
var softmaxKernels = softmaxGo

// softmaxImpls lists the implementations this CPU can run (the tests check
// each one).
func softmaxImpls() []softmaxImpl { return []softmaxImpl{softmaxGo} }
