//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package safetensors

import (
	"fmt"
	"math"
	"os"
	"syscall"
)

// Open maps the safetensors file at path read-only into memory and validates
// its whole header. Tensor data is only touched (paged in) when read. The
// file must not be truncated while it is open.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close() // the mapping stays valid after the descriptor is closed
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors: %s: not a regular file", path)
	}
	size := st.Size()
	if size < 8 {
		_, err := readPrefix(nil, size)
		return nil, withPath(err, path)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("safetensors: %s: %d bytes is too large to map", path, size)
	}
	mem, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: path, Err: err}
	}
	f, err := Parse(mem)
	if err != nil {
		syscall.Munmap(mem)
		return nil, withPath(err, path)
	}
	f.path = path
	f.close = func() error { return syscall.Munmap(mem) }
	return f, nil
}
