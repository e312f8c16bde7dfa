package tensor

import (
	"sync"
	"sync/atomic"
)

// Parallel splits [0, n) into at most workers contiguous ranges of nearly
// equal size and calls fn on each, concurrently, returning when all calls
// have returned. No goroutine outlives the call. With workers <= 1 or
// n <= 1 it calls fn(0, n) on the calling goroutine.
//
// The split depends on workers. Callers that need results independent of
// the worker count (every kernel of the engine does) must make fn's
// effect on each index independent of the range it arrives in: elementwise
// work, or work on fixed chunks (see ForEach).
func Parallel(workers, n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		lo, hi := w*n/workers, (w+1)*n/workers
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, n/workers)
	wg.Wait()
}

// ForEach calls fn(w, i) once for every i in [0, n), spreading the indices
// over at most workers goroutines that take the next index as they finish
// (dynamic scheduling, good for uneven items). w in [0, workers) identifies
// the goroutine, so fn can use per-worker scratch space. No goroutine
// outlives the call.
//
// Deterministic reductions: give each i a fixed piece of the work (a fixed
// chunk of the batch), write its partial result to a slot owned by i, and
// combine the slots in index order after ForEach returns. The result is
// then bit-identical for any worker count.
func ForEach(workers, n int, fn func(w, i int)) {
	if n <= 0 {
		return
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		for i := range n {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	run := func(w int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(w, i)
		}
	}
	wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		go func() {
			defer wg.Done()
			run(w)
		}()
	}
	run(0)
	wg.Wait()
}
