package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Version is the tool's version, reported by --version and recorded in the
// files it writes.
const Version = "0.1.0-dev"

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrTTY reports whether ErrOut is a terminal: progress is shown only
	// then.
	ErrTTY bool
}

// System returns the process's standard streams.
func System() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, ErrTTY: isTerminal(os.Stderr)}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// GlobalOptions are the flags every command accepts.
type GlobalOptions struct {
	// ORTLib is the onnxruntime shared library given with --ort-lib ("":
	// look in ONNXRUNTIME_SHARED_LIBRARY_PATH, then the setup cache).
	ORTLib string
	// Threads bounds the threads of the Go engine and of onnxruntime; 0
	// means one per core.
	Threads int
	// Seed seeds every random choice (random inputs, dropout, shuffling).
	Seed uint64
	// Quiet suppresses progress output.
	Quiet bool
	// CPUProfile, when set, is the file a CPU profile of the command is
	// written to (go tool pprof FILE).
	CPUProfile string
}

// profiling holds the stop function of a running CPU profile.
type profiling struct{ stop func() error }

// progressf writes a progress line to stderr when it is a terminal and -q
// is not set.
func progressf(ios *IOStreams, g *GlobalOptions, format string, args ...any) {
	if ios.ErrTTY && (g == nil || !g.Quiet) {
		fmt.Fprintf(ios.ErrOut, format+"\n", args...)
	}
}

// NewCmdRoot returns the csam-onnx command tree.
func NewCmdRoot(ios *IOStreams) *cobra.Command {
	cmd, _ := newCmdRootG(ios, runners{})
	return cmd
}

// Execute runs the command tree on args (the process arguments after the
// program name) and ends a CPU profile the command started, whatever the
// command's outcome.
func Execute(ctx context.Context, ios *IOStreams, args []string) error {
	cmd, prof := newCmdRootG(ios, runners{})
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if prof.stop != nil {
		if perr := prof.stop(); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// runners replace verbs' run functions in tests; nil fields mean the real
// ones.
type runners struct {
	inspect func(context.Context, *InspectOptions) error
	check   func(context.Context, *CheckOptions) error
}

func newCmdRoot(ios *IOStreams, r runners) *cobra.Command {
	cmd, _ := newCmdRootG(ios, r)
	return cmd
}

func newCmdRootG(ios *IOStreams, r runners) (*cobra.Command, *profiling) {
	g := &GlobalOptions{}
	prof := &profiling{}
	cmd := &cobra.Command{
		Use:   "csam-onnx <command> [flags]",
		Short: "Prune ONNX image classifiers with C-SAM and verify them in onnxruntime",
		Long: `csam-onnx reads a trained ONNX image classifier, learns a pruning mask with
C-SAM (sharpness-aware minimization over mask perturbations), writes a pruned
ONNX file and verifies the written file in onnxruntime.

Exit status: 0 success, 1 error, 2 usage error or interrupted, 3 check failed.`,
		Version:       Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return FlagErrorf("unknown command %q; run 'csam-onnx --help' for the list", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.SetIn(ios.In)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &FlagError{Err: fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())}
	})
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.ORTLib, "ort-lib", "", "`PATH` of the onnxruntime 1.24.3 shared library (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then the cache 'make setup' fills)")
	pf.IntVar(&g.Threads, "threads", 0, "threads for the Go engine and onnxruntime (0: one per core)")
	pf.Uint64Var(&g.Seed, "seed", 1, "seed for every random choice")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "no progress output")
	pf.StringVar(&g.CPUProfile, "cpuprofile", "", "write a CPU profile of the command to `FILE` (read it with go tool pprof)")
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if g.Threads < 0 {
			return FlagErrorf("--threads %d: want 0 (one per core) or a positive count", g.Threads)
		}
		if g.CPUProfile != "" {
			f, err := os.Create(g.CPUProfile)
			if err != nil {
				return FlagErrorf("--cpuprofile: %v", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return fmt.Errorf("--cpuprofile %s: %w", g.CPUProfile, err)
			}
			prof.stop = func() error {
				pprof.StopCPUProfile()
				return f.Close()
			}
		}
		return nil
	}

	cmd.AddCommand(NewCmdInspect(ios, g, r.inspect))
	cmd.AddCommand(NewCmdCheck(ios, g, r.check))
	cmd.AddCommand(NewCmdTrain(ios, g, nil))
	cmd.AddCommand(NewCmdCompress(ios, g, nil))
	cmd.AddCommand(NewCmdVerify(ios, g, nil))
	cmd.AddCommand(NewCmdMerge(ios, g))
	cmd.AddCommand(NewCmdExperiment(ios, g, nil))
	return cmd, prof
}

