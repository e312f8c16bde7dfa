package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
)

// TestScript runs the end-to-end scripts in testdata/script/*.txtar
// against the real binary, built once into a temporary folder that is put
// first on the scripts' PATH. Scripts see:
//
//	$MODELS  the committed fixtures (testdata/models)
//	$BAD     onnxio's committed bad files (onnxio/testdata/bad)
//	ONNXRUNTIME_SHARED_LIBRARY_PATH  the library the tests use
func TestScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	lib := testenv.ORTLibrary(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command is not on PATH; it is needed to build the binary")
	}
	binDir := t.TempDir()
	build := exec.Command(goBin, "build", "-o", filepath.Join(binDir, "csam-onnx"), "./cmd/csam-onnx")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/csam-onnx: %v\n%s", err, out)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("MODELS", modelsDir())
			env.Setenv("BAD", filepath.Join(testenv.RepoRoot(), "onnxio", "testdata", "bad"))
			env.Setenv("ONNXRUNTIME_SHARED_LIBRARY_PATH", lib)
			return nil
		},
	})
}
