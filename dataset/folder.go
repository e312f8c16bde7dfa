package dataset

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"sync"
)

// FolderOptions configure LoadFolder. The zero value (or nil) means: no
// split subfolder, images kept at their own (common) size, RGB, one
// decoder per CPU, stop at the first undecodable file.
type FolderOptions struct {
	// Split selects a split subfolder: images are taken from
	// …/<Split>/<class>/<file>. Empty means root/<class>/<file>.
	Split string
	// Size, when > 0, resizes every image to Size×Size (centre crop to a
	// square, then area averaging to shrink or bilinear to grow; see
	// resizeCHW). When 0 all images must share one size.
	Size int
	// Channels is 3 (RGB, the default) or 1 (luma).
	Channels int
	// Workers bounds the number of images decoded at once; 0 means
	// GOMAXPROCS.
	Workers int
	// SkipBad skips files that fail to decode instead of failing; they are
	// listed in Dataset.Skipped.
	SkipBad bool
	// ClassFile is an extra class-list file to consult (see LoadFolder)
	// when the tree itself holds none; a missing file is ignored.
	ClassFile string
}

// classFileNames are the class-list files LoadFolder looks for.
var classFileNames = []string{"classes.txt", "batches.meta.txt"}

// maxEntryBytes bounds one image file read from a tarball.
const maxEntryBytes = 256 << 20

// LoadFolder reads a labelled image tree, root/<class>/*.{jpg,jpeg,png}
// (or root/…/<split>/<class>/* with opts.Split), where root is a
// directory, a .tar or a .tar.gz/.tgz file. Files are decoded as JPEG or
// PNG by content with Go's image/jpeg and image/png, in parallel by a
// bounded pool of workers; other files are ignored.
//
// Images are ordered by class, then by path. Class order (the labels) is
// taken from a class-list file when the tree has one (classes.txt or
// batches.meta.txt at the split's parent or any level above) or when
// opts.ClassFile names one; otherwise it is the sorted folder names of all
// splits. A class-list file has one class per line in label order: either
// just the folder name, or the folder name, a space and a display name
// (which becomes the class name). When the tree has split subfolders,
// every split must hold every class folder, so that labels mean the same
// in every split.
func LoadFolder(ctx context.Context, root string, opts *FolderOptions) (*Dataset, error) {
	var o FolderOptions
	if opts != nil {
		o = *opts
	}
	if o.Channels == 0 {
		o.Channels = 3
	}
	if o.Channels != 1 && o.Channels != 3 {
		return nil, fmt.Errorf("dataset: %s: %d channels requested, want 1 or 3", root, o.Channels)
	}
	if o.Workers <= 0 {
		o.Workers = goruntime.GOMAXPROCS(0)
	}
	if o.Size < 0 {
		return nil, fmt.Errorf("dataset: %s: image size %d is negative", root, o.Size)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	l := &folderLoad{root: root, opts: o, splitClasses: map[string]map[string]bool{}, classText: map[string]string{}}
	if st.IsDir() {
		err = l.walkDir(ctx)
	} else {
		err = l.walkTar(ctx)
	}
	if err != nil {
		return nil, err
	}
	return l.finish()
}

type folderLoad struct {
	root string
	opts FolderOptions

	mu        sync.Mutex
	images    []decoded
	skipped   []string
	firstErr  error
	classText map[string]string // dir (slash path, "" for root) → class-list file text
	// splitClasses[parent path of class dirs] = set of class folders seen.
	splitClasses map[string]map[string]bool
	deeper       map[string]bool // split folder names seen when Split == ""
}

type decoded struct {
	rel   string // slash path relative to root
	class string
	pix   []uint8
	h, w  int
}

type job struct {
	rel  string
	file string // read from disk when data is nil
	data []byte
}

// accept decides whether the image at slash path rel (relative to root)
// belongs to the selected split, and its class folder. It also records the
// class folders of every split.
func (l *folderLoad) accept(rel string) (class string, ok bool) {
	parts := strings.Split(rel, "/")
	if len(parts) < 2 {
		return "", false // a file at the root has no class
	}
	class = parts[len(parts)-2]
	parent := strings.Join(parts[:len(parts)-2], "/")
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.splitClasses[parent]
	if set == nil {
		set = map[string]bool{}
		l.splitClasses[parent] = set
	}
	set[class] = true
	if l.opts.Split == "" {
		// root/<class>/<file>, or <top>/<class>/<file> in a tarball that
		// wraps everything in one folder (checked in finish).
		return class, len(parts) <= 3
	}
	return class, len(parts) >= 3 && parts[len(parts)-3] == l.opts.Split
}

// isImageName reports whether a file name has an image extension and is
// not hidden (macOS tarballs carry "._name.jpg" resource forks).
func isImageName(name string) bool {
	if strings.HasPrefix(path.Base(name), ".") {
		return false
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// pool runs the decoders: it returns the channel to send jobs to and a
// function that closes it and waits for the workers.
func (l *folderLoad) pool(ctx context.Context, cancel context.CancelCauseFunc) (chan<- job, func()) {
	jobs := make(chan job, 2*l.opts.Workers)
	var wg sync.WaitGroup
	for range l.opts.Workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				data := j.data
				if data == nil {
					b, err := os.ReadFile(j.file)
					if err != nil {
						cancel(fmt.Errorf("dataset: %w", err))
						continue
					}
					data = b
				}
				class, _ := l.accept(j.rel)
				pix, h, w, err := decodeImage(data, l.opts.Channels, l.opts.Size, l.opts.Size)
				l.mu.Lock()
				if err != nil {
					where := filepath.Join(l.root, filepath.FromSlash(j.rel))
					if j.file == "" {
						where = l.root + ": " + j.rel
					}
					if l.opts.SkipBad {
						l.skipped = append(l.skipped, where)
					} else {
						cancel(fmt.Errorf("dataset: %s: %v (--skip-bad, or FolderOptions.SkipBad, skips undecodable files and counts them)", where, err))
					}
				} else {
					l.images = append(l.images, decoded{rel: j.rel, class: class, pix: pix, h: h, w: w})
				}
				l.mu.Unlock()
			}
		})
	}
	return jobs, func() { close(jobs); wg.Wait() }
}

