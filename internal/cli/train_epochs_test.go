package cli

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/csam-onnx/csam-onnx/report"
)

// TestEvaluateMissingEpoch: an epoch recorded unevaluated (a run
// interrupted during its evaluation) gets its test accuracy when the run
// resumes at that epoch's boundary; evaluated or absent epochs, and a
// failed evaluation, leave the record as it is.
func TestEvaluateMissingEpoch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt.epochs.jsonl")
	appendEpoch(path, report.EpochPoint{Epoch: 1, TrainLoss: 1.5, TrainAccuracy: 0.4, TestAccuracy: 0.5})
	appendEpoch(path, report.EpochPoint{Epoch: 2, TrainLoss: 1.1, TrainAccuracy: 0.6, TestAccuracy: -1})
	calls := 0
	eval := func(acc float64, err error) func() (float64, error) {
		return func() (float64, error) { calls++; return acc, err }
	}
	evaluateMissingEpoch(path, 1, eval(0.9, nil)) // evaluated already
	evaluateMissingEpoch(path, 3, eval(0.9, nil)) // not recorded
	if calls != 0 {
		t.Fatalf("evaluated %d times for epochs that need no evaluation", calls)
	}
	evaluateMissingEpoch(path, 2, eval(0, errors.New("interrupted again")))
	if got := readEpochs(path); len(got) != 2 || got[1].TestAccuracy != -1 {
		t.Fatalf("after a failed evaluation the records are %+v, want epoch 2 unevaluated", got)
	}
	evaluateMissingEpoch(path, 2, eval(0.7, nil))
	got := readEpochs(path)
	want := []report.EpochPoint{{Epoch: 1, TrainLoss: 1.5, TrainAccuracy: 0.4, TestAccuracy: 0.5}, {Epoch: 2, TrainLoss: 1.1, TrainAccuracy: 0.6, TestAccuracy: 0.7}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("records %+v, want %+v", got, want)
	}
}
