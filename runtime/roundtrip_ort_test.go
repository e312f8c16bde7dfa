package runtime_test

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// ortPassing lists the test folders of one onnx-conformance folder that
// onnxruntime passes on every data set, per <folder>.ort-results.tsv.
func ortPassing(t *testing.T, conf, folder string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(conf, folder+".ort-results.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pass := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 2 {
			continue // header and summary lines
		}
		switch fields[0] {
		case "PASS":
			if _, seen := pass[fields[1]]; !seen {
				pass[fields[1]] = true
			}
		case "FAIL", "ERROR", "SKIP":
			pass[fields[1]] = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for d, ok := range pass {
		if ok {
			dirs = append(dirs, filepath.Join(conf, folder, d))
		}
	}
	slices.Sort(dirs)
	return dirs
}

// TestRoundTripORT is the onnxruntime half of issue 2's round trip: every
// model onnxruntime runs is read with onnxio and written back, and both
// files must give bit-identical outputs on the stored test inputs.
func TestRoundTripORT(t *testing.T) {
	initORT(t)
	conf := testenv.SharedDir(t, "onnx-conformance")
	fixtures := testenv.SharedDir(t, "fixtures", "torch-1.13")

	var dirs []string
	for _, folder := range []string{"node", "node-v1.12.0", "pytorch-operator", "light-models"} {
		dirs = append(dirs, ortPassing(t, conf, folder)...)
	}
	ents, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && !strings.HasSuffix(e.Name(), "_train") {
			dirs = append(dirs, filepath.Join(fixtures, e.Name()))
		}
	}
	if len(dirs) < 500 {
		t.Fatalf("found %d models onnxruntime passes, want the ~550 of the shared material", len(dirs))
	}

	start := time.Now()
	var mu sync.Mutex
	models, sets := 0, 0
	// The models run two at a time (-parallel defaults to GOMAXPROCS),
	// each session on one thread; the group returns when all are done.
	t.Run("models", func(t *testing.T) {
		for _, dir := range dirs {
			name, _ := filepath.Rel(filepath.Dir(filepath.Dir(dir)), dir)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				n := roundTripOne(t, dir)
				if !t.Failed() {
					mu.Lock()
					models++
					sets += n
					mu.Unlock()
				}
			})
		}
	})
	t.Logf("round trip in onnxruntime %s: %d of %d models (%d test data sets) give bit-identical outputs after onnxio read → write, in %v",
		runtime.Version(), models, len(dirs), sets, time.Since(start).Round(time.Millisecond))
}

func roundTripOne(t *testing.T, dir string) int {
	path := filepath.Join(dir, "model.onnx")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// AnyVersion: onnxio refuses ai.onnx opsets below 6 by policy, but two
	// node-v1.12.0 tests use opset 1 and onnxruntime runs them, so the
	// round trip covers them too (as onnxio's own round-trip test does).
	m, err := onnxio.ReadFileWith(path, &onnxio.ReadOptions{AnyVersion: true})
	if err != nil {
		t.Fatalf("onnxio.ReadFileWith: %v", err)
	}
	rewritten, err := onnxio.Marshal(m)
	if err != nil {
		t.Fatalf("onnxio.Marshal: %v", err)
	}
	opts := &runtime.SessionOptions{IntraOpThreads: 1, DisableSpinning: true, Name: path}
	s1, err := runtime.OpenBytes(orig, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	opts.Name = path + " (rewritten)"
	s2, err := runtime.OpenBytes(rewritten, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !sameIO(s1.Inputs(), s2.Inputs()) || !sameIO(s1.Outputs(), s2.Outputs()) {
		t.Fatalf("inputs/outputs differ: %v → %v, %v → %v", s1.Inputs(), s2.Inputs(), s1.Outputs(), s2.Outputs())
	}
	setDirs, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(setDirs) == 0 {
		t.Fatalf("no test_data_set_* in %s", dir)
	}
	for _, sd := range setDirs {
		var inputs []*tensor.Tensor
		for k := 0; ; k++ {
			f := filepath.Join(sd, fmt.Sprintf("input_%d.pb", k))
			if _, err := os.Stat(f); err != nil {
				break
			}
			in, err := onnxio.ReadTensorFile(f)
			if err != nil {
				t.Fatalf("ReadTensorFile: %v", err)
			}
			inputs = append(inputs, in)
		}
		want, err := s1.Run(inputs)
		if err != nil {
			t.Fatalf("%s: original: %v", filepath.Base(sd), err)
		}
		got, err := s2.Run(inputs)
		if err != nil {
			t.Fatalf("%s: rewritten: %v", filepath.Base(sd), err)
		}
		for j := range want {
			if msg := bitDiff(want[j], got[j]); msg != "" {
				t.Errorf("%s: output %q: %s", filepath.Base(sd), s1.Outputs()[j].Name, msg)
			}
		}
	}
	return len(setDirs)
}

func sameIO(a, b []runtime.IOInfo) bool {
	return slices.EqualFunc(a, b, func(x, y runtime.IOInfo) bool {
		return x.Name == y.Name && x.DType == y.DType && x.Kind == y.Kind && slices.Equal(x.Shape, y.Shape)
	})
}

// bitDiff describes the first difference between two tensors' types,
// shapes or element bits, or returns "".
func bitDiff(a, b *tensor.Tensor) string {
	if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) {
		return fmt.Sprintf("%v vs %v", a, b)
	}
	switch {
	case a.F32 != nil || b.F32 != nil:
		if len(a.F32) != len(b.F32) {
			return fmt.Sprintf("%d vs %d values", len(a.F32), len(b.F32))
		}
		for i := range a.F32 {
			if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
				return fmt.Sprintf("element %d: %v vs %v", i, a.F32[i], b.F32[i])
			}
		}
	case a.F64 != nil || b.F64 != nil:
		if !slices.EqualFunc(a.F64, b.F64, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }) {
			return "float64 values differ"
		}
	case a.I64 != nil || b.I64 != nil:
		if !slices.Equal(a.I64, b.I64) {
			return "integer values differ"
		}
	case a.Raw != nil || b.Raw != nil:
		if !slices.Equal(a.Raw, b.Raw) {
			return "raw bytes differ"
		}
	case a.Str != nil || b.Str != nil:
		if !slices.EqualFunc(a.Str, b.Str, func(x, y []byte) bool { return string(x) == string(y) }) {
			return "strings differ"
		}
	}
	return ""
}
