package tensor

import (
	"syscall"
	"unsafe"
)

// hugePageBytes is the size of an x86-64 (and arm64 4K-granule) transparent
// huge page.
const hugePageBytes = 2 << 20

// makeFloats returns make([]float32, n). When the slice spans at least one
// whole 2 MiB page, the pages inside it are advised as transparent huge
// pages (madvise MADV_HUGEPAGE) before anything touches them, so that the
// kernel backs the fresh memory with 2 MiB pages instead of faulting it in
// 4 KiB at a time. Linux's default THP mode ("madvise") only gives huge
// pages to memory advised so; the Go runtime does not advise its heap.
// Activations of a 512x512 VAE decode are hundreds of MB written once:
// their page faults, not the arithmetic, were the slowest part of the
// first pass (BENCHMARKS.md). The advice is a hint: an error is ignored.
func makeFloats(n int) []float32 {
	s := make([]float32, n)
	if 4*n < 2*hugePageBytes {
		return s
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	start := (p + hugePageBytes - 1) &^ (hugePageBytes - 1)
	end := (p + uintptr(4*n)) &^ (hugePageBytes - 1)
	if end > start {
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*n)
		_ = syscall.Madvise(b[start-p:end-p], syscall.MADV_HUGEPAGE)
	}
	return s
}
