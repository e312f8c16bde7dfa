package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/csam-onnx/csam-onnx/dataset"
	"github.com/csam-onnx/csam-onnx/internal/results"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/report"
)

// ExperimentOptions are the inputs of `csam-onnx experiment`.
type ExperimentOptions struct {
	IO     *IOStreams
	Global *GlobalOptions

	Config string
	// Only restricts the run to cells whose ID matches one of these
	// comma-separated path.Match patterns.
	Only   string
	DryRun bool
	// WorkDir, ResultsDir and Markdown override the configuration's.
	WorkDir    string
	ResultsDir string
	Markdown   string
	// NoResults skips regenerating the Markdown summary at the end;
	// ResultsOnly only regenerates it (no --config needed).
	NoResults   bool
	ResultsOnly bool
	// Refresh re-derives finished cells' verify reports from the raw
	// measurements in their work folders, then regenerates the summary.
	Refresh bool
	// Shard i/N runs the i-th of N disjoint parts of the chosen cells
	// (cells sharing a dense model to train stay in one part), so that N
	// processes can run one grid side by side.
	Shard string
}

// ExperimentConfig is an experiment YAML file: the grid's axes, the flags
// every step runs with (keyed by the verbs' flag names, as compress
// recipes), and where the outputs go. Relative paths are relative to the
// current folder.
type ExperimentConfig struct {
	Name string `yaml:"name"`
	// WorkDir holds dense models, compressed models, checkpoints, logs and
	// verify reports; ResultsDir one JSON file per cell; Markdown the
	// regenerated summary (plots go to ResultsDir/plots).
	WorkDir    string `yaml:"work_dir"`
	ResultsDir string `yaml:"results_dir"`
	Markdown   string `yaml:"markdown"`
	// Threads for the Go engine and onnxruntime (0: one per core); the
	// global --threads flag wins when given.
	Threads int `yaml:"threads"`

	Data       []DataEntry   `yaml:"data"`
	Archs      []ArchEntry   `yaml:"archs"`
	Sparsities []float64     `yaml:"sparsities"`
	Seeds      []uint64      `yaml:"seeds"`
	Methods    []MethodEntry `yaml:"methods"`

	// Budget holds the compress flags shared by every method (epochs,
	// batch, learning rates, train subset): the same budget for all.
	Budget map[string]any `yaml:"budget"`
	// Verify holds verify flags; Smoothing, when present, the flags of a
	// second, smoothing-only verify pass (so it can use its own, smaller
	// certification subset).
	Verify    map[string]any `yaml:"verify"`
	Smoothing map[string]any `yaml:"smoothing"`
	// Baseline measures the dense model side by side in every pruned
	// cell's verify run (default true).
	Baseline *bool `yaml:"baseline"`

	// dir is the configuration file's folder: relative model paths are
	// taken from it.
	dir string
}

// resolve returns a model path of the configuration as a path usable
// from the working directory.
func (c *ExperimentConfig) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// DataEntry is one data set of the grid. Train and Budget override the
// archs' train flags and the shared budget for this data set (e.g. more
// epochs for a small training set).
type DataEntry struct {
	Name   string         `yaml:"name"`
	Spec   string         `yaml:"spec"`
	Train  map[string]any `yaml:"train"`
	Budget map[string]any `yaml:"budget"`
}

// ArchEntry is one dense model per seed, trained with the train flags in
// Train (arch, width, input-size, epochs, batch, lr, ...), or a given
// pretrained ONNX file that every seed starts from: nothing is trained,
// and the seeds then vary the compression and the verification only.
// Model names one file for every data set; Models names one per data set
// (data name → file), and the data sets it does not name train with
// Train. Model excludes Train and Models. Relative model paths are taken
// from the configuration file's folder, so a configuration in
// experiments/ names models/x.onnx as ../models/x.onnx wherever the
// command runs.
//
// Input gives the given files' input conventions when they are not inside
// the model (input-mean, input-std, input-layout, as the verbs' flags):
// compress, verify and the smoothing pass of this arch's cells from given
// files get them, so the dense cell is measured as the pruned ones.
type ArchEntry struct {
	Name   string            `yaml:"name"`
	Train  map[string]any    `yaml:"train"`
	Model  string            `yaml:"model"`
	Models map[string]string `yaml:"models"`
	Input  map[string]any    `yaml:"input"`
}

// inputKeys are the keys of an arch entry's input.
var inputKeys = []string{"input-mean", "input-std", "input-layout"}

// pretrained returns the pretrained file the arch entry gives for data
// set d, as written in the configuration ("" when it trains one).
func (a ArchEntry) pretrained(d string) string {
	if a.Model != "" {
		return a.Model
	}
	return a.Models[d]
}

// MethodEntry is one row of the tables: "dense" (the unpruned model), or a
// compress --method (default: the entry's name) with extra compress flags,
// e.g. {name: csam-B, method: csam, flags: {variant: B}}.
type MethodEntry struct {
	Name   string         `yaml:"name"`
	Method string         `yaml:"method"`
	Flags  map[string]any `yaml:"flags"`
}