func (l *folderLoad) walkDir(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs, wait := l.pool(ctx, cancel)
	// WalkDir does not descend into a root that is a symbolic link.
	walkRoot := l.root
	if r, err := filepath.EvalSymlinks(l.root); err == nil {
		walkRoot = r
	}
	err := filepath.WalkDir(walkRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(walkRoot, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if slices.Contains(classFileNames, e.Name()) {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			l.classText[relDir(rel)] = string(b)
			return nil
		}
		if !isImageName(e.Name()) {
			return nil
		}
		if _, ok := l.accept(rel); !ok {
			return nil
		}
		select {
		case jobs <- job{rel: rel, file: p}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		return nil
	})
	wait()
	if c := context.Cause(ctx); c != nil {
		return c
	}
	if err != nil {
		return fmt.Errorf("dataset: %s: %w", l.root, err)
	}
	return nil
}

func (l *folderLoad) walkTar(ctx context.Context) error {
	f, err := os.Open(l.root)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("dataset: %s: %w", l.root, err)
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs, wait := l.pool(ctx, cancel)
	err = func() error {
		for n := 0; ; n++ {
			if ctx.Err() != nil {
				return nil
			}
			hdr, err := tr.Next()
			if err == io.EOF {
				if n == 0 {
					return fmt.Errorf("dataset: %s: empty tar archive", l.root)
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("dataset: %s: reading the archive after %d entries: %w (is it a .tar or .tar.gz, and complete?)", l.root, n, err)
			}
			if hdr.Typeflag != tar.TypeReg {
				continue
			}
			rel := strings.TrimLeft(path.Clean(hdr.Name), "/")
			if strings.HasPrefix(rel, "__MACOSX/") {
				continue
			}
			base := path.Base(rel)
			isClass := slices.Contains(classFileNames, base)
			if !isClass && !isImageName(base) {
				continue
			}
			if !isClass {
				if _, ok := l.accept(rel); !ok {
					continue
				}
			}
			if hdr.Size > maxEntryBytes {
				return fmt.Errorf("dataset: %s: %s is %d bytes, more than the %d allowed for one image", l.root, rel, hdr.Size, maxEntryBytes)
			}
			data := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, data); err != nil {
				return fmt.Errorf("dataset: %s: %s: %w (the archive is truncated or corrupt)", l.root, rel, err)
			}
			if isClass {
				l.classText[relDir(rel)] = string(data)
				continue
			}
			select {
			case jobs <- job{rel: rel, data: data}:
			case <-ctx.Done():
				return nil
			}
		}
	}()
	wait()
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return err
}

// finish checks the layout, assigns labels and packs the pixels.
func (l *folderLoad) finish() (*Dataset, error) {
	name := l.root
	if l.opts.Split != "" {
		name += "#" + l.opts.Split
	}
	where := "root/<class>/*.{jpg,jpeg,png}"
	if l.opts.Split != "" {
		where = ".../" + l.opts.Split + "/<class>/*.{jpg,jpeg,png}"
	}
	// Parents of class folders: one per split (or the root).
	parents := map[string]bool{}
	for _, im := range l.images {
		parts := strings.Split(im.rel, "/")
		parents[strings.Join(parts[:len(parts)-2], "/")] = true
	}
	if len(l.images) == 0 {
		var splits []string
		for p := range l.splitClasses {
			if p != "" {
				splits = append(splits, path.Base(p))
			}
		}
		slices.Sort(splits)
		splits = slices.Compact(splits)
		hint := ""
		if len(splits) > 0 {
			hint = fmt.Sprintf("; the tree has split folders %s: choose one", strings.Join(splits, ", "))
		}
		if len(l.skipped) > 0 {
			hint += fmt.Sprintf("; all %d image files were skipped as undecodable", len(l.skipped))
		}
		return nil, fmt.Errorf("dataset: %s: no images found as %s%s", name, where, hint)
	}
	if len(parents) > 1 {
		var ps []string
		for p := range parents {
			if p == "" {
				p = "."
			}
			ps = append(ps, p+"/")
		}
		slices.Sort(ps)
		if l.opts.Split == "" {
			return nil, fmt.Errorf("dataset: %s: images sit in several folders (%s): choose a split folder, or point at one folder holding <class>/ folders", name, strings.Join(ps, ", "))
		}
		return nil, fmt.Errorf("dataset: %s: split %q occurs in several places (%s): point at the folder that holds the one you mean", name, l.opts.Split, strings.Join(ps, ", "))
	}
	var parent string
	for p := range parents {
		parent = p
	}
	if l.opts.Split == "" && strings.Contains(parent, "/") {
		return nil, fmt.Errorf("dataset: %s: images are nested under %s/: choose a split folder", name, parent)
	}
	// Class folders of this split and of its siblings (the other splits
	// next to it), so that labels agree across splits.
	own := l.splitClasses[parent]
	all := map[string]bool{}
	for c := range own {
		all[c] = true
	}
	var siblings []string
	if l.opts.Split != "" {
		for p, set := range l.splitClasses {
			if p == parent || p == "" || path.Dir(p) != path.Dir(parent) {
				continue
			}
			siblings = append(siblings, p)
			for c := range set {
				all[c] = true
			}
		}
	}
	slices.Sort(siblings)

	classes, display, err := l.classOrder(parent, all)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", name, err)
	}
	label := map[string]int{}
	for i, c := range classes {
		label[c] = i
	}
	for _, c := range classes {
		if !own[c] {
			in := "the class list"
			for _, s := range siblings {
				if l.splitClasses[s][c] {
					in = fmt.Sprintf("split %q", path.Base(s))
					break
				}
			}
			return nil, fmt.Errorf("dataset: %s: class folder %q is missing (it is in %s); every split needs every class so that labels agree", name, c, in)
		}
	}

	// Every image must share one size.
	sort.Slice(l.images, func(i, j int) bool {
		a, b := l.images[i], l.images[j]
		if la, lb := label[a.class], label[b.class]; la != lb {
			return la < lb
		}
		return a.rel < b.rel
	})
	first := l.images[0]
	d := &Dataset{Name: name, C: l.opts.Channels, H: first.h, W: first.w, Classes: display}
	stride := d.Stride()
	d.Labels = make([]int, 0, len(l.images))
	d.Sources = make([]string, 0, len(l.images))
	for i := range l.images {
		im := &l.images[i]
		if im.h != first.h || im.w != first.w {
			return nil, fmt.Errorf("dataset: %s: %s is %dx%d but %s is %dx%d: give a size (spec@SIZE) to resize them all", name, im.rel, im.h, im.w, first.rel, first.h, first.w)
		}
		d.Labels = append(d.Labels, label[im.class])
		d.Sources = append(d.Sources, im.rel)
	}
	// Pack the pixels with all workers: first touches of fresh memory
	// (page faults) are costly on these machines and parallelize.
	d.Pixels = make([]uint8, len(l.images)*stride)
	parallel(l.opts.Workers, len(l.images), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			copy(d.Pixels[i*stride:(i+1)*stride], l.images[i].pix)
			l.images[i].pix = nil
		}
	})
	slices.Sort(l.skipped)
	d.Skipped = l.skipped
	return d, nil
}

