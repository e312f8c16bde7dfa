// Package scripts_test tests the shell scripts of this folder that drive
// long jobs, with this test binary standing in for csam-onnx.
package scripts_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The fake csam-onnx: with CSAM_FAKE_TRAIN set, the test binary is called
// by train_models.sh as `BIN --threads T -q train ... -o OUT` and writes
// OUT and OUT.json after a delay that depends on the model, logging what
// it does to $CSAM_FAKE_TRAIN; OUT.json holds a test accuracy below
// issue 4's 90% for the first ResNet-18 w0.5 run and above every target
// for the others. The MobileNet-V2 run at one thread waits for SIGINT
// (the hand-over of a core) and exits 2 as train does.
func TestMain(m *testing.M) {
	if log := os.Getenv("CSAM_FAKE_TRAIN"); log != "" {
		os.Exit(fakeTrain(log, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeTrain(log string, args []string) int {
	ints := make(chan os.Signal, 1)
	signal.Notify(ints, os.Interrupt)
	threads, out := args[1], args[len(args)-1]
	name := strings.TrimSuffix(filepath.Base(out), ".onnx")
	say := func(format string, a ...any) {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s threads=%s %s\n", name, threads, fmt.Sprintf(format, a...))
			f.Close()
		}
	}
	say("start")
	wait := 0 * time.Second
	switch {
	case strings.Contains(name, "googlenet"):
		wait = 3 * time.Second
	case strings.Contains(name, "mobilenetv2") && threads == "1":
		wait = 30 * time.Second // until interrupted
	}
	select {
	case <-ints:
		say("interrupted")
		return 2
	case <-time.After(wait):
	}
	acc := 0.8812
	if name == "cifar10_resnet18_w0.5" {
		acc = 0.8912
	}
	report := fmt.Sprintf("{\n  \"wall_seconds\": 1,\n  \"test_accuracy_onnxruntime\": %g,\n  \"onnxruntime_version\": \"1.24.3\"\n}\n", acc)
	for f, b := range map[string]string{out: "", out + ".json": report} {
		if err := os.WriteFile(f, []byte(b), 0o644); err != nil {
			say("%v", err)
			return 1
		}
	}
	say("done")
	return 0
}

// TestTrainModelsHandsOverCores runs `JOBS=2 train_models.sh` on three
// models: the lanes take them one at a time, and when one lane finds no
// model left, the training still running (MobileNet-V2) is interrupted
// and resumed with two threads. ResNet-18, below its 90% target, is
// continued into a second run (--init, 10 epochs). A second run skips
// every finished model.
func TestTrainModelsHandsOverCores(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, out := filepath.Join(dir, "calls"), filepath.Join(dir, "out")
	models := []string{"cifar10_resnet18_w0.5", "cifar10_googlenet_w0.25", "cifar10_mobilenetv2_w0.5"}
	run := func() string {
		cmd := exec.Command("sh", append([]string{"train_models.sh", self, out}, models...)...)
		cmd.Env = append(os.Environ(), "JOBS=2", "CSAM_FAKE_TRAIN="+log)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("train_models.sh: %v\n%s", err, b)
		}
		return string(b)
	}
	stdout := run()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(calls)
	want := []string{
		"cifar10_googlenet_w0.25 threads=1 done",
		"cifar10_googlenet_w0.25 threads=1 start",
		"cifar10_mobilenetv2_w0.5 threads=1 interrupted",
		"cifar10_mobilenetv2_w0.5 threads=1 start",
		"cifar10_mobilenetv2_w0.5 threads=2 done",
		"cifar10_mobilenetv2_w0.5 threads=2 start",
		"cifar10_resnet18_w0.5 threads=1 done",
		"cifar10_resnet18_w0.5 threads=1 start",
		"cifar10_resnet18_w0.5.ft threads=1 done",
		"cifar10_resnet18_w0.5.ft threads=1 start",
	}
	if !slices.Equal(calls, want) {
		t.Errorf("calls of the trainer (sorted):\n%s\nwant:\n%s\nscript output:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"), stdout)
	}
	if want := "cifar10_resnet18_w0.5: test accuracy 0.8912 is below 0.90: continued for 10 epochs"; !strings.Contains(stdout, want) {
		t.Errorf("the script does not say %q:\n%s", want, stdout)
	}
	if !strings.Contains(stdout, "cifar10_mobilenetv2_w0.5: continues with 2 threads") {
		t.Errorf("the script does not say that MobileNet-V2 continues with 2 threads:\n%s", stdout)
	}
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	stdout = run()
	if _, err := os.Stat(log); err == nil {
		t.Errorf("a second run trained again:\n%s", stdout)
	}
	for _, m := range append(models, "cifar10_resnet18_w0.5.ft") {
		if !strings.Contains(stdout, m+": done, skipped") {
			t.Errorf("second run does not skip %s:\n%s", m, stdout)
		}
	}
}
