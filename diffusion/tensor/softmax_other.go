//go:build !amd64 || purego

package tensor

// softmaxKernels is the implementation softmaxRow uses.
var softmaxKernels = softmaxGo

// softmaxImpls lists the implementations this CPU can run (the tests check
// each one).
func softmaxImpls() []softmaxImpl { return []softmaxImpl{softmaxGo} }

// actKernels is the activation implementation in use.
var actKernels = actGo

// actImpls lists the activation implementations (the tests check each one).
func actImpls() []actImpl { return []actImpl{actGo} }
