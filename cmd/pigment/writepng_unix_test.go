//go:build unix

package main

import (
	"image"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWritePNGMode checks that generated images get 0666 less the umask,
// as any file the user creates, not CreateTemp's 0600, and that no
// temporary file is left behind.
func TestWritePNGMode(t *testing.T) {
	mask := syscall.Umask(0o022)
	syscall.Umask(mask)
	dir := t.TempDir()
	path := filepath.Join(dir, "out.png")
	if err := writePNG(path, image.NewRGBA(image.Rect(0, 0, 4, 4)), "test"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.FileMode(0o666 &^ mask); st.Mode().Perm() != want {
		t.Errorf("mode %v, want %v (umask %03o)", st.Mode().Perm(), want, mask)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in the folder, want only out.png", len(ents))
	}
}
