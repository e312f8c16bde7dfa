package autodiff

import (
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csam-onnx/csam-onnx/models"
)

var (
	opTimesArch    = flag.String("optimes.arch", "", "TestOpTimes: reference architecture to time and print (resnet18, mobilenetv2, googlenet, ...); empty: a small check of the tool on ResNet-8")
	opTimesWidth   = flag.Float64("optimes.width", 1, "TestOpTimes: width multiplier")
	opTimesWorkers = flag.Int("optimes.workers", 1, "TestOpTimes: engine workers")
	opTimesBatch   = flag.Int("optimes.batch", 128, "TestOpTimes: batch size")
)

// TestOpTimes is a measuring tool: it times every step of a reference
// model's training pass (forward, and backward with its gradient
// clearing) by op type, direction and shapes over three passes after a
// warm-up, and prints them, largest first, with each one's share. A
// profile says which kernels are hot; this says which layers, e.g.
//
//	go test ./autodiff -run TestOpTimes -v -args -optimes.arch=mobilenetv2 -optimes.width=0.5
//
// Without -optimes.arch it times a small ResNet-8 and checks the tool
// itself: every step of the pass is timed and the shares add up.
func TestOpTimes(t *testing.T) {
	arch, width, batch := *opTimesArch, *opTimesWidth, *opTimesBatch
	if arch == "" {
		arch, width, batch = "resnet8", 0.25, 8
	}
	p, labels := compileForTraining(t, models.Config{Arch: arch, Width: width, Seed: 1}, batch, *opTimesWorkers, false)
	key := func(st *step, dir string) string {
		k := fmt.Sprintf("%-20s %s out %v", st.node.OpType, dir, st.outT[0].Shape)
		if len(st.inT) > 1 && st.inT[1] != nil {
			k += fmt.Sprintf(" w %v", st.inT[1].Shape)
		}
		return k
	}
	const passes = 3
	times := map[string]time.Duration{}
	var total time.Duration
	timed := 0 // steps timed in the last pass
	for pass := range passes + 1 {
		timed = 0
		record := func(k string, d time.Duration) {
			timed++
			if pass > 0 {
				times[k] += d
				total += d
			}
		}
		for _, st := range p.steps {
			t0 := time.Now()
			if err := st.kernel.Forward(&p.ctx, st.inT, st.outT); err != nil {
				t.Fatal(err)
			}
			record(key(st, "F"), time.Since(t0))
		}
		if _, _, err := SoftmaxCrossEntropy(p.Output(0), labels, 0, p.OutputGrad(0)); err != nil {
			t.Fatal(err)
		}
		for _, g := range p.zeroGrads {
			clear(g)
		}
		for i := len(p.steps) - 1; i >= 0; i-- {
			st := p.steps[i]
			if !st.needGrad {
				continue
			}
			t0 := time.Now()
			if err := p.backwardStep(st); err != nil {
				t.Fatal(err)
			}
			record(key(st, "B"), time.Since(t0))
		}
	}
	keys := slices.SortedFunc(maps.Keys(times), func(a, b string) int {
		if c := cmp.Compare(times[b], times[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%s width %g, batch %d, %d worker(s): %.1f ms per training pass (forward + backward, no update)\n",
		arch, width, batch, *opTimesWorkers, float64(total.Microseconds())/1e3/passes)
	var share float64
	for _, k := range keys {
		share += 100 * float64(times[k]) / float64(total)
		fmt.Fprintf(&b, "%8.2f ms %5.1f%%  %s\n", float64(times[k].Microseconds())/1e3/passes, 100*float64(times[k])/float64(total), k)
	}
	if *opTimesArch != "" {
		t.Log("\n" + b.String())
		return
	}
	backward := 0
	for _, st := range p.steps {
		if st.needGrad {
			backward++
		}
	}
	if timed != len(p.steps)+backward {
		t.Errorf("timed %d steps in a pass, want %d forward + %d backward", timed, len(p.steps), backward)
	}
	if total <= 0 || math.Abs(share-100) > 1e-6 {
		t.Errorf("total %v, shares add up to %.9f%%, want 100%%:\n%s", total, share, b.String())
	}
}
