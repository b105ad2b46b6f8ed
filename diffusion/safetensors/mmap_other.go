//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package safetensors

// Open opens the safetensors file at path and validates its whole header.
// On this system tensors are read from the file with ReadAt when asked for.
func Open(path string) (*File, error) {
	return openReaderAt(path)
}
