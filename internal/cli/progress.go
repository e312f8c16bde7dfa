package cli

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/csam-onnx/csam-onnx/finetune"
)

// progress draws a bar with the running loss, accuracy and throughput on
// stderr, only when stderr is a terminal and -q is not given.
type progress struct {
	bar     *progressbar.ProgressBar
	start   time.Time
	samples int
	loss    float64
	correct int
	count   int
}

func newProgress(ios *IOStreams, g *GlobalOptions, what string, total int) *progress {
	p := &progress{start: time.Now()}
	if !ios.ErrTTY || (g != nil && g.Quiet) {
		return p
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(ios.ErrOut),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return p
}

// step records one optimization step.
func (p *progress) step(it finetune.Iter, st finetune.StepStats) {
	p.samples += st.Count
	p.loss += st.Loss * float64(st.Count)
	p.correct += st.Correct
	p.count += st.Count
	if p.bar == nil {
		return
	}
	desc := fmt.Sprintf("epoch %d loss %.3f acc %.1f%% %.0f img/s", it.Epoch+1, p.loss/float64(max(p.count, 1)),
		100*float64(p.correct)/float64(max(p.count, 1)), float64(p.samples)/time.Since(p.start).Seconds())
	if kp, ok := st.Extra["flips_kept_to_pruned"]; ok {
		desc += fmt.Sprintf(" flips %.0f/%.0f", kp, st.Extra["flips_pruned_to_kept"])
	}
	p.bar.Describe(desc)
	p.bar.Set(it.Global + 1)
}

// clear resets the running averages (at an epoch end) and clears the bar
// line so other output starts on a clean line.
func (p *progress) clear() {
	p.loss, p.correct, p.count = 0, 0, 0
	if p.bar != nil {
		p.bar.Clear()
	}
}

func newPCG(seed uint64) *rand.PCG { return rand.NewPCG(seed, 0x7a11) }
