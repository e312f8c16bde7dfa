package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/csam-onnx/csam-onnx/report"
)

// Schema identifies the cell file format.
const Schema = "csam-onnx/experiment-cell/v1"

// Cell is the result of one experiment cell, written as <ID>.json.
type Cell struct {
	Schema     string `json:"schema"`
	ID         string `json:"id"`
	Experiment string `json:"experiment"`
	// ConfigFile is the experiment YAML the cell came from.
	ConfigFile string `json:"config_file"`
	Tool       string `json:"tool"`

	Data     string `json:"data"`      // data entry name, e.g. cifar10
	DataSpec string `json:"data_spec"` // the --data spec
	Arch     string `json:"arch"`      // architecture entry name, e.g. resnet18-w0.5
	// Sparsity is the target sparsity; 0 for the dense cell, which is
	// shared by every sparsity of its (data, arch, seed).
	Sparsity float64 `json:"sparsity"`
	// Method is the method entry name (e.g. csam, csam-B, magnitude,
	// dense); BaseMethod the compress --method it runs ("" for dense).
	Method     string `json:"method"`
	BaseMethod string `json:"base_method,omitempty"`
	// MethodOrder is the entry's position in the experiment's method list,
	// the row order of the tables.
	MethodOrder int    `json:"method_order"`
	Seed        uint64 `json:"seed"`

	// Settings are the flags each step ran with, by step (train,
	// compress, verify, smoothing); Fingerprint hashes them so a changed
	// configuration is noticed.
	Settings    map[string][]string `json:"settings"`
	Fingerprint string              `json:"fingerprint"`
	// Commands are the equivalent csam-onnx command lines, in order.
	Commands []string `json:"commands"`

	Train    json.RawMessage `json:"train_report,omitempty"`
	Compress json.RawMessage `json:"compress_report,omitempty"`
	Verify   *report.Report  `json:"verify_report"`

	Wall Wall `json:"wall_seconds"`
}

// Wall is the wall time of each step in seconds. Train is the dense
// model's training time, which every cell of its (data, arch, seed) shares.
type Wall struct {
	Train     float64 `json:"train"`
	Compress  float64 `json:"compress"`
	Verify    float64 `json:"verify"`
	Smoothing float64 `json:"smoothing,omitempty"`
}

// Dense reports whether the cell is the unpruned reference.
func (c *Cell) Dense() bool { return c.BaseMethod == "" }

// Validate checks that the cell holds what the summary needs.
func (c *Cell) Validate() error {
	var errs []error
	if c.Schema != Schema {
		errs = append(errs, fmt.Errorf("schema %q, want %q", c.Schema, Schema))
	}
	if c.ID == "" || c.Data == "" || c.Arch == "" || c.Method == "" {
		errs = append(errs, errors.New("id, data, arch and method must be set"))
	}
	if c.Verify == nil {
		errs = append(errs, errors.New("verify_report is missing"))
	}
	return errors.Join(errs...)
}

// ReadFile reads and validates one cell file; its name must be <ID>.json.
func ReadFile(path string) (*Cell, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	var c Cell
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("results: %s is not a cell result file: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("results: %s: %w", path, err)
	}
	if want := strings.TrimSuffix(filepath.Base(path), ".json"); c.ID != want {
		return nil, fmt.Errorf("results: %s holds cell %q; the file must be named %s.json", path, c.ID, c.ID)
	}
	return &c, nil
}

// WriteFile writes c as indented JSON to dir/<ID>.json atomically.
func WriteFile(dir string, c *Cell) (string, error) {
	c.Schema = Schema
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("results: cell %s: %w", c.ID, err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", fmt.Errorf("results: cell %s: %w", c.ID, err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	path := filepath.Join(dir, c.ID+".json")
	return path, writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("results: writing %s: %w", path, werr)
	}
	return nil
}

// ReadDir reads every *.json file directly in dir (not in subfolders) as
// a cell, sorted by ID. Any file that is not a valid cell is an error
// naming it.
func ReadDir(dir string) ([]*Cell, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	var cells []*Cell
	var errs []error
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c, err := ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cells = append(cells, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(cells, func(a, b *Cell) int { return strings.Compare(a.ID, b.ID) })
	return cells, nil
}