// classOrder returns the class folders in label order and their display
// names, from a class-list file when one applies, else sorted.
func (l *folderLoad) classOrder(parent string, folders map[string]bool) (order, display []string, err error) {
	// Look for a class file at the split's parent and every level above.
	var text, from string
	for dir := parent; ; dir = path.Dir(dir) {
		if dir == "." {
			dir = ""
		}
		if t, ok := l.classText[dir]; ok && text == "" {
			text, from = t, path.Join(dir, "classes file")
		}
		if dir == "" {
			break
		}
	}
	strict := text != ""
	if text == "" && l.opts.ClassFile != "" {
		if b, err := os.ReadFile(l.opts.ClassFile); err == nil {
			text, from = string(b), l.opts.ClassFile
		}
	}
	if text != "" {
		order, display, err := parseClassList(text, folders)
		if err == nil {
			return order, display, nil
		}
		if strict {
			return nil, nil, fmt.Errorf("%s: %w", from, err)
		}
	}
	for c := range folders {
		order = append(order, c)
	}
	slices.Sort(order)
	return order, slices.Clone(order), nil
}

// parseClassList reads a class list (one class a line: "folder" or
// "folder display name") and checks it against the class folders found.
func parseClassList(text string, folders map[string]bool) (order, display []string, err error) {
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		folder, name := line, line
		if !folders[line] {
			if f, r, ok := strings.Cut(line, " "); ok && (folders[f] || isLabelToken(f)) {
				folder, name = f, strings.TrimSpace(r)
			}
		}
		if seen[folder] {
			return nil, nil, fmt.Errorf("class %q is listed twice", folder)
		}
		seen[folder] = true
		order = append(order, folder)
		display = append(display, name)
	}
	var missing []string
	for f := range folders {
		if !seen[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, nil, fmt.Errorf("class folder(s) %s not in the class list", strings.Join(firstN(missing, 10), ", "))
	}
	return order, display, nil
}

// isLabelToken reports whether s looks like a numeric label folder ("007").
func isLabelToken(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("… (%d more)", len(s)-n))
}

// parallel calls fn on [lo, hi) ranges covering [0, n), on up to workers
// goroutines, and waits for them.
func parallel(workers, n int, fn func(lo, hi int)) {
	workers = max(1, min(workers, n))
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() { fn(k*n/workers, (k+1)*n/workers) })
	}
	wg.Wait()
}

// relDir is path.Dir for slash paths relative to the root, with "" for
// the root itself.
func relDir(rel string) string {
	if d := path.Dir(rel); d != "." {
		return d
	}
	return ""
}
