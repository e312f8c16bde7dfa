package runtime_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// initORT loads onnxruntime for a test (skipping outside CI when it is not
// installed).
func initORT(t testing.TB) {
	t.Helper()
	lib := testenv.ORTLibrary(t)
	if err := runtime.Init(lib); err != nil {
		t.Fatalf("Init(%q) = %v", lib, err)
	}
}

func nodeTest(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(testenv.SharedDir(t, "onnx-conformance", "node", name), "model.onnx")
}

func TestInitIdempotent(t *testing.T) {
	initORT(t)
	lib := testenv.ORTLibrary(t)
	if err := runtime.Init(lib); err != nil {
		t.Errorf("second Init(%q) = %v, want nil", lib, err)
	}
	if err := runtime.Init(filepath.Join(filepath.Dir(lib), ".", filepath.Base(lib))); err != nil {
		t.Errorf("Init with an equivalent path = %v, want nil", err)
	}
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(other, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runtime.Init(other); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Init(other library) = %v, want an error saying one is already loaded", err)
	}
	if v := runtime.Version(); v != runtime.ORTVersion {
		t.Errorf("Version() = %q, want %q", v, runtime.ORTVersion)
	}
}

func TestFindLibrary(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib.so")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	cached := filepath.Join(cache, "onnxruntime-"+runtime.ORTVersion, "libonnxruntime.so.1")

	tests := []struct {
		name, flag, env string
		makeCache       bool
		want            string // "" means an error is expected
		wantErr         string
	}{
		{name: "flag", flag: lib, env: "/nonexistent", want: lib},
		{name: "missing flag", flag: filepath.Join(dir, "nope.so"), wantErr: "--ort-lib"},
		{name: "env", env: lib, want: lib},
		{name: "missing env", env: filepath.Join(dir, "nope.so"), wantErr: runtime.LibraryEnv},
		{name: "cache", makeCache: true, want: cached},
		{name: "nothing", wantErr: "make setup"},
		{name: "flag is a directory", flag: dir, wantErr: "directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(runtime.LibraryEnv, tt.env)
			c := t.TempDir()
			if tt.makeCache {
				c = cache
				if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cached, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("CSAM_ONNX_CACHE", c)
			got, err := runtime.FindLibrary(tt.flag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FindLibrary(%q) = %q, %v; want an error mentioning %q", tt.flag, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FindLibrary(%q) = %q, %v; want %q", tt.flag, got, err, tt.want)
			}
		})
	}
}

