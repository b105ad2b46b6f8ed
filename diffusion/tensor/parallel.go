package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// parallelFor splits [0, n) into at most GOMAXPROCS contiguous ranges and
// calls fn on each from its own goroutine, returning when all are done.
// Work under minWork items per goroutine is not split.
func parallelFor(n, minWork int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	workers := runtime.GOMAXPROCS(0)
	if minWork < 1 {
		minWork = 1
	}
	if w := n / minWork; w < workers {
		workers = w
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// eachTask runs every task t in [0, tasks) on up to GOMAXPROCS goroutines,
// which take the next task from a shared counter as they finish one (tasks
// of uneven cost balance themselves). newWorker is called once per
// goroutine and returns the function that runs a task, so each worker can
// own its scratch buffers.
func eachTask(tasks int, newWorker func() func(t int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), tasks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := newWorker()
			for t := int(next.Add(1) - 1); t < tasks; t = int(next.Add(1) - 1) {
				run(t)
			}
		}()
	}
	wg.Wait()
}

// eachTaskScratch is eachTask with a pooled scratch buffer of n floats
// (undefined contents) for each worker, handed to newWorker and returned to
// the pool when every task is done.
func eachTaskScratch(tasks, n int, newWorker func(scratch []float32) func(t int)) {
	var mu sync.Mutex
	var held []*[]float32
	eachTask(tasks, func() func(int) {
		buf := getScratch(n)
		mu.Lock()
		held = append(held, buf)
		mu.Unlock()
		return newWorker(*buf)
	})
	for _, buf := range held {
		putScratch(buf)
	}
}
