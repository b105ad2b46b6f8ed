package tensor

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Activation storage is recycled: model code hands an intermediate tensor
// it is done with to Release, and the next New of the same size takes that
// storage instead of fresh memory. A 512x512 VAE decode allocates gigabytes
// of activations; fresh memory costs a page fault per 4 KiB page on its first
// write and the runtime's zeroing of reused spans, which together took more
// time than the decoder's element-wise work. Recycled storage is resident:
// New clears it in parallel, and ops that overwrite every element of their
// output (newUninit) skip even that.
//
// Only buffers of at least minPooledLen floats are kept, up to the pool
// limit in all (the oldest are dropped to the garbage collector); a request
// takes the smallest pooled buffer at most 1/8 larger than it.
//
// The limit trades speed for peak memory. The default, 64 MiB, keeps a
// whole 512x512 SD 1.5 generation with fp16 weights under 3.8 GB (3.77 GB
// measured over 20 steps; 4.76 GB with a 1 GiB limit throughout); the VAE
// decoder, whose activations are hundreds of megabytes each and which runs
// once per image, raises it for its own pass (PoolLimit).

const minPooledLen = 1 << 16 // 256 KiB

// DefaultPoolLimit is the pool limit in floats (64 MiB).
const DefaultPoolLimit = 1 << 24

var poolLimit atomic.Int64

func init() { poolLimit.Store(DefaultPoolLimit) }

// PoolLimit sets the most floats the activation pool keeps and returns
// the previous limit, so a phase can raise it and restore it after:
// defer tensor.PoolLimit(tensor.PoolLimit(n)).
func PoolLimit(floats int) int {
	old := int(poolLimit.Swap(int64(floats)))
	pool.mu.Lock()
	trim()
	pool.mu.Unlock()
	return old
}

// trim drops the oldest buffers beyond the limit. pool.mu must be held.
func trim() {
	for pool.floats > int(poolLimit.Load()) {
		pool.floats -= len(pool.free[0])
		pool.free = slices.Delete(pool.free, 0, 1) // clears the vacated slot: no hidden reference
	}
}

var pool struct {
	mu     sync.Mutex
	free   [][]float32 // pooled buffers, oldest first
	floats int         // their total length
}

// pendingSteps counts recorded backward steps not yet run or reset on any
// tape: while there are some, activations may be saved for backward, and
// Release does nothing.
var pendingSteps atomic.Int64

// Release gives the storage of each tensor back for reuse and leaves the
// tensor empty (Data nil, so a later use fails loudly instead of reading
// another tensor's values). Call it only on a tensor that nothing else
// refers to: not a view of another, not a model weight, not an input the
// caller still holds (the storage taken is Data up to its capacity, so a
// view would hand out its parent's memory). It does nothing for nil,
// half-precision and small tensors, for tracked tensors, and while a tape
// holds recorded steps (training keeps activations for the backward pass).
func Release(ts ...*Tensor) {
	if pendingSteps.Load() > 0 {
		return
	}
	for _, t := range ts {
		if t == nil || t.ag != nil || t.Half != nil || len(t.Data) < minPooledLen {
			continue
		}
		put(t.Data)
		t.Data = nil
	}
}

func put(b []float32) {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	b = b[:cap(b)] // a pooled buffer lent out shorter comes back whole
	pool.free = append(pool.free, b[:len(b):len(b)])
	pool.floats += len(b)
	trim()
}

// get returns n floats with undefined contents from the smallest pooled
// buffer that holds them without wasting more than half of it, or nil.
func get(n int) []float32 {
	if n < minPooledLen {
		return nil
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	best := -1
	for i, b := range pool.free {
		if len(b) >= n && len(b) <= n+n/8 && (best < 0 || len(b) < len(pool.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	b := pool.free[best]
	pool.free = slices.Delete(pool.free, best, best+1)
	pool.floats -= len(b)
	return b[:n] // its capacity keeps the full length for put
}

// newUninit returns a tensor of the given shape whose contents are
// undefined, for an op that overwrites every element.
func newUninit(shape ...int) *Tensor {
	n := numel(shape)
	if b := get(n); b != nil {
		return &Tensor{Shape: append([]int(nil), shape...), Data: b}
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: makeFloats(n)}
}

// Replace releases old (see Release) unless next shares its storage, and
// returns next: for a chain h = Replace(h, block.Forward(h)) over
// activations the caller owns.
func Replace(old, next *Tensor) *Tensor {
	if old != nil && next != nil && !overlap(old.Data, next.Data) {
		Release(old)
	}
	return next
}

// overlap reports whether a and b share any element.
func overlap(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+uintptr(4*len(b)) && b0 < a0+uintptr(4*len(a))
}

// DrainPool drops every pooled buffer, leaving them to the garbage
// collector: between phases whose activations differ in size (the UNet's
// denoising loop, then the VAE decoder) it keeps the pool from adding the
// first phase's buffers to the second phase's peak memory.
func DrainPool() {
	pool.mu.Lock()
	pool.free, pool.floats = nil, 0
	pool.mu.Unlock()
}