// NewCmdExperiment returns the experiment command. runF replaces the run
// function in tests.
func NewCmdExperiment(ios *IOStreams, g *GlobalOptions, runF func(context.Context, *ExperimentOptions) error) *cobra.Command {
	opts := &ExperimentOptions{IO: ios, Global: g}
	cmd := &cobra.Command{
		Use:   "experiment --config experiments/X.yaml [--only GLOB] [--dry-run]",
		Short: "Run a grid of train → compress → verify cells, resumably, and summarize the results",
		Long: `Run the grid an experiment YAML describes: every (data, architecture,
sparsity, method, seed) cell. A cell trains its dense model if needed (once
per data, architecture and seed), compresses it with the cell's method (not
for the dense cell), verifies the written file in onnxruntime (with the
dense model as --baseline unless the YAML says baseline: false), and writes
one result file RESULTS_DIR/<cell>.json.

An arch entry trains its dense model (train: {arch: resnet8, epochs: 15,
...}) or starts from a given file (model: x.onnx, or models: {DATA: x.onnx}
per data set); a given file normalized outside the model takes
input: {input-mean: [0.485, 0.456, 0.406], input-std: [0.229, 0.224, 0.225]}
(and input-layout: nhwc for channels-last), which every step of its cells
gets. Flag values in the YAML may be lists: corruptions: [fog, contrast].

Cells whose result file exists are skipped; an interrupted cell resumes
(train and compress from their checkpoints in the work folder, verify
reruns), so the same command continues a grid across sessions. At the end
the Markdown summary and its plots are regenerated from the result files
alone (--results-only does only that). --refresh rebuilds the result files
of finished cells from the raw measurements their verify runs left in the
work folder (when a newer csam-onnx reports more, such as per-image CC-Cert
outcomes), runs no step, and regenerates the summary.

Cell IDs look like cifar10_resnet18_s0.9_csam_seed1 (dense cells:
cifar10_resnet18_dense_seed1); --only takes comma-separated glob patterns
over them. --shard i/N runs the i-th of N disjoint parts of those cells
(the cells that train one dense model stay in one part): N processes with
--shard 0/N … N-1/N run a grid side by side; on a machine whose training
step gains little from a second thread, two processes with --threads 1
finish sooner than one with --threads 2.`,
		Example: `  csam-onnx experiment --config experiments/headline.yaml --dry-run
  csam-onnx experiment --config experiments/headline.yaml --only '*_seed1'
  csam-onnx --threads 1 experiment --config experiments/grid.yaml --shard 0/2 --no-results &
  csam-onnx --threads 1 experiment --config experiments/grid.yaml --shard 1/2 --no-results
  csam-onnx experiment --results-only --results-dir docs/results --markdown docs/RESULTS.md`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Config == "" && !opts.ResultsOnly {
				return FlagErrorf("experiment: --config is required (e.g. experiments/headline.yaml)")
			}
			if opts.Refresh && (opts.ResultsOnly || opts.DryRun) {
				return FlagErrorf("experiment: --refresh cannot be combined with --results-only or --dry-run")
			}
			if opts.ResultsOnly && opts.Config == "" && (opts.ResultsDir == "" || opts.Markdown == "") {
				return FlagErrorf("experiment: --results-only needs --config, or --results-dir and --markdown")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return experimentRun(cmd.Context(), opts, realSteps())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Config, "config", "", "experiment YAML file")
	f.StringVar(&opts.Only, "only", "", "run only cells whose ID matches one of these comma-separated glob patterns")
	f.BoolVar(&opts.DryRun, "dry-run", false, "list the cells, their state and command lines; run nothing")
	f.StringVar(&opts.WorkDir, "work-dir", "", "folder for models, checkpoints and logs (default: the config's work_dir)")
	f.StringVar(&opts.ResultsDir, "results-dir", "", "folder of the per-cell result files (default: the config's results_dir)")
	f.StringVar(&opts.Markdown, "markdown", "", "summary Markdown file (default: the config's markdown)")
	f.BoolVar(&opts.NoResults, "no-results", false, "do not regenerate the summary at the end")
	f.BoolVar(&opts.ResultsOnly, "results-only", false, "only regenerate the summary and plots from the result files")
	f.StringVar(&opts.Shard, "shard", "", "run only part i/N of the chosen cells (0 ≤ i < N; cells that share a dense model to train stay together), to run N processes side by side, e.g. each with --threads 1")
	f.BoolVar(&opts.Refresh, "refresh", false, "rebuild finished cells' result files from the raw measurements in the work folder (when a newer csam-onnx reports more), then the summary; runs nothing")
	return cmd
}

// LoadExperiment reads and checks an experiment YAML file; every problem
// is reported at once.
func LoadExperiment(p string) (*ExperimentConfig, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, FlagErrorf("--config: %v", err)
	}
	var c ExperimentConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, FlagErrorf("--config %s is empty; see experiments/*.yaml for the keys", p)
		}
		return nil, FlagErrorf("--config %s: %v", p, err)
	}
	c.dir = filepath.Dir(p)
	if c.Name == "" {
		c.Name = strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
	}
	if c.WorkDir == "" {
		c.WorkDir = filepath.Join("runs", c.Name)
	}
	if c.ResultsDir == "" {
		c.ResultsDir = filepath.Join("docs", "results")
	}
	if c.Markdown == "" {
		c.Markdown = filepath.Join("docs", "RESULTS.md")
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Threads < 0 {
		bad("threads %d: want 0 (one per core) or more", c.Threads)
	}
	names := map[string]bool{}
	checkName := func(kind, n string) {
		switch {
		case n == "":
			bad("a %s entry has no name", kind)
		case strings.ContainsAny(n, "_/ *?[]\\"):
			bad("%s name %q: use letters, digits, '-' and '.' only ('_' separates the parts of cell IDs)", kind, n)
		case names[kind+":"+n]:
			bad("%s name %q appears twice", kind, n)
		}
		names[kind+":"+n] = true
	}
	if len(c.Data) == 0 || len(c.Archs) == 0 || len(c.Seeds) == 0 || len(c.Methods) == 0 {
		bad("data, archs, seeds and methods must each list at least one entry")
	}
	for _, d := range c.Data {
		checkName("data", d.Name)
		if d.Spec == "" {
			bad("data %q has no spec (e.g. cifar10:/work/shared/data/cifar10)", d.Name)
		} else if _, err := dataset.Parse(d.Spec); err != nil {
			bad("data %q: %v", d.Name, err)
		}
		for _, k := range present(d.Train, append([]string{"arch"}, trainSetFlags...)) {
			bad("data %q: train.%s cannot be set per data set; remove it", d.Name, k)
		}
		for _, k := range present(d.Budget, compressSetFlags) {
			bad("data %q: budget.%s is set by the experiment; remove it", d.Name, k)
		}
	}
	dataNames := map[string]bool{}
	for _, d := range c.Data {
		dataNames[d.Name] = true
	}
	for _, a := range c.Archs {
		checkName("arch", a.Name)
		switch {
		case a.Model != "" && len(a.Train) > 0:
			bad("arch %q: model and train exclude each other (model: a pretrained file every seed starts from; train: a dense model trained per seed; models: a file per data set, train for the others)", a.Name)
		case a.Model != "" && len(a.Models) > 0:
			bad("arch %q: model and models exclude each other (model: one file for every data set; models: one per data set)", a.Name)
		}
		for _, m := range append([]string{a.Model}, slices.Sorted(maps.Values(a.Models))...) {
			if m != "" && !fileExists(c.resolve(m)) {
				bad("arch %q: model %s does not exist (relative paths are taken from the configuration's folder %s)", a.Name, c.resolve(m), c.dir)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(a.Input)) {
			if !slices.Contains(inputKeys, k) {
				bad("arch %q: input.%s: want %s", a.Name, k, strings.Join(inputKeys, ", "))
			}
		}
		if len(a.Input) > 0 && a.Model == "" && len(a.Models) == 0 {
			bad("arch %q: input applies to given files (model or models); a model the experiment trains has its normalization inside", a.Name)
		}
		for _, d := range slices.Sorted(maps.Keys(a.Models)) {
			if !dataNames[d] {
				bad("arch %q: models.%s names no data set of this configuration", a.Name, d)
			}
		}
		if a.Model != "" {
			continue
		}
		var untrained []string // data sets without a given model
		for _, d := range c.Data {
			if a.Models[d.Name] == "" {
				untrained = append(untrained, d.Name)
			}
		}
		switch {
		case len(untrained) == 0 && len(a.Train) > 0:
			bad("arch %q: train is never used (models names a file for every data set); remove it", a.Name)
			continue
		case len(untrained) == 0:
			continue
		case len(a.Train) == 0 && len(a.Models) > 0:
			bad("arch %q: data %s has no file in models and the entry has no train flags to train one; add train: {arch: ...} or a models entry", a.Name, strings.Join(untrained, ", "))
			continue
		}
		arch := fmt.Sprint(a.Train["arch"])
		if a.Train["arch"] == nil {
			bad("arch %q: give model (a pretrained file), models (a file per data set) or train: {arch: %s} (an architecture to train)", a.Name, strings.Join(models.Archs(), "|"))
		} else if !slices.Contains(models.Archs(), arch) {
			bad("arch %q: train.arch %q is not one of %s", a.Name, arch, strings.Join(models.Archs(), ", "))
		}
		for _, k := range present(a.Train, trainSetFlags) {
			bad("arch %q: train.%s is set by the experiment; remove it", a.Name, k)
		}
	}
	pruned := false
	for _, m := range c.Methods {
		checkName("method", m.Name)
		if m.Name == "dense" {
			if m.Method != "" || len(m.Flags) > 0 {
				bad("method dense takes no method or flags")
			}
			continue
		}
		pruned = true
		for _, k := range present(m.Flags, compressSetFlags) {
			bad("method %q: flags.%s is set by the experiment (use the entry's method field for --method); remove it", m.Name, k)
		}
	}
	if pruned && len(c.Sparsities) == 0 {
		bad("sparsities must list at least one value for the pruning methods")
	}
	for _, s := range c.Sparsities {
		if !(s > 0 && s < 1) {
			bad("sparsity %v must be in (0, 1)", s)
		}
	}
	for _, k := range present(c.Budget, compressSetFlags) {
		bad("budget.%s is set by the experiment; remove it", k)
	}
	for sec, m := range map[string]map[string]any{"verify": c.Verify, "smoothing": c.Smoothing} {
		for _, k := range present(m, verifySetFlags) {
			bad("%s.%s is set by the experiment; remove it", sec, k)
		}
	}
	// Input conventions belong to a model file: one place, the arch entry.
	type section struct {
		where string
		flags map[string]any
	}
	sections := []section{{"budget", c.Budget}, {"verify", c.Verify}, {"smoothing", c.Smoothing}}
	for _, d := range c.Data {
		sections = append(sections, section{fmt.Sprintf("data %q: budget", d.Name), d.Budget})
	}
	for _, m := range c.Methods {
		sections = append(sections, section{fmt.Sprintf("method %q: flags", m.Name), m.Flags})
	}
	for _, sec := range sections {
		for _, k := range present(sec.flags, inputKeys) {
			bad("%s.%s: give the input conventions of a given model in its arch entry (input: {%s: ...})", sec.where, k, k)
		}
	}
	if _, ok := c.Smoothing["certify"]; ok {
		bad("smoothing.certify is set by the experiment (the smoothing pass certifies with smoothing only); remove it")
	}
	if seen := map[uint64]bool{}; true {
		for _, s := range c.Seeds {
			if seen[s] {
				bad("seed %d appears twice", s)
			}
			seen[s] = true
		}
	}
	if len(errs) > 0 {
		return nil, &FlagError{Err: fmt.Errorf("--config %s: %w", p, errors.Join(errs...))}
	}
	return &c, nil
}

// expCell is one planned cell with the argument lists of its steps.
type expCell struct {
	id       string
	data     DataEntry
	arch     ArchEntry
	sparsity float64
	method   MethodEntry
	order    int
	seed     uint64

	denseDir string // the (data, arch, seed) folder holding dense.onnx
	// pretrainedPath is the given dense model's path (resolved from the
	// configuration's folder); "" when the cell trains its dense model.
	pretrainedPath string
	cellDir        string // this cell's folder (compressed model, reports)

	// settings are each step's flags from the configuration (no paths);
	// fingerprint hashes them.
	settings    map[string][]string
	fingerprint string
}

func (c *expCell) dense() bool { return c.method.Name == "dense" }

// baseMethod is the compress --method of the cell ("" for dense).
func (c *expCell) baseMethod() string {
	switch {
	case c.dense():
		return ""
	case c.method.Method != "":
		return c.method.Method
	}
	return c.method.Name
}

// pretrained reports whether the cell starts from the arch entry's given
// model instead of training one.
func (c *expCell) pretrained() bool { return c.pretrainedPath != "" }

func (c *expCell) denseModel() string {
	if c.pretrained() {
		return c.pretrainedPath
	}
	return filepath.Join(c.denseDir, "dense.onnx")
}

func (c *expCell) model() string {
	if c.dense() {
		return c.denseModel()
	}
	return filepath.Join(c.cellDir, "model.onnx")
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// flagArgs renders a map of flag names to values as --name=value, sorted
// by name so the command lines and fingerprints are stable.
func flagArgs(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, "--"+k+"="+flagValue(m[k]))
	}
	return out
}

