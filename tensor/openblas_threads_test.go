package tensor

import (
	"syscall"
	"testing"
	"time"
)

func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestOpenBLASThreadsDoNotSpin: after GEMM calls the process stays idle.
// A threaded OpenBLAS keeps the worker threads it started at load time
// spinning in sched_yield for a while after each call even when every
// call runs on one thread (measured: 77 ms of CPU in the second after ten
// calls; with the pool stopped at init, 0.2 ms). During training they took
// up to 17% of the CPU samples of a step from the engine's own workers.
func TestOpenBLASThreadsDoNotSpin(t *testing.T) {
	if GEMMBackend() != "openblas" {
		t.Skip("GEMM backend is", GEMMBackend())
	}
	a := make([]float32, 256*256)
	c := make([]float32, 256*256)
	for range 10 {
		Sgemm(false, false, 256, 256, 256, 1, a, 256, a, 256, 0, c, 256)
	}
	c0 := processCPU(t)
	time.Sleep(300 * time.Millisecond)
	if used := processCPU(t) - c0; used > 20*time.Millisecond {
		t.Errorf("the process used %v of CPU while idle for 300 ms after GEMM calls: OpenBLAS threads are spinning (%s)", used, OpenBLASConfig())
	}
}
