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
// (the hand-over of a core) and exits 2 as train does. With
// CSAM_FAKE_STOP set, a run writes a checkpoint (OUT.ckpt) and an epoch
// record and exits 2 at once; a run that finds a checkpoint logs what it
// resumes, and a finished run removes the checkpoint, as train does.
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
		fmt.Printf("%s: %s\n", name, fmt.Sprintf(format, a...)) // into the script's log of the model
	}
	say("start")
	if b, err := os.ReadFile(out + ".ckpt"); err == nil {
		say("resumes %s", b)
	}
	if os.Getenv("CSAM_FAKE_STOP") != "" {
		// Interrupted after one epoch: a checkpoint and its epoch record.
		os.WriteFile(out+".ckpt", []byte("step 391"), 0o644)
		os.WriteFile(out+".ckpt.epochs.jsonl", []byte(`{"epoch":1,"test_accuracy":0.5}`+"\n"+`{"epoch":2,"test_accuracy":-1}`+"\n"+
			`{"epoch":2,"test_accuracy":0.625}`+"\n"+`{"epoch":3,"test_accuracy":-1}`+"\n"), 0o644)
		say("interrupted")
		return 2
	}
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
	os.Remove(out + ".ckpt")
	os.Remove(out + ".ckpt.epochs.jsonl")
	say("done")
	return 0
}

// fakeSetup skips the test without sh; it returns the test binary (the
// fake csam-onnx) and a temporary folder.
func fakeSetup(t *testing.T) (self, dir string) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self, t.TempDir()
}

// TestTrainModelsHandsOverCores runs `JOBS=2 train_models.sh` on three
// models: the lanes take them one at a time, and when one lane finds no
// model left, the training still running (MobileNet-V2) is interrupted
// and resumed with two threads. ResNet-18, below its 90% target, is
// continued into a second run (--init, 10 epochs). A second run skips
// every finished model.
func TestTrainModelsHandsOverCores(t *testing.T) {
	self, dir := fakeSetup(t)
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

// TestTrainModelsStateOutlivesTheMachine: a training interrupted on one
// machine is saved into the state folder (`train_models.sh save`), a
// second machine (an empty OUT) resumes it from there, the save after it
// finished drops the checkpoint and keeps the model, and a third machine
// then finds the model finished. A save from an OUT that has not yet
// restored anything leaves the state alone. `status` reports the epochs
// so far (the last record of each) and then the finished accuracy.
func TestTrainModelsStateOutlivesTheMachine(t *testing.T) {
	self, dir := fakeSetup(t)
	log, state := filepath.Join(dir, "calls"), filepath.Join(dir, "state")
	const name = "cifar10_googlenet_w0.25"
	sh := func(wantOK bool, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("sh", append([]string{"train_models.sh"}, args...)...)
		cmd.Env = append(append(os.Environ(), "CSAM_FAKE_TRAIN="+log, "STATE="+state), env...)
		b, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("train_models.sh %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	calls := func() []string {
		t.Helper()
		b, _ := os.ReadFile(log)
		os.Remove(log)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	files := func(d string) []string {
		t.Helper()
		es, _ := os.ReadDir(d)
		var names []string
		for _, e := range es {
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
		return names
	}

	out1 := filepath.Join(dir, "machine1")
	sh(false, []string{"CSAM_FAKE_STOP=1"}, self, out1, name)
	if got, want := calls(), []string{name + " threads=0 start", name + " threads=0 interrupted"}; !slices.Equal(got, want) {
		t.Fatalf("machine 1: calls %q, want %q", got, want)
	}
	if got, want := sh(true, nil, "status", out1), name+": 3 epochs, test accuracy (%): 50.0 62.5 -\n"; got != want {
		t.Errorf("status on machine 1: %q, want %q", got, want)
	}
	sh(true, nil, "save", out1, state)
	saved := []string{name + ".log", name + ".onnx.ckpt", name + ".onnx.ckpt.epochs.jsonl"}
	if got := files(state); !slices.Equal(got, saved) {
		t.Fatalf("state after machine 1: %q, want %q", got, saved)
	}

	fresh := filepath.Join(dir, "fresh")
	if err := os.Mkdir(fresh, 0o755); err != nil {
		t.Fatal(err)
	}
	sh(true, nil, "save", fresh, state)
	if got := files(state); !slices.Equal(got, saved) {
		t.Fatalf("a save from a fresh OUT changed the state: %q, want %q", got, saved)
	}

	if err := os.WriteFile(filepath.Join(state, "README.md"), []byte("what this folder is\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved = append([]string{"README.md"}, saved...)

	out2 := filepath.Join(dir, "machine2")
	stdout := sh(true, nil, self, out2, name)
	if !strings.Contains(stdout, "restored "+filepath.Join(out2, name+".onnx.ckpt")) {
		t.Errorf("machine 2 does not say it restored the checkpoint:\n%s", stdout)
	}
	if got, want := calls(), []string{name + " threads=0 start", name + " threads=0 resumes step 391", name + " threads=0 done"}; !slices.Equal(got, want) {
		t.Fatalf("machine 2: calls %q, want %q", got, want)
	}
	stdout = sh(true, nil, "save", out2, state)
	if !strings.Contains(stdout, "removed "+filepath.Join(state, name+".onnx.ckpt")) {
		t.Errorf("the save after the training finished does not remove its checkpoint:\n%s", stdout)
	}
	if got, want := files(state), []string{"README.md", name + ".log", name + ".onnx", name + ".onnx.json"}; !slices.Equal(got, want) {
		t.Fatalf("state after machine 2: %q, want %q", got, want)
	}
	b, err := os.ReadFile(filepath.Join(state, name+".log"))
	if err != nil || !strings.Contains(string(b), name+": interrupted\n"+name+": start\n") {
		t.Errorf("the saved log is not the machines' log: %q, %v", b, err)
	}

	if _, err := os.Stat(filepath.Join(out2, "README.md")); err == nil {
		t.Errorf("the state folder's README was copied into OUT")
	}
	if got, want := sh(true, nil, "status", out2), name+": done, test accuracy 88.12% in onnxruntime\n"; got != want {
		t.Errorf("status on machine 2: %q, want %q", got, want)
	}

	out3 := filepath.Join(dir, "machine3")
	stdout = sh(true, nil, self, out3, name)
	if !strings.Contains(stdout, name+": done, skipped") {
		t.Errorf("machine 3 does not skip the finished model:\n%s", stdout)
	}
	if _, err := os.Stat(log); err == nil {
		t.Errorf("machine 3 trained again: %q", calls())
	}
}