func TestRunAdd(t *testing.T) {
	initORT(t)
	path := nodeTest(t, "test_add")
	s, err := runtime.Open(path, &runtime.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ins, outs := s.Inputs(), s.Outputs()
	if len(ins) != 2 || ins[0].Name != "x" || ins[0].DType != tensor.Float32 || len(ins[0].Shape) != 3 || ins[0].Shape[2] != 5 {
		t.Fatalf("Inputs() = %v, want x, y float32[3 4 5]", ins)
	}
	if len(outs) != 1 || outs[0].Name != "sum" {
		t.Fatalf("Outputs() = %v, want sum", outs)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x, y := tensor.New(3, 4, 5), tensor.New(3, 4, 5)
	for i := range x.F32 {
		x.F32[i], y.F32[i] = rng.Float32(), rng.Float32()
	}
	got, err := s.Run([]*tensor.Tensor{x, y})
	if err != nil {
		t.Fatal(err)
	}
	for i := range x.F32 {
		// float32 addition is exact to the bit in any implementation.
		if want := x.F32[i] + y.F32[i]; got[0].F32[i] != want {
			t.Fatalf("sum[%d] = %v, want %v", i, got[0].F32[i], want)
		}
	}

	// Wrong input count, type and shape are errors naming the model.
	bad := []struct {
		name string
		in   []*tensor.Tensor
		want string
	}{
		{"count", []*tensor.Tensor{x}, "got 1 inputs"},
		{"dtype", []*tensor.Tensor{x, tensor.FromInt64(make([]int64, 60), 3, 4, 5)}, "wants float32"},
		{"shape", []*tensor.Tensor{x, tensor.New(3, 4, 6)}, "got shape [3 4 6]"},
		{"nil", []*tensor.Tensor{x, nil}, "nil"},
	}
	for _, b := range bad {
		_, err := s.Run(b.in)
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("Run(%s) = %v, want an error naming %s and %q", b.name, err, path, b.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if _, err := s.Run([]*tensor.Tensor{x, y}); err == nil {
		t.Errorf("Run after Close = nil error, want ErrClosed")
	}
}

func TestRunIntegerTypes(t *testing.T) {
	initORT(t)
	for _, tc := range []struct {
		test  string
		dtype tensor.DType
		max   int64
	}{
		{"test_add_uint8", tensor.Uint8, 100},
		{"test_add_int16", tensor.Int16, 1000},
		{"test_add_int8", tensor.Int8, 50},
	} {
		t.Run(tc.test, func(t *testing.T) {
			path := filepath.Join(testenv.SharedDir(t, "onnx-conformance", "node", tc.test), "model.onnx")
			s, err := runtime.Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rng := rand.New(rand.NewPCG(3, 4))
			mk := func() *tensor.Tensor {
				v := make([]int64, 60)
				for i := range v {
					v[i] = rng.Int64N(tc.max)
				}
				return &tensor.Tensor{DType: tc.dtype, Shape: []int{3, 4, 5}, I64: v}
			}
			x, y := mk(), mk()
			got, err := s.Run([]*tensor.Tensor{x, y})
			if err != nil {
				t.Fatal(err)
			}
			if got[0].DType != tc.dtype {
				t.Fatalf("output dtype = %s, want %s", got[0].DType, tc.dtype)
			}
			for i := range x.I64 {
				if want := x.I64[i] + y.I64[i]; got[0].I64[i] != want {
					t.Fatalf("sum[%d] = %d, want %d", i, got[0].I64[i], want)
				}
			}
		})
	}
}

func TestRunShapeInt64Output(t *testing.T) {
	initORT(t)
	s, err := runtime.Open(nodeTest(t, "test_shape"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Run([]*tensor.Tensor{tensor.New(3, 4, 5)})
	if err != nil {
		t.Fatal(err)
	}
	if g := got[0]; g.DType != tensor.Int64 || len(g.I64) != 3 || g.I64[0] != 3 || g.I64[1] != 4 || g.I64[2] != 5 {
		t.Errorf("Shape output = %v %v, want int64 [3 4 5]", g, g.I64)
	}
}

func TestRunScalarOutput(t *testing.T) {
	initORT(t)
	s, err := runtime.Open(nodeTest(t, "test_matmul_1d_1d"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := tensor.FromFloat32([]float32{1, 2, 3}, 3)
	b := tensor.FromFloat32([]float32{4, 5, 6}, 3)
	got, err := s.Run([]*tensor.Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	// Small integers: the dot product is exact in float32.
	if g := got[0]; len(g.Shape) != 0 || len(g.F32) != 1 || g.F32[0] != 32 {
		t.Errorf("MatMul 1-D·1-D = %v %v, want a float32 scalar 32", g, g.F32)
	}
}

func TestRunNoInputs(t *testing.T) {
	initORT(t)
	path := nodeTest(t, "test_constant")
	s, err := runtime.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Run(nil); err == nil || !strings.Contains(err.Error(), "no inputs") {
		t.Errorf("Run on a model without inputs = %v, want an error saying it has no inputs", err)
	}
}

func TestOpenErrors(t *testing.T) {
	initORT(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	if err := os.WriteFile(garbage, []byte("this is not a protobuf"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(dir, "missing.onnx")},
		{"garbage", garbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := runtime.Open(tc.path, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.path)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Open(%q) error %q does not name the file", tc.path, err)
			}
			var oe *runtime.ORTError
			if isORT := errors.As(err, &oe); isORT != (tc.name == "garbage") {
				t.Errorf("Open(%q): errors.As(*ORTError) = %v, want it only for onnxruntime's own errors", tc.path, isORT)
			}
		})
	}
	if _, err := runtime.OpenBytes([]byte("junk"), &runtime.SessionOptions{Name: "junk.onnx"}); err == nil || !strings.Contains(err.Error(), "junk.onnx") {
		t.Errorf("OpenBytes(junk) = %v, want an error naming junk.onnx", err)
	}
	if _, err := runtime.Open(nodeTest(t, "test_add"), &runtime.SessionOptions{IntraOpThreads: -1}); err == nil {
		t.Errorf("Open with IntraOpThreads -1 succeeded, want an error")
	}
}

func TestOpenBytesMatchesOpen(t *testing.T) {
	initORT(t)
	path := nodeTest(t, "test_matmul_1d_1d")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.OpenBytes(data, &runtime.SessionOptions{Name: path, DisableSpinning: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Run([]*tensor.Tensor{tensor.FromFloat32([]float32{0.5, -2, 1}, 3), tensor.FromFloat32([]float32{2, 0.25, 8}, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if g := got[0].F32[0]; math.Abs(float64(g)-8.5) > 0 {
		t.Errorf("dot = %v, want 8.5 exactly (dyadic values)", g)
	}
}

// TestRunConcurrent: Run is safe from several goroutines (run with -race).
func TestRunConcurrent(t *testing.T) {
	initORT(t)
	s, err := runtime.Open(nodeTest(t, "test_add"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x, y := tensor.New(3, 4, 5), tensor.New(3, 4, 5)
			for i := range x.F32 {
				x.F32[i], y.F32[i] = float32(g), float32(i)
			}
			for range 20 {
				out, err := s.Run([]*tensor.Tensor{x, y})
				if err != nil {
					errs[g] = err
					return
				}
				for i, v := range out[0].F32 {
					if v != float32(g+i) {
						errs[g] = fmt.Errorf("goroutine %d: sum[%d] = %v, want %d", g, i, v, g+i)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
