//go:build !amd64 || purego

package tensor

// sgemmKernels lists the kernels this CPU can run, fastest first.
func sgemmKernels() []*kernel { return []*kernel{genericKernel} }

func init() { sgemmKernel = genericKernel }
