package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the onnxruntime release the project is built and tested
// against; `make setup` installs exactly this one.
const ORTVersion = "1.24.3"

// LibraryEnv is the environment variable that names the onnxruntime shared
// library when no flag does.
const LibraryEnv = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// CacheDir is the folder setup fills with downloaded artifacts:
// $CSAM_ONNX_CACHE, else $XDG_CACHE_HOME/csam-onnx, else
// ~/.cache/csam-onnx.
func CacheDir() string {
	if d := os.Getenv("CSAM_ONNX_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "csam-onnx")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".cache", "csam-onnx")
	}
	return filepath.Join(home, ".cache", "csam-onnx")
}

// CachedLibraryPath is where `make setup` puts the onnxruntime shared
// library: CacheDir()/onnxruntime-1.24.3/libonnxruntime.so.1.
func CachedLibraryPath() string {
	return filepath.Join(CacheDir(), "onnxruntime-"+ORTVersion, "libonnxruntime.so.1")
}

// FindLibrary locates the onnxruntime shared library. It looks, in order,
// at flagPath (the --ort-lib flag; empty means unset), at
// $ONNXRUNTIME_SHARED_LIBRARY_PATH, then at CachedLibraryPath. A path given
// explicitly (flag or environment) must exist: FindLibrary does not fall
// through to the next place when it does not, because the user asked for
// that file. The error for a library found nowhere says how to install it.
func FindLibrary(flagPath string) (string, error) {
	if flagPath != "" {
		if err := checkFile(flagPath); err != nil {
			return "", fmt.Errorf("runtime: --ort-lib %q: %v", flagPath, err)
		}
		return flagPath, nil
	}
	if p := os.Getenv(LibraryEnv); p != "" {
		if err := checkFile(p); err != nil {
			return "", fmt.Errorf("runtime: %s=%q: %v", LibraryEnv, p, err)
		}
		return p, nil
	}
	p := CachedLibraryPath()
	if err := checkFile(p); err != nil {
		return "", fmt.Errorf("runtime: onnxruntime %s not found: no --ort-lib flag, %s is unset, and %s does not exist; "+
			"run `make setup` (it fetches onnxruntime %s into %s) or pass --ort-lib /path/to/libonnxruntime.so",
			ORTVersion, LibraryEnv, p, ORTVersion, filepath.Dir(p))
	}
	return p, nil
}

func checkFile(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file")
		}
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory, want the shared library file")
	}
	return nil
}

// The onnxruntime environment is process-wide and the binding can load only
// one library, so Init records what it did.
var lib struct {
	mu   sync.Mutex
	path string // cleaned absolute path of the loaded library; "" before success
}

// Init loads the onnxruntime shared library at libPath and creates the
// process-wide onnxruntime environment (log level: errors only). It is
// idempotent: calling it again with the same library (after cleaning the
// path) returns nil, and calling it with a different one is an error,
// because a process can hold only one onnxruntime. A failed Init may be
// retried. Init is safe for concurrent use.
func Init(libPath string) error {
	if libPath == "" {
		return errors.New("runtime: Init: empty onnxruntime library path; use FindLibrary to locate it")
	}
	abs, err := filepath.Abs(libPath)
	if err != nil {
		return fmt.Errorf("runtime: Init %q: %v", libPath, err)
	}
	lib.mu.Lock()
	defer lib.mu.Unlock()
	if lib.path != "" {
		if lib.path == abs {
			return nil
		}
		return fmt.Errorf("runtime: Init %q: onnxruntime is already loaded from %q in this process; one process can use only one library", libPath, lib.path)
	}
	if err := checkFile(abs); err != nil {
		return fmt.Errorf("runtime: Init %q: %v; run `make setup` or pass --ort-lib", libPath, err)
	}
	ort.SetSharedLibraryPath(abs)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return ortError("load library", libPath, err)
	}
	lib.path = abs
	return nil
}

// Initialized reports whether Init has succeeded in this process.
func Initialized() bool {
	lib.mu.Lock()
	defer lib.mu.Unlock()
	return lib.path != ""
}

// Version is the loaded onnxruntime's version string (for example
// "1.24.3"), or "" before Init.
func Version() string {
	if !Initialized() {
		return ""
	}
	return ort.GetVersion()
}

// ORTError is an error reported by onnxruntime (through the binding),
// with what was being done and to which model or library.
type ORTError struct {
	Op      string // "load model", "create session", "run", ...
	Subject string // the model (path or name) or the library
	Err     error  // the binding's error
}

func (e *ORTError) Error() string {
	msg := e.Err.Error()
	// The binding prefixes its own plumbing; the user needs the cause.
	for _, p := range bindingPrefixes {
		msg = strings.TrimPrefix(msg, p)
	}
	return fmt.Sprintf("runtime: %s: %s: onnxruntime: %s", e.Subject, e.Op, msg)
}

func (e *ORTError) Unwrap() error { return e.Err }

var bindingPrefixes = []string{
	"Error loading temporary session: ",
	"Error creating temporary session: ",
	"Error creating C session from file: ",
	"Error creating C session: ",
	"Error running network: ",
	"Platform-specific initialization failed: ",
}

// ortError is the one place where an error from onnxruntime (through the
// binding) becomes an error of this package.
func ortError(op, subject string, err error) error {
	return &ORTError{Op: op, Subject: subject, Err: err}
}
