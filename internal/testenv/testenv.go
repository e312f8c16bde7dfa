// Package testenv locates the material tests share: the read-only
// ../shared folder (third-party ONNX test data, fixtures, data sets) and the
// onnxruntime shared library.
//
// Outside CI a test whose material is missing is skipped with a message
// that says how to get it; with CI=true it fails instead, because CI is
// required to have everything.
package testenv

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// RepoRoot is the module's root folder.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir returns the path of ../shared/<elem...> next to the checkout
// (or $CSAM_SHARED_DIR/<elem...>), skipping the test when it is absent
// outside CI and failing it in CI.
func SharedDir(t testing.TB, elem ...string) string {
	t.Helper()
	base := os.Getenv("CSAM_SHARED_DIR")
	if base == "" {
		base = filepath.Join(RepoRoot(), "..", "shared")
	}
	p := filepath.Join(append([]string{base}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "shared test material "+p+" is missing (set CSAM_SHARED_DIR to the shared folder)")
	}
	return p
}

// Missing skips the test with msg, or fails it in CI.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s; CI must provide it", msg)
	}
	t.Skip(msg)
}

// ORTLibrary returns the onnxruntime shared library to test against:
// $ONNXRUNTIME_SHARED_LIBRARY_PATH, else the cache that `make setup`
// fills. It skips (fails in CI) when none is found.
func ORTLibrary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p := filepath.Join(CacheDir(), "onnxruntime-1.24.3", "libonnxruntime.so.1")
	if _, err := os.Stat(p); err != nil {
		Missing(t, "onnxruntime 1.24.3 is not installed at "+p+"; run `make setup`")
	}
	return p
}

// CacheDir is where setup puts downloaded artifacts: $CSAM_ONNX_CACHE, else
// $XDG_CACHE_HOME/csam-onnx, else ~/.cache/csam-onnx.
func CacheDir() string {
	if d := os.Getenv("CSAM_ONNX_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "csam-onnx")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "csam-onnx")
}
