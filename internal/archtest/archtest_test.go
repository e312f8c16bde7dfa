package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
)

const module = "github.com/csam-onnx/csam-onnx"

// allowed is docs/architecture.md's table: for each project package (by
// path inside the module), the project packages it may import directly.
// A package's internal/ sub-packages count as the package itself. "*"
// allows every project package.
var allowed = map[string][]string{
	"cmd/csam-onnx":     {"internal/cli"},
	"internal/cli":      {"*"},
	"internal/pipeline": {"onnxio", "graph", "tensor", "autodiff", "dataset", "corrupt", "finetune", "csam", "models", "runtime", "report"},
	"onnxio":            {"graph", "tensor"},
	"graph":             {"tensor"},
	"tensor":            {},
	"autodiff":          {"graph", "tensor"},
	"dataset":           {"tensor"},
	"corrupt":           {"tensor"},
	"finetune":          {"autodiff", "graph", "tensor", "dataset"},
	"csam":              {"finetune", "autodiff", "graph", "tensor", "dataset"},
	"models":            {"graph", "tensor"},
	"runtime":           {"onnxio", "graph", "tensor", "dataset", "corrupt"},
	"report":            {"runtime"},
	"internal/results":  {"report"},
	"internal/testenv":  {},
	"internal/archtest": {},
	// Test helpers and harnesses: never imported by the binary's packages.
	"internal/toydata":              {"finetune", "dataset", "autodiff", "graph", "tensor"},
	"autodiff/internal/conformance": {"autodiff", "graph", "tensor", "onnxio"},
	"scripts":                       {},
}

// forbidden are the directions the design insists on, checked on the
// transitive dependencies (so a path through a third package is caught).
var forbidden = map[string][]string{
	"graph":    {"onnxio", "autodiff", "runtime", "finetune", "csam", "internal/cli"},
	"tensor":   {"*"},
	"autodiff": {"onnxio", "runtime"},
	"finetune": {"runtime"},
	"csam":     {"runtime"},
	"runtime":  {"autodiff", "finetune", "csam"},
	// A training test helper knows nothing of onnxruntime either.
	"internal/toydata": {"runtime"},
}

// cobraUsers may depend on cobra (directly or through another package).
var cobraUsers = map[string]bool{"internal/cli": true, "cmd/csam-onnx": true}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

// owner maps an import path to the project package whose rules apply:
// "github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb" → "onnxio".
// It returns "" for paths outside the module.
func owner(path string) string {
	if path != module && !strings.HasPrefix(path, module+"/") {
		return ""
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
	if rel == "" {
		return "."
	}
	// A sub-package listed in the table on its own (a test harness) has
	// its own row; the longest listed prefix wins.
	best := ""
	for k := range allowed {
		if (rel == k || strings.HasPrefix(rel, k+"/")) && len(k) > len(best) {
			best = k
		}
	}
	if best != "" {
		return best
	}
	if strings.HasPrefix(rel, "internal/") || strings.HasPrefix(rel, "cmd/") {
		parts := strings.SplitN(rel, "/", 3)
		if len(parts) >= 2 {
			return parts[0] + "/" + parts[1]
		}
		return rel
	}
	if i := strings.Index(rel, "/"); i >= 0 {
		return rel[:i]
	}
	return rel
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command is not on PATH")
	}
	cmd := exec.Command(goBin, "list", "-e", "-json=ImportPath,Imports,Deps,Error", "./...")
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./... in %s: %v\n%s", cmd.Dir, err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list ./... in %s listed no packages", cmd.Dir)
	}
	return pkgs
}

func TestOwner(t *testing.T) {
	tests := []struct{ in, want string }{
		{module + "/graph", "graph"},
		{module + "/onnxio/internal/onnxpb", "onnxio"},
		{module + "/autodiff/internal/conformance", "autodiff/internal/conformance"},
		{module + "/autodiff/internal/other", "autodiff"},
		{module + "/internal/cli", "internal/cli"},
		{module + "/internal/cli/sub", "internal/cli"},
		{module + "/cmd/csam-onnx", "cmd/csam-onnx"},
		{"github.com/spf13/cobra", ""},
		{module + "x/graph", ""},
	}
	for _, tt := range tests {
		if got := owner(tt.in); got != tt.want {
			t.Errorf("owner(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func matches(list []string, p string) bool {
	for _, a := range list {
		if a == "*" || a == p {
			return true
		}
	}
	return false
}

// TestImportDirections checks every package of the module against the
// architecture table: direct project imports within the allowed list,
// no forbidden package among the transitive dependencies, cobra only
// under the CLI.
func TestImportDirections(t *testing.T) {
	pkgs := listPackages(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Error != nil {
			// A package that does not build is its owner's test failure,
			// not an architecture problem; its imports are still listed.
			t.Logf("%s: %s", p.ImportPath, p.Error.Err)
		}
		self := owner(p.ImportPath)
		if self == "" {
			continue
		}
		seen[self] = true
		rules, known := allowed[self]
		if !known {
			t.Errorf("package %s is not in docs/architecture.md's table (nor in this test's copy of it); add it to both with the packages it may import", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			o := owner(imp)
			if o == "" || o == self {
				continue
			}
			if !matches(rules, o) {
				t.Errorf("%s imports %s: %s may import only %v (docs/architecture.md)", p.ImportPath, imp, self, rules)
			}
		}
		for _, dep := range p.Deps {
			o := owner(dep)
			if o != "" && o != self && matches(forbidden[self], o) {
				t.Errorf("%s depends on %s: %s must not depend on %s, directly or through another package", p.ImportPath, dep, self, o)
			}
			if (dep == "github.com/spf13/cobra" || strings.HasPrefix(dep, "github.com/spf13/cobra/")) && !cobraUsers[self] {
				t.Errorf("%s depends on cobra: only internal/cli may", p.ImportPath)
			}
		}
	}
	// The packages this test is about must exist, or it proves nothing.
	for _, must := range []string{"graph", "tensor", "autodiff", "internal/cli", "cmd/csam-onnx"} {
		if !seen[must] {
			t.Errorf("go list found no package %s: the test ran on the wrong tree", must)
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("checked %d packages: %s", len(names), strings.Join(names, ", "))
}

// TestArchitectureDocListsEveryRule makes sure docs/architecture.md
// mentions each package of the table, so the two are edited together.
func TestArchitectureDocListsEveryRule(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	for p := range allowed {
		if p == "internal/archtest" {
			continue
		}
		if !bytes.Contains(b, []byte("`"+p+"`")) {
			t.Errorf("docs/architecture.md does not mention `%s`", p)
		}
	}
}
