package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
)

// testIO returns streams writing to buffers; stderr is not a terminal, so
// no progress is printed.
func testIO() (*IOStreams, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, &out, &errOut
}

// execute runs the command tree with args, as main does, and returns the
// error and the exit status main would use.
func execute(t *testing.T, args ...string) (stdout, stderr string, err error, code int) {
	t.Helper()
	ios, out, errOut := testIO()
	cmd := NewCmdRoot(ios)
	cmd.SetArgs(args)
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("PANIC: %v", r)
			}
		}()
		err = cmd.ExecuteContext(context.Background())
	}()
	if err != nil && strings.HasPrefix(err.Error(), "PANIC: ") {
		t.Fatalf("csam-onnx %s panicked: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), err, ExitCode(err)
}

func TestCheckFlags(t *testing.T) {
	tests := []struct {
		args   []string
		want   CheckOptions
		global GlobalOptions
	}{
		{
			args:   []string{"m.onnx"},
			want:   CheckOptions{Model: "m.onnx", Batch: 1, ATol: DefaultCheckATol},
			global: GlobalOptions{Seed: 1},
		},
		{
			args:   []string{"m.onnx", "--input", "a.pb", "--input", "b.pb", "--batch", "4", "--seed", "7", "--atol", "1e-3", "--threads", "2", "-q", "--ort-lib", "/x/lib.so"},
			want:   CheckOptions{Model: "m.onnx", Inputs: []string{"a.pb", "b.pb"}, Batch: 4, ATol: 1e-3},
			global: GlobalOptions{Seed: 7, Threads: 2, Quiet: true, ORTLib: "/x/lib.so"},
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			ios, _, _ := testIO()
			var got *CheckOptions
			root := newCmdRoot(ios, runners{check: func(_ context.Context, o *CheckOptions) error { got = o; return nil }})
			root.SetArgs(append([]string{"check"}, tt.args...))
			if err := root.Execute(); err != nil {
				t.Fatalf("check %v: %v", tt.args, err)
			}
			if got == nil {
				t.Fatal("runF was not called")
			}
			if diff := cmp.Diff(tt.want, *got, cmpopts.IgnoreFields(CheckOptions{}, "IO", "Global")); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.global, *got.Global); diff != "" {
				t.Errorf("global options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"inspect"}, "want one model file"},
		{[]string{"inspect", "a.onnx", "b.onnx"}, "want one model file"},
		{[]string{"inspect", "--nope", "a.onnx"}, "unknown flag: --nope"},
		{[]string{"check", "a.onnx", "--batch", "0"}, "--batch 0"},
		{[]string{"check", "a.onnx", "--atol", "-1"}, "--atol -1"},
		{[]string{"check", "a.onnx", "--atol", "NaN"}, "--atol NaN"},
		{[]string{"check", "a.onnx", "--batch", "x"}, `invalid argument "x"`},
		{[]string{"--threads", "-2", "inspect", "a.onnx"}, "--threads -2"},
		{[]string{"train", "--arch", "resnet99", "--data", "fashion-mnist", "-o", "t.onnx"}, `--arch "resnet99": want one of resnet18`},
		{[]string{"train", "--arch", "resnet8", "--width", "0", "--data", "fashion-mnist", "-o", "t.onnx"}, "--width 0"},
		{[]string{"train", "--arch", "resnet8", "--init", "m.onnx", "--data", "fashion-mnist", "-o", "t.onnx"}, "exactly one of --arch"},
		{[]string{"train", "--arch", "resnet8", "--data", "fashion-mnist", "--epochs", "0", "-o", "t.onnx"}, "--epochs must be at least 1 (0 only with --init"},
		{[]string{"train", "--init", "m.onnx", "--data", "fashion-mnist", "--epochs", "-1", "-o", "t.onnx"}, "--epochs must be at least 1"},
		{[]string{"train", "--arch", "resnet8", "--data", "fashion-mnist", "--batch", "0", "-o", "t.onnx"}, "--batch must be at least 1"},
		{[]string{"train", "--arch", "resnet8", "--data", "fashion-mnist", "--lr", "-1", "-o", "t.onnx"}, "--lr -1"},
		{[]string{"verify", "m.onnx", "--data", "fashion-mnist", "--n", "0"}, "--n 0 must be at least 1"},
		{[]string{"verify", "m.onnx", "--data", "fashion-mnist", "--cc-k", "0"}, "--cc-k 0 must be at least 1"},
		{[]string{"verify", "m.onnx", "--data", "fashion-mnist", "--cc-grid", "1"}, "--cc-grid 1: want 0 (off) or at least 2"},
		{[]string{"verify", "m.onnx", "--data", "fashion-mnist", "--cc-delta", "0"}, "--cc-delta 0: want 0 < δ ≤ 1"},
		{[]string{"verify", "m.onnx", "--data", "fashion-mnist", "--sigma", "0"}, "--sigma 0: want a positive"},
		{[]string{"verify", "m.onnx", "--data", "fashion-mnist", "--alpha", "1"}, "--alpha 1: want 0 < α < 1"},
		{[]string{"verify", "m.onnx", "--data", "fashion-mnist", "--corruptions", "fog,Fog"}, "names fog twice"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err, code := execute(t, tt.args...)
			if err == nil {
				t.Fatalf("csam-onnx %v succeeded, want a usage error", tt.args)
			}
			var fe *FlagError
			if !errors.As(err, &fe) {
				t.Errorf("error %q is a %T, want *FlagError", err, err)
			}
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{FlagErrorf("bad flag"), 2},
		{fmt.Errorf("wrapped: %w", FlagErrorf("bad flag")), 2},
		{context.Canceled, 2},
		{fmt.Errorf("interrupted: %w", context.Canceled), 2},
		{&CheckFailedError{Model: "m.onnx", Failed: []OutputDiff{{Name: "y", MaxAbs: 1}}}, 3},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	err := errors.Join(errors.New("graph: a\n"), errors.New(""), errors.New("graph: b"))
	if got, want := OneLine(err), "graph: a; graph: b"; got != want {
		t.Errorf("OneLine = %q, want %q", got, want)
	}
}

func TestGroup(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {2802304, "2,802,304"}, {-1234, "-1,234"}}
	for _, tt := range tests {
		if got := group(tt.in); got != tt.want {
			t.Errorf("group(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	out, _, err, code := execute(t, "--help")
	if err != nil || code != 0 {
		t.Fatalf("--help: %v (exit %d)", err, code)
	}
	for _, want := range []string{"inspect", "check", "--ort-lib", "--threads", "--seed", "Exit status"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help output lacks %q:\n%s", want, out)
		}
	}
	out, _, err, _ = execute(t, "--version")
	if err != nil || !strings.Contains(out, Version) {
		t.Errorf("--version = %q, %v; want it to contain %q", out, err, Version)
	}
}

// TestCPUProfile: --cpuprofile writes a profile that pprof's format starts
// with (gzip) also when the command fails, and a path that cannot be
// created is a usage error before the command runs.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(testenv.RepoRoot(), "models", "fmnist_resnet8.onnx")
	for _, c := range []struct {
		name string
		args []string
		fail bool
	}{
		{"ok", []string{"inspect", model}, false},
		{"failing command", []string{"inspect", filepath.Join(dir, "missing.onnx")}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			prof := filepath.Join(dir, c.name+".prof")
			ios, _, _ := testIO()
			err := Execute(context.Background(), ios, append([]string{"--cpuprofile", prof}, c.args...))
			if (err != nil) != c.fail {
				t.Fatalf("Execute: %v", err)
			}
			b, rerr := os.ReadFile(prof)
			if rerr != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Fatalf("profile %s: %d bytes, %v; want a gzip-compressed pprof file", prof, len(b), rerr)
			}
		})
	}
	ios, _, _ := testIO()
	err := Execute(context.Background(), ios, []string{"--cpuprofile", filepath.Join(dir, "no", "such", "dir.prof"), "inspect", model})
	if err == nil || ExitCode(err) != 2 || !strings.Contains(err.Error(), "--cpuprofile") {
		t.Errorf("unwritable profile path: %v (exit %d), want a usage error naming --cpuprofile", err, ExitCode(err))
	}
}
