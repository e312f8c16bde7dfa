package autodiff

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// coreBenchBatch and coreBenchWorkers are the reference setting of the
// project's speed figures: CIFAR ResNet-18, batch 64, 2 threads.
const (
	coreBenchBatch   = 64
	coreBenchWorkers = 2
)

func coreBenchProgram(b *testing.B) *Program {
	b.Helper()
	m := coreResNet18(coreBenchBatch, 10, 1)
	p, err := Compile(m, [][]int{{coreBenchBatch, 3, 32, 32}}, &Options{Workers: coreBenchWorkers, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range p.Input(0).F32 {
		p.Input(0).F32[i] = float32(rng.NormFloat64())
	}
	return p
}

// corePeakRSS is the process's peak resident set size in MiB (VmHWM), or 0
// where /proc is not available.
func corePeakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// coreCPUSeconds is the user+system CPU time of the process so far. On a
// machine shared with other jobs, images per CPU-second measure the
// engine's efficiency independently of how much of the 2 cores it got.
func coreCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// coreReport reports images/s (wall clock), images per CPU-second and the
// peak RSS for n steps of batch images that took cpu CPU-seconds.
func coreReport(b *testing.B, cpu float64) {
	imgs := float64(coreBenchBatch) * float64(b.N)
	b.ReportMetric(imgs/b.Elapsed().Seconds(), "images/s")
	if cpu > 0 {
		b.ReportMetric(imgs/cpu, "images/CPU-s")
	}
	b.ReportMetric(corePeakRSS(), "peakRSS-MiB")
}

// BenchmarkResNet18 measures CIFAR ResNet-18 at batch 64 with 2 workers:
// "train" is one SGD step (training-mode forward, softmax cross-entropy,
// backward, w -= lr·g), "infer" one inference forward. It reports
// images/s, and peak RSS of the process (run one sub-benchmark alone to
// read the peak of that mode).
func BenchmarkResNet18(b *testing.B) {
	b.Run("train", func(b *testing.B) {
		p := coreBenchProgram(b)
		p.SetTraining(true)
		labels := make([]int, coreBenchBatch)
		for i := range labels {
			labels[i] = i % 10
		}
		var ws, gs [][]float32
		for _, name := range p.Params() {
			ws = append(ws, p.Value(name).F32)
			gs = append(gs, p.Grad(name).F32)
		}
		pass := gradPass(b, p, labels)
		step := func() {
			pass()
			for i, w := range ws {
				g := gs[i]
				for j := range w {
					w[j] -= 1e-3 * g[j]
				}
			}
		}
		step() // warm-up: first-touch page faults of every buffer
		cpu0 := coreCPUSeconds()
		for b.Loop() {
			step()
		}
		coreReport(b, coreCPUSeconds()-cpu0)
	})
	b.Run("infer", func(b *testing.B) {
		p := coreBenchProgram(b)
		if err := p.Forward(); err != nil {
			b.Fatal(err)
		}
		cpu0 := coreCPUSeconds()
		for b.Loop() {
			if err := p.Forward(); err != nil {
				b.Fatal(err)
			}
		}
		coreReport(b, coreCPUSeconds()-cpu0)
	})
}
