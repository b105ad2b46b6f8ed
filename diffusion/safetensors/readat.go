package safetensors

import (
	"fmt"
	"os"
)

// openReaderAt opens path as a File that reads tensors with ReadAt, closing
// the file on Close. Open uses it where memory mapping is not available;
// it is always compiled so that tests cover it everywhere.
func openReaderAt(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fd.Stat()
	if err != nil {
		fd.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		fd.Close()
		return nil, fmt.Errorf("safetensors: %s: not a regular file", path)
	}
	f, err := NewReader(fd, st.Size())
	if err != nil {
		fd.Close()
		return nil, withPath(err, path)
	}
	f.path = path
	f.close = fd.Close
	return f, nil
}
