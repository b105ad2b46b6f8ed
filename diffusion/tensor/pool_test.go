package tensor

import (
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// resetPool empties the activation pool so a test sees only its own buffers.
func resetPool(t *testing.T) {
	t.Helper()
	pool.mu.Lock()
	pool.free, pool.floats = nil, 0
	pool.mu.Unlock()
	t.Cleanup(func() {
		pool.mu.Lock()
		pool.free, pool.floats = nil, 0
		pool.mu.Unlock()
	})
}

func first(t *Tensor) unsafe.Pointer { return unsafe.Pointer(&t.Data[0]) }

func TestReleaseReuse(t *testing.T) {
	resetPool(t)
	n := 4 * minPooledLen
	a := Full(3, n)
	pa := first(a)
	Release(a)
	if a.Data != nil {
		t.Fatal("a released tensor keeps its data")
	}
	b := New(n - n/16) // fits in a's buffer, wasting at most 1/8
	if first(b) != pa {
		t.Fatal("New did not reuse the released buffer")
	}
	if slices.ContainsFunc(b.Data, func(v float32) bool { return v != 0 }) {
		t.Fatal("a recycled New tensor is not zero")
	}
	Release(b) // back at its full length
	c := newUninit(n)
	if first(c) != pa || len(c.Data) != n {
		t.Fatalf("the buffer lent shorter did not come back whole (len %d)", len(c.Data))
	}
	if d := New(n / 2); first(d) == first(c) {
		t.Fatal("a buffer in use was lent twice")
	}
	Release(c)
	if e := New(n / 4 * 3); first(e) == pa {
		t.Fatal("a request much smaller than a pooled buffer took it")
	}
}

// TestPoolDropsReferences checks that buffers the pool no longer holds are
// left to the garbage collector: one lent out shorter than it is and then
// dropped without Release, and one trimmed beyond the limit. (The pool once
// kept a map of lent buffers to restore their length, and stale slots in
// its list; training leaked a VAE encoder's activations through them, about
// 1 MB per step.)
func TestPoolDropsReferences(t *testing.T) {
	n := 4 * minPooledLen
	for _, c := range []struct {
		name string
		drop func(a *Tensor)
	}{
		{"lent shorter", func(a *Tensor) {
			Release(a)
			if b := newUninit(n - n/16); len(b.Data) != n-n/16 || cap(b.Data) != n {
				t.Fatalf("lent len %d cap %d, want %d and %d", len(b.Data), cap(b.Data), n-n/16, n)
			}
		}},
		{"trimmed", func(a *Tensor) {
			defer PoolLimit(PoolLimit(n))
			Release(a, newUninit(n)) // the second pushes a out
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			resetPool(t)
			a := newUninit(n)
			freed := make(chan struct{})
			runtime.AddCleanup(&a.Data[0], func(ch chan struct{}) { close(ch) }, freed)
			c.drop(a)
			for range 20 {
				runtime.GC()
				select {
				case <-freed:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			t.Fatal("the buffer was never freed")
		})
	}
}

func TestReleaseIgnores(t *testing.T) {
	resetPool(t)
	small := New(minPooledLen - 1)
	Release(small, nil)
	if small.Data == nil {
		t.Error("a small tensor was released")
	}
	half := FromHalf(make([]uint16, minPooledLen), F16, minPooledLen)
	Release(half)
	tp := NewTape()
	w := New(minPooledLen)
	tp.Watch(w)
	Release(w)
	if w.Data == nil {
		t.Error("a tracked tensor was released")
	}
	// While a tape holds recorded steps, nothing is released: the steps may
	// have saved the tensor.
	y := Scale(w.Clone(), 2)
	plain := New(minPooledLen)
	Release(plain)
	if plain.Data == nil {
		t.Error("released while a tape holds recorded steps")
	}
	tp.Backward(Sum(y), nil)
	Release(plain)
	if plain.Data != nil {
		t.Error("not released after Backward")
	}
	if pool.floats != minPooledLen {
		t.Errorf("pool holds %d floats, want %d", pool.floats, minPooledLen)
	}
}

func TestReplace(t *testing.T) {
	resetPool(t)
	a := New(2, minPooledLen)
	view := a.Reshape(minPooledLen, 2)
	if got := Replace(a, view); got != view || a.Data == nil {
		t.Fatal("Replace released storage its result shares")
	}
	b := Replace(a, New(minPooledLen))
	if a.Data != nil || b.Data == nil {
		t.Fatal("Replace did not release the old tensor")
	}
}

func TestPoolBound(t *testing.T) {
	resetPool(t)
	n := DefaultPoolLimit / 3
	for range 4 {
		Release(&Tensor{Shape: []int{n}, Data: make([]float32, n)})
	}
	if pool.floats > DefaultPoolLimit || len(pool.free) != 3 {
		t.Fatalf("pool holds %d floats in %d buffers, bound %d", pool.floats, len(pool.free), DefaultPoolLimit)
	}
	old := PoolLimit(n) // lowering the limit trims the pool at once
	if old != DefaultPoolLimit || pool.floats != n || len(pool.free) != 1 {
		t.Fatalf("after PoolLimit(%d): %d floats in %d buffers (previous limit %d)", n, pool.floats, len(pool.free), old)
	}
	PoolLimit(old)
}