// FlagError is a usage error: a bad flag value or argument. It maps to
// exit status 2.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf returns a *FlagError with a formatted message.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// exactArgs is cobra.ExactArgs returning a *FlagError that says what is
// expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return FlagErrorf("%s: want %s, got %d arguments (see '%s --help')", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// notInput refuses an output path that names the input file (the same
// file, whatever the spelling): writing there would replace the model the
// command reads, and with it the only copy a user may have.
func notInput(cmd, outFlag, out, inWhat, in string) error {
	fo, err := os.Stat(out)
	if err != nil {
		return nil
	}
	if fi, err := os.Stat(in); err == nil && os.SameFile(fi, fo) {
		return FlagErrorf("%s: %s %s is the %s; the written model would replace it: give another output file", cmd, outFlag, out, inWhat)
	}
	return nil
}

// outputFile refuses an output path that names a folder (an existing
// one, or a path ending in a separator), before the command spends its
// time on a model it could not write there.
func outputFile(cmd, flag, out string) error {
	fi, err := os.Stat(out)
	if (err == nil && fi.IsDir()) || strings.HasSuffix(out, string(filepath.Separator)) {
		return FlagErrorf("%s: %s %s is a folder; give a file name, such as %s", cmd, flag, out, filepath.Join(out, "model.onnx"))
	}
	return nil
}

// besideModel is the default output of a command reading model: its path
// with suffix in place of a final .onnx (m.onnx → m.csam.onnx).
func besideModel(model, suffix string) string {
	if ext := filepath.Ext(model); strings.EqualFold(ext, ".onnx") {
		model = strings.TrimSuffix(model, ext)
	}
	return model + suffix
}

// writableDir creates dir if needed and checks that a file can be
// created in it, before a command spends its time on results it would
// then fail to write. flag and path name what the user gave. undo removes
// the folders it created that are still empty: a command that fails
// leaves no empty folders behind (a folder holding checkpoints stays).
func writableDir(flag, path, dir string) (undo func(), err error) {
	var made []string // deepest first
	for d := filepath.Clean(dir); ; {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		made = append(made, d)
		p := filepath.Dir(d)
		if p == d {
			break
		}
		d = p
	}
	undo = func() {
		for _, d := range made {
			os.Remove(d) // fails, as it should, when d holds anything
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		undo()
		return func() {}, fmt.Errorf("%s %s: cannot create the folder: %w; give a path in a folder you can write to", flag, path, err)
	}
	f, err := os.CreateTemp(dir, ".csam-onnx-write-test-*")
	if err != nil {
		undo()
		return func() {}, fmt.Errorf("%s %s: cannot write in %s: %w; give a path in a folder you can write to", flag, path, dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return undo, nil
}

// OneLine renders err as a single line: the lines of a joined error are
// separated by "; ".
func OneLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// ExitCode is the exit status for the error a command returned: 0 for nil,
// 2 for a usage error or an interruption, 3 for a failed check, 1 for
// anything else.
func ExitCode(err error) int {
	var fe *FlagError
	var ce *CheckFailedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &fe), errors.Is(err, context.Canceled):
		return 2
	case errors.As(err, &ce):
		return 3
	}
	return 1
}
