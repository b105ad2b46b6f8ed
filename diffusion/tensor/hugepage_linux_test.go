package tensor

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestMakeFloatsHugePages checks that makeFloats returns zeroed slices of
// the length asked for, and that a slice spanning whole 2 MiB pages has them
// advised for transparent huge pages: the "hg" flag of their mapping in
// /proc/self/smaps (whether the kernel then finds free huge pages depends on
// its memory, so that is not checked). It skips where the kernel has no THP.
func TestMakeFloatsHugePages(t *testing.T) {
	for _, n := range []int{0, 1, hugePageBytes/4 - 1, 2*hugePageBytes/4 + 3} {
		s := makeFloats(n)
		if len(s) != n {
			t.Fatalf("makeFloats(%d) has length %d", n, len(s))
		}
		for i, v := range s {
			if v != 0 {
				t.Fatalf("makeFloats(%d)[%d] = %v", n, i, v)
			}
		}
	}
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skipf("no transparent huge pages here: %v", err)
	}
	s := makeFloats(16 * hugePageBytes / 4) // 32 MiB
	// madvise splits the advised, 2 MiB-aligned span off as its own mapping.
	addr := (uint64(uintptr(unsafe.Pointer(&s[0]))) + hugePageBytes - 1) &^ (hugePageBytes - 1)
	flags, err := vmFlags(addr)
	if err != nil {
		t.Skipf("reading /proc/self/smaps: %v", err)
	}
	if !slices.Contains(flags, "hg") {
		t.Fatalf("the 32 MiB slice's mapping is not advised for huge pages: VmFlags %v", flags)
	}
}

// vmFlags returns the VmFlags of the /proc/self/smaps mapping holding addr.
func vmFlags(addr uint64) ([]string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && a <= addr && addr < b
			continue
		}
		if in && fields[0] == "VmFlags:" {
			return fields[1:], nil
		}
	}
	return nil, sc.Err()
}