// flagValue renders a YAML value as a flag value: a list as its elements
// separated by commas (corruptions: [fog, contrast], input-mean: [0.5]).
func flagValue(v any) string {
	switch v := v.(type) {
	case float64:
		return fmtFloat(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = flagValue(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// merge returns the union of maps, later ones winning.
func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// plan lists the configuration's cells in run order: per data, arch and
// seed the dense cell, then every sparsity × method.
func plan(c *ExperimentConfig, workDir string) []*expCell {
	var out []*expCell
	for _, d := range c.Data {
		for _, a := range c.Archs {
			for _, seed := range c.Seeds {
				denseDir := filepath.Join(workDir, d.Name, a.Name, fmt.Sprintf("seed%d", seed))
				train := append([]string{"--data=" + d.Spec}, flagArgs(merge(a.Train, d.Train))...)
				given := a.pretrained(d.Name)
				var input []string // the given file's input conventions
				if given != "" {
					input = flagArgs(a.Input)
					// No training: the settings name the file as written
					// and its contents, so a changed file is a changed
					// cell wherever the checkout lies.
					train = []string{"--model=" + given, "--sha256=" + fileSHA256(c.resolve(given))}
					given = c.resolve(given)
				}
				mk := func(sp float64, m MethodEntry, order int) *expCell {
					cell := &expCell{data: d, arch: a, sparsity: sp, method: m, order: order, seed: seed, denseDir: denseDir,
						pretrainedPath: given, settings: map[string][]string{"train": train}}
					if cell.dense() {
						cell.id = fmt.Sprintf("%s_%s_dense_seed%d", d.Name, a.Name, seed)
						cell.cellDir = filepath.Join(denseDir, "dense")
					} else {
						cell.id = fmt.Sprintf("%s_%s_s%s_%s_seed%d", d.Name, a.Name, fmtFloat(sp), m.Name, seed)
						cell.cellDir = filepath.Join(denseDir, "s"+fmtFloat(sp), m.Name)
						base := cell.baseMethod()
						comp := merge(c.Budget, d.Budget, m.Flags)
						cell.settings["compress"] = slices.Concat([]string{"--data=" + d.Spec, "--method=" + base, "--sparsity=" + fmtFloat(sp)}, flagArgs(comp), input)
					}
					cell.settings["verify"] = slices.Concat([]string{"--data=" + d.Spec}, flagArgs(c.Verify), input)
					if c.Smoothing != nil {
						cell.settings["smoothing"] = slices.Concat([]string{"--data=" + d.Spec, "--certify=smoothing", "--corruptions=none", "--latency=false"}, flagArgs(c.Smoothing), input)
					}
					h := sha256.New()
					for _, step := range []string{"train", "compress", "verify", "smoothing"} {
						fmt.Fprintf(h, "%s\x00%s\x00%d\x00", step, strings.Join(cell.settings[step], "\x00"), seed)
					}
					cell.fingerprint = hex.EncodeToString(h.Sum(nil))[:16]
					return cell
				}
				for i, m := range c.Methods {
					if m.Name == "dense" {
						out = append(out, mk(0, m, i))
					}
				}
				for _, sp := range c.Sparsities {
					for i, m := range c.Methods {
						if m.Name != "dense" {
							out = append(out, mk(sp, m, i))
						}
					}
				}
			}
		}
	}
	return out
}

// matchOnly reports whether id matches one of the comma-separated globs.
func matchOnly(only, id string) (bool, error) {
	if only == "" {
		return true, nil
	}
	for _, pat := range strings.Split(only, ",") {
		ok, err := path.Match(strings.TrimSpace(pat), id)
		if err != nil {
			return false, FlagErrorf("--only %q: %v", pat, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// expSteps are the verbs a cell runs; tests wrap them to count calls.
type expSteps struct {
	train    func(context.Context, *TrainOptions) error
	compress func(context.Context, *CompressOptions) error
	verify   func(context.Context, *VerifyOptions) error
}

func realSteps() expSteps { return expSteps{train: trainRun, compress: compressRun, verify: verifyRun} }

// parseVerb parses args with the verb's own flag set and checks, as the
// command line would, capturing the options instead of running.
func parseVerb[T any](newCmd func(*IOStreams, *GlobalOptions, func(context.Context, *T) error) *cobra.Command, ios *IOStreams, g *GlobalOptions, args []string) (*T, error) {
	var got *T
	cmd := newCmd(ios, g, func(_ context.Context, o *T) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return err })
	if err := cmd.Execute(); err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("%s did not run", cmd.Name())
	}
	return got, nil
}

// commandLine renders a csam-onnx command line a shell accepts.
func commandLine(g *GlobalOptions, verb string, args []string) string {
	parts := []string{"csam-onnx", "--seed", strconv.FormatUint(g.Seed, 10)}
	if g.Threads > 0 {
		parts = append(parts, "--threads", strconv.Itoa(g.Threads))
	}
	parts = append(parts, verb)
	for _, a := range args {
		if strings.ContainsAny(a, " \t'\"$*?[]{}()<>|&;\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// cellArgs are the full argument lists of a cell's steps (settings plus
// paths).
type cellArgs struct {
	train, compress, verify, smoothing []string
}

func (c *expCell) args(cfg *ExperimentConfig) cellArgs {
	var a cellArgs
	if !c.pretrained() {
		a.train = append(slices.Clone(c.settings["train"]), "--resume", "-o", c.denseModel())
	}
	if !c.dense() {
		a.compress = append([]string{c.denseModel()}, c.settings["compress"]...)
		a.compress = append(a.compress, "--resume", "-o", c.model())
	}
	a.verify = append([]string{c.model()}, c.settings["verify"]...)
	if !c.dense() && (cfg.Baseline == nil || *cfg.Baseline) {
		a.verify = append(a.verify, "--baseline", c.denseModel())
	}
	a.verify = append(a.verify, "-o", filepath.Join(c.cellDir, "verify"))
	if s := c.settings["smoothing"]; s != nil {
		a.smoothing = append(append([]string{c.model()}, s...), "-o", filepath.Join(c.cellDir, "verify-smoothing"))
	}
	return a
}

// cellState is a planned cell's result file status.
type cellState int

const (
	cellTodo cellState = iota
	cellDone
	cellStale // done, but with other settings
	cellInvalid
)

func (s cellState) String() string {
	return [...]string{"todo", "done", "done (other settings)", "invalid result file, will rerun"}[s]
}

// stateOf reads a cell's result file, if any, and returns its state and,
// when it could be read, its contents.
func stateOf(resultsDir string, c *expCell) (cellState, *results.Cell, error) {
	p := filepath.Join(resultsDir, c.id+".json")
	if _, err := os.Stat(p); err != nil {
		return cellTodo, nil, nil
	}
	r, err := results.ReadFile(p)
	if err != nil {
		return cellInvalid, nil, err
	}
	if r.Fingerprint != c.fingerprint {
		return cellStale, r, nil
	}
	return cellDone, r, nil
}

func experimentRun(ctx context.Context, o *ExperimentOptions, steps expSteps) error {
	var cfg *ExperimentConfig
	if o.Config != "" {
		var err error
		if cfg, err = LoadExperiment(o.Config); err != nil {
			return err
		}
	} else {
		cfg = &ExperimentConfig{}
	}
	workDir, resultsDir, md := cfg.WorkDir, cfg.ResultsDir, cfg.Markdown
	if o.WorkDir != "" {
		workDir = o.WorkDir
	}
	if o.ResultsDir != "" {
		resultsDir = o.ResultsDir
	}
	if o.Markdown != "" {
		md = o.Markdown
	}
	if o.ResultsOnly {
		return writeResults(o.IO, resultsDir, md)
	}
	g := *o.Global
	if g.Threads == 0 {
		g.Threads = cfg.Threads
	}
	cells := plan(cfg, workDir)
	var chosen []*expCell
	for _, c := range cells {
		ok, err := matchOnly(o.Only, c.id)
		if err != nil {
			return err
		}
		if ok {
			chosen = append(chosen, c)
		}
	}
	if len(chosen) == 0 {
		return FlagErrorf("experiment: --only %q matches none of the %d cells of %s (run with --dry-run to list them)", o.Only, len(cells), o.Config)
	}
	shard, err := parseShard(o.Shard)
	if err != nil {
		return err
	}
	if chosen = shardCells(chosen, shard); len(chosen) == 0 {
		fmt.Fprintf(o.IO.ErrOut, "experiment: shard %s has no cells (fewer cell groups than shards)\n", o.Shard)
		return nil
	}
	// Check every step's flags before any work.
	quiet := &IOStreams{In: o.IO.In, Out: io.Discard, ErrOut: io.Discard}
	for _, c := range chosen {
		a := c.args(cfg)
		cg := g
		cg.Seed = c.seed
		if a.train != nil {
			if _, err := parseVerb(NewCmdTrain, quiet, &cg, a.train); err != nil {
				return FlagErrorf("--config %s: arch %q: train flags: %v", o.Config, c.arch.Name, err)
			}
		}
		if a.compress != nil {
			if _, err := parseVerb(NewCmdCompress, quiet, &cg, a.compress); err != nil {
				return FlagErrorf("--config %s: method %q: compress flags (budget + method flags): %v", o.Config, c.method.Name, err)
			}
		}
		if _, err := parseVerb(NewCmdVerify, quiet, &cg, a.verify); err != nil {
			return FlagErrorf("--config %s: verify flags: %v", o.Config, err)
		}
		if a.smoothing != nil {
			if _, err := parseVerb(NewCmdVerify, quiet, &cg, a.smoothing); err != nil {
				return FlagErrorf("--config %s: smoothing flags: %v", o.Config, err)
			}
		}
	}
	if o.DryRun {
		for _, c := range chosen {
			st, cell, err := stateOf(resultsDir, c)
			fmt.Fprintf(o.IO.Out, "%s\t%s\n", c.id, st)
			if err != nil {
				fmt.Fprintf(o.IO.Out, "\t# %v\n", err)
			}
			if st == cellDone {
				if d := settingsDrift(cfg, g, c, cell, resultsDir); d != "" {
					fmt.Fprintf(o.IO.Out, "\t# %s\n", d)
				}
			}
			if st == cellDone || st == cellStale {
				continue
			}
			cg := g
			cg.Seed = c.seed
			for _, l := range c.commands(cfg, &cg) {
				fmt.Fprintf(o.IO.Out, "\t%s\n", l)
			}
		}
		return nil
	}
	if o.Refresh {
		return refreshCells(o, chosen, resultsDir, md)
	}
	x := &experiment{o: o, cfg: cfg, g: g, steps: steps, resultsDir: resultsDir, failedDense: map[string]error{}}
	var failed []error
	ran, skipped := 0, 0
	for i, c := range chosen {
		st, cell, err := stateOf(resultsDir, c)
		switch st {
		case cellDone:
			skipped++
			fmt.Fprintf(o.IO.ErrOut, "experiment: [%d/%d] %s: done, skipped\n", i+1, len(chosen), c.id)
			if d := settingsDrift(cfg, g, c, cell, resultsDir); d != "" {
				fmt.Fprintf(o.IO.ErrOut, "experiment: %s: note: %s\n", c.id, d)
			}
			continue
		case cellStale:
			skipped++
			fmt.Fprintf(o.IO.ErrOut, "experiment: [%d/%d] %s: its result file was made with other settings; skipped (delete %s to rerun it)\n",
				i+1, len(chosen), c.id, filepath.Join(resultsDir, c.id+".json"))
			continue
		case cellInvalid:
			fmt.Fprintf(o.IO.ErrOut, "experiment: %s: %v; rerunning the cell\n", c.id, err)
		}
		fmt.Fprintf(o.IO.ErrOut, "experiment: [%d/%d] %s: running\n", i+1, len(chosen), c.id)
		start := time.Now()
		path, err := x.runCell(ctx, c)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return fmt.Errorf("experiment: interrupted in cell %s; rerun the same command to resume it: %w", c.id, err)
			}
			fmt.Fprintf(o.IO.ErrOut, "experiment: %s failed: %s\n", c.id, OneLine(err))
			failed = append(failed, fmt.Errorf("cell %s: %w", c.id, err))
			continue
		}
		ran++
		fmt.Fprintf(o.IO.ErrOut, "experiment: %s: wrote %s (%.0f s)\n", c.id, path, time.Since(start).Seconds())
	}
	fmt.Fprintf(o.IO.ErrOut, "experiment: %d cells run, %d skipped, %d failed\n", ran, skipped, len(failed))
	var summary error
	if !o.NoResults {
		if err := writeResults(o.IO, resultsDir, md); err != nil {
			summary = fmt.Errorf("experiment: the summary of %s: %w", resultsDir, err)
		}
	}
	if len(failed) > 0 {
		return errors.Join(fmt.Errorf("experiment: %d of %d cells failed (logs in the cells' folders under %s):\n%w", len(failed), len(chosen), workDir, errors.Join(failed...)), summary)
	}
	return summary
}

// shardCells returns the cells of shard s ({i, N}): the cells are grouped
// by the dense model they train (one group per cell when the dense model
// is given), and groups are dealt to the shards in turn in plan order, so
// two shards never train the same model.
func shardCells(cells []*expCell, s [2]int) []*expCell {
	if s[1] <= 1 {
		return cells
	}
	group := map[string]int{}
	var out []*expCell
	for _, c := range cells {
		key := c.id
		if !c.pretrained() {
			key = "dense:" + c.denseDir
		}
		g, ok := group[key]
		if !ok {
			g = len(group)
			group[key] = g
		}
		if g%s[1] == s[0] {
			out = append(out, c)
		}
	}
	return out
}

// settingsDrift compares the compression settings a finished cell recorded
// (cell, its result file: the compress report's resolved configuration)
// with those its flags give
// with this csam-onnx, and describes the fields that differ ("" when none
// do, or for dense cells). A cell's fingerprint hashes its flags only, so
// a default that changed between versions would otherwise go unnoticed.
func settingsDrift(cfg *ExperimentConfig, g GlobalOptions, c *expCell, cell *results.Cell, resultsDir string) string {
	if c.dense() || len(cell.Compress) == 0 {
		return ""
	}
	var rec struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(cell.Compress, &rec); err != nil || rec.Config == nil {
		return ""
	}
	g.Seed = c.seed
	quiet := &IOStreams{Out: io.Discard, ErrOut: io.Discard}
	opts, err := parseVerb(NewCmdCompress, quiet, &g, c.args(cfg).compress)
	if err != nil {
		return fmt.Sprintf("cannot compare its compression settings with this version's: %v", err)
	}
	b, err := json.Marshal(opts.Learn)
	if err != nil {
		return ""
	}
	var now map[string]any
	if err := json.Unmarshal(b, &now); err != nil {
		return ""
	}
	// Run-specific fields, not settings.
	skip := map[string]bool{"Seed": true, "Workers": true, "CheckpointDir": true, "CheckpointEvery": true, "Resume": true}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(now)) {
		old, had := rec.Config[k]
		switch {
		case skip[k]:
		case !had && !reflect.ValueOf(now[k]).IsZero():
			diffs = append(diffs, fmt.Sprintf("%s (not recorded) → %v", k, now[k]))
		case had && !reflect.DeepEqual(old, now[k]):
			diffs = append(diffs, fmt.Sprintf("%s %v → %v", k, old, now[k]))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprintf("its compression ran with settings this version's defaults no longer give (%s); delete %s to rerun it with the current ones",
		strings.Join(diffs, ", "), filepath.Join(resultsDir, c.id+".json"))
}

// refreshCells rebuilds the verify reports of the finished cells among
// chosen from the raw measurements their verify runs left in the work
// folder (verify/raw.json, verify-smoothing/raw.json), keeping everything
// else in the result files; cells not finished are left alone. A raw file
// of another run than the one the result file records is an error for
// that cell, which keeps its result file as it was.
func refreshCells(o *ExperimentOptions, chosen []*expCell, resultsDir, md string) error {
	var failed []error
	refreshed := 0
	for _, c := range chosen {
		st, cell, _ := stateOf(resultsDir, c)
		if st != cellDone {
			continue
		}
		if err := refreshCell(resultsDir, c, cell); err != nil {
			failed = append(failed, fmt.Errorf("cell %s: %w", c.id, err))
			continue
		}
		refreshed++
	}
	fmt.Fprintf(o.IO.ErrOut, "experiment: refreshed %d result files from their raw measurements, %d failed\n", refreshed, len(failed))
	if !o.NoResults {
		if err := writeResults(o.IO, resultsDir, md); err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("experiment --refresh:\n%w", errors.Join(failed...))
	}
	return nil
}

// refreshCell rebuilds the verify report of cell (c's result file, read
// by stateOf) from the raw measurements in c's work folder and rewrites it.
func refreshCell(resultsDir string, c *expCell, cell *results.Cell) error {
	// A raw file belongs to the cell when its command is one of the cell's
	// recorded command lines and it measured the same model file.
	fromRaw := func(dir string) (*report.Report, error) {
		p := filepath.Join(dir, "raw.json")
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w (the verify run's raw measurements are needed to refresh its result)", err)
		}
		var raw RawResult
		if err := json.Unmarshal(b, &raw); err != nil || raw.Schema != rawSchema {
			return nil, fmt.Errorf("%s is not a verify raw.json (%s)", p, rawSchema)
		}
		r := buildReport(&raw)
		if !slices.Contains(cell.Commands, r.Command) || r.Model.SHA256 != cell.Verify.Model.SHA256 {
			return nil, fmt.Errorf("%s is of another verify run than the result file records (command or model differ)", p)
		}
		return r, nil
	}
	r, err := fromRaw(filepath.Join(c.cellDir, "verify"))
	if err != nil {
		return err
	}
	if cell.Verify.Smoothing != nil {
		sm, err := fromRaw(filepath.Join(c.cellDir, "verify-smoothing"))
		if err != nil {
			return err
		}
		r.Smoothing = sm.Smoothing
	}
	r.Schema = cell.Verify.Schema
	cell.Verify = r
	_, err = results.WriteFile(resultsDir, cell)
	return err
}

func (c *expCell) commands(cfg *ExperimentConfig, g *GlobalOptions) []string {
	a := c.args(cfg)
	var out []string
	if a.train != nil {
		out = append(out, commandLine(g, "train", a.train))
	}
	if a.compress != nil {
		out = append(out, commandLine(g, "compress", a.compress))
	}
	out = append(out, commandLine(g, "verify", a.verify))
	if a.smoothing != nil {
		out = append(out, commandLine(g, "verify", a.smoothing))
	}
	return out
}

// experiment is one run over the chosen cells.
type experiment struct {
	o          *ExperimentOptions
	cfg        *ExperimentConfig
	g          GlobalOptions
	steps      expSteps
	resultsDir string
	// failedDense remembers dense models that failed to train in this run,
	// so their other cells fail at once instead of training again.
	failedDense map[string]error
}

// stepIO sends a step's stdout (per-epoch JSON lines) to a log file and
// its stderr to the log and the experiment's stderr.
func (x *experiment) stepIO(logPath string) (*IOStreams, func(), error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return &IOStreams{In: x.o.IO.In, Out: f, ErrOut: io.MultiWriter(f, x.o.IO.ErrOut)}, func() { f.Close() }, nil
}

// trainDense trains the cell's dense model unless a finished one exists,
// and records its report in cell.
func (x *experiment) trainDense(ctx context.Context, c *expCell, g *GlobalOptions, a cellArgs, cell *results.Cell) error {
	if err := x.failedDense[c.denseDir]; err != nil {
		return fmt.Errorf("dense model %s failed to train earlier in this run: %w", c.denseModel(), err)
	}
	if err := claimSettings(c.denseModel(), c.settings["train"]); err != nil {
		return err
	}
	trainJSON, err := os.ReadFile(c.denseModel() + ".json")
	if err != nil || !json.Valid(trainJSON) || !fileExists(c.denseModel()) {
		opts, done, err := prepareStep(x, NewCmdTrain, g, "train", a.train, filepath.Join(c.denseDir, "train.log"))
		if err != nil {
			return err
		}
		fmt.Fprintf(x.o.IO.ErrOut, "experiment: %s: training %s\n", c.id, c.denseModel())
		err = x.steps.train(ctx, opts)
		done()
		if err != nil {
			if ctx.Err() == nil {
				x.failedDense[c.denseDir] = err
			}
			return fmt.Errorf("train: %w", err)
		}
		if trainJSON, err = os.ReadFile(c.denseModel() + ".json"); err != nil {
			return err
		}
	}
	cell.Train = json.RawMessage(trainJSON)
	var tr TrainReport
	if err := json.Unmarshal(trainJSON, &tr); err != nil {
		return fmt.Errorf("%s.json: %w", c.denseModel(), err)
	}
	cell.Wall.Train = tr.WallSeconds
	return nil
}

func (x *experiment) runCell(ctx context.Context, c *expCell) (string, error) {
	g := x.g
	g.Seed = c.seed
	a := c.args(x.cfg)
	cell := &results.Cell{ID: c.id, Experiment: x.cfg.Name, ConfigFile: x.o.Config, Tool: "csam-onnx " + Version,
		Data: c.data.Name, DataSpec: c.data.Spec, Arch: c.arch.Name, Method: c.method.Name, MethodOrder: c.order,
		Seed: c.seed, Settings: c.settings, Fingerprint: c.fingerprint, Commands: c.commands(x.cfg, &g)}

	// 1. The dense model: given (its train report, when one lies next to
	// it, is kept), or trained once per (data, arch, seed).
	if c.pretrained() {
		if js, err := os.ReadFile(c.denseModel() + ".json"); err == nil && json.Valid(js) {
			cell.Train = json.RawMessage(js)
		}
	} else if err := x.trainDense(ctx, c, &g, a, cell); err != nil {
		return "", err
	}

	// 2. Compression (resumable through its checkpoint folder).
	if !c.dense() {
		cell.Sparsity = c.sparsity
		cell.BaseMethod = c.baseMethod()
		if err := claimSettings(c.model(), append(slices.Clone(c.settings["train"]), c.settings["compress"]...)); err != nil {
			return "", err
		}
		compJSON, err := os.ReadFile(c.model() + ".json")
		if err != nil || !json.Valid(compJSON) || !fileExists(c.model()) {
			opts, done, err := prepareStep(x, NewCmdCompress, &g, "compress", a.compress, filepath.Join(c.cellDir, "compress.log"))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(x.o.IO.ErrOut, "experiment: %s: compressing to %s\n", c.id, c.model())
			err = x.steps.compress(ctx, opts)
			done()
			if err != nil {
				return "", fmt.Errorf("compress: %w", err)
			}
			if compJSON, err = os.ReadFile(c.model() + ".json"); err != nil {
				return "", err
			}
		}
		var cr CompressReport
		if err := json.Unmarshal(compJSON, &cr); err != nil {
			return "", fmt.Errorf("%s.json: %w", c.model(), err)
		}
		cell.Compress = json.RawMessage(compJSON)
		cell.Wall.Compress = cr.WallSeconds
	}

	// 3. Verification (reruns; it has no checkpoints).
	verify := func(args []string) (*report.Report, float64, error) {
		opts, done, err := prepareStep(x, NewCmdVerify, &g, "verify", args, filepath.Join(c.cellDir, "verify.log"))
		if err != nil {
			return nil, 0, err
		}
		start := time.Now()
		err = x.steps.verify(ctx, opts)
		done()
		if err != nil {
			return nil, 0, fmt.Errorf("verify: %w", err)
		}
		f, err := os.Open(filepath.Join(opts.Output, "report.json"))
		if err != nil {
			return nil, 0, err
		}
		defer f.Close()
		r, err := report.ReadJSON(f)
		return r, time.Since(start).Seconds(), err
	}
	var err error
	if cell.Verify, cell.Wall.Verify, err = verify(a.verify); err != nil {
		return "", err
	}
	if a.smoothing != nil {
		sm, wall, err := verify(a.smoothing)
		if err != nil {
			return "", fmt.Errorf("smoothing pass: %w", err)
		}
		cell.Verify.Smoothing = sm.Smoothing
		cell.Wall.Smoothing = wall
	}
	return results.WriteFile(x.resultsDir, cell)
}

// prepareStep parses a step's arguments into its options, as its command
// line would, with the step's output going to logPath; it records the
// equivalent command line in the options. done closes the log.
func prepareStep[T any](x *experiment, newCmd func(*IOStreams, *GlobalOptions, func(context.Context, *T) error) *cobra.Command,
	g *GlobalOptions, verb string, args []string, logPath string) (opts *T, done func(), err error) {
	ios, done, err := x.stepIO(logPath)
	if err != nil {
		return nil, nil, err
	}
	if opts, err = parseVerb(newCmd, ios, g, args); err != nil {
		done()
		return nil, nil, fmt.Errorf("%s %s: %w", verb, strings.Join(args, " "), err)
	}
	line := []string{commandLine(g, verb, args)}
	switch o := any(opts).(type) {
	case *TrainOptions:
		o.Args = line
	case *CompressOptions:
		o.Args = line
	case *VerifyOptions:
		o.Args = line
	}
	fmt.Fprintf(ios.Out, "# %s\n", line[0])
	return opts, done, nil
}

// claimSettings records next to a model (MODEL.settings) the settings it
// is made with, before it is made, and refuses to reuse or resume a model
// made with other settings: a changed configuration must not silently
// reuse old models.
func claimSettings(model string, settings []string) error {
	p := model + ".settings"
	want := strings.Join(settings, "\n") + "\n"
	b, err := os.ReadFile(p)
	switch {
	case err == nil && string(b) == want:
		return nil
	case err == nil:
		return fmt.Errorf("%s (and its checkpoints) were made with other settings than the configuration's:\n%s\nnow:\n%s"+
			"delete %s to redo it with the new settings, or give the changed entry a new name", model, b, want, filepath.Dir(p))
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(want), 0o644)
}

// The flags of each step that the experiment sets itself (paths, seed,
// resumption, the cell's method and sparsity): a configuration may not.
var (
	trainSetFlags    = []string{"data", "output", "o", "init", "resume", "checkpoint", "seed"}
	compressSetFlags = []string{"data", "output", "o", "sparsity", "method", "resume", "checkpoint-dir", "config", "seed"}
	verifySetFlags   = []string{"data", "output", "o", "baseline", "shard", "seed"}
)

// present lists the keys of flags that m sets, in the order of flags.
func present(m map[string]any, flags []string) []string {
	var out []string
	for _, k := range flags {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// fileSHA256 is the hex SHA-256 of a file's contents, or "unreadable" (the
// config check reports a missing file first).
func fileSHA256(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return "unreadable"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable"
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeResults regenerates the summary from the result files.
func writeResults(ios *IOStreams, dir, md string) error {
	cells, err := results.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(ios.ErrOut, "experiment: no result files in %s yet; no summary written\n", dir)
		return nil
	}
	if err != nil {
		return err
	}
	files, err := results.Write(cells, results.Options{Markdown: md, PlotDir: filepath.Join(dir, "plots"),
		Regenerate: fmt.Sprintf("csam-onnx experiment --results-only --results-dir %s --markdown %s", dir, md)})
	if err != nil {
		return err
	}
	fmt.Fprintf(ios.ErrOut, "experiment: wrote %s from %d result files (%d plots)\n", md, len(cells), len(files)-1)
	return nil
}
