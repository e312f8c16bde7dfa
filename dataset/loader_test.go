package dataset

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeFile writes data to dir/rel, creating folders.
func writeFile(t testing.TB, dir, rel string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pngBytes encodes a w×h RGB image whose pixel (x, y) is (seed+x,
// seed+y, seed+x+y) as PNG (lossless, so the decoded values are known).
func pngBytes(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(seed + x), uint8(seed + y), uint8(seed + x + y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tree is a small image tree: rel path → file bytes.
func tree(t *testing.T) map[string][]byte {
	files := map[string][]byte{}
	for s, split := range []string{"train", "test"} {
		for c, class := range []string{"zebra", "apple", "mango"} {
			for k := range 2 {
				files[fmt.Sprintf("top/%s/%s/%d.png", split, class, k)] = pngBytes(t, 4, 3, 10*c+k+100*s)
			}
		}
	}
	files["top/train/apple/notes.txt"] = []byte("not an image")
	files["top/train/apple/._0.png"] = []byte("macOS resource fork")
	files["__MACOSX/top/train/apple/0.png"] = []byte("macOS resource fork")
	return files
}

func writeTree(t *testing.T, files map[string][]byte) string {
	dir := t.TempDir()
	for rel, b := range files {
		writeFile(t, dir, rel, b)
	}
	return dir
}

func writeTar(t *testing.T, files map[string][]byte, gz bool) string {
	t.Helper()
	var buf bytes.Buffer
	writeTarTo(&buf, files, gz)
	name := "tree.tar"
	if gz {
		name += ".gz"
	}
	return writeFile(t, t.TempDir(), name, buf.Bytes())
}

// writeTarTo writes files (in name order, as "./name") as a tar, gzipped
// when gz is set.
func writeTarTo(w io.Writer, files map[string][]byte, gz bool) {
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(w)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		tw.WriteHeader(&tar.Header{Name: "./" + n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write(files[n])
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
}

func TestLoadFolderForms(t *testing.T) {
	files := tree(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(filepath.Join(writeTree(t, files), "top"), link); err != nil {
		t.Fatal(err)
	}
	roots := map[string]string{
		"dir":     filepath.Join(writeTree(t, files), "top"),
		"symlink": link,
		"tar":     writeTar(t, files, false),
		"tar.gz":  writeTar(t, files, true),
	}
	var ref *Dataset
	for _, form := range []string{"dir", "symlink", "tar", "tar.gz"} {
		d, err := LoadFolder(context.Background(), roots[form], &FolderOptions{Split: "test", Workers: 3})
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		// Sorted folder names, each class in path order.
		if want := []string{"apple", "mango", "zebra"}; !slices.Equal(d.Classes, want) {
			t.Errorf("%s: Classes = %v, want %v", form, d.Classes, want)
		}
		if want := []int{0, 0, 1, 1, 2, 2}; !slices.Equal(d.Labels, want) {
			t.Errorf("%s: Labels = %v, want %v", form, d.Labels, want)
		}
		if d.C != 3 || d.H != 3 || d.W != 4 {
			t.Errorf("%s: shape %v, want [3 3 4]", form, d.Shape())
		}
		// Image 0 is test/apple/0.png, seed 100+10: R(x, y) = seed+x,
		// G = seed+y, B = seed+x+y, stored CHW.
		img := d.Raw(0)
		for y := range 3 {
			for x := range 4 {
				got := []uint8{img[y*4+x], img[12+y*4+x], img[24+y*4+x]}
				want := []uint8{uint8(110 + x), uint8(110 + y), uint8(110 + x + y)}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: pixel (%d,%d) = %v, want %v", form, x, y, got, want)
				}
			}
		}
		if ref == nil {
			ref = d
			continue
		}
		if diff := cmp.Diff(ref.Pixels, d.Pixels); diff != "" || !slices.Equal(ref.Labels, d.Labels) {
			t.Errorf("%s differs from dir: %s", form, diff)
		}
	}
}

func TestLoadFolderClassFile(t *testing.T) {
	files := tree(t)
	files["top/classes.txt"] = []byte("zebra a striped horse\nmango\napple red fruit\n")
	root := filepath.Join(writeTree(t, files), "top")
	d, err := LoadFolder(context.Background(), root, &FolderOptions{Split: "train"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a striped horse", "mango", "red fruit"}; !slices.Equal(d.Classes, want) {
		t.Errorf("Classes = %v, want %v", d.Classes, want)
	}
	// zebra images come first now.
	if !strings.HasPrefix(d.Sources[0], "train/zebra/") || d.Labels[0] != 0 {
		t.Errorf("image 0 = %s label %d, want train/zebra/… label 0", d.Sources[0], d.Labels[0])
	}
	// A class list that misses a folder is an error naming it.
	files["top/classes.txt"] = []byte("zebra\napple\n")
	root = filepath.Join(writeTree(t, files), "top")
	_, err = LoadFolder(context.Background(), root, &FolderOptions{Split: "train"})
	if err == nil || !strings.Contains(err.Error(), "mango") {
		t.Errorf("class list without mango: err = %v, want one naming mango", err)
	}
}

func TestLoadFolderResize(t *testing.T) {
	files := map[string][]byte{
		"a/0.png": pngBytes(t, 8, 6, 0),
		"a/1.jpg": jpegBytes(t, 20, 10),
		"b/0.png": pngBytes(t, 5, 5, 50),
	}
	root := writeTree(t, files)
	_, err := LoadFolder(context.Background(), root, nil)
	if err == nil || !strings.Contains(err.Error(), "resize") {
		t.Fatalf("mixed sizes without Size: err = %v, want a hint to resize", err)
	}
	d, err := LoadFolder(context.Background(), root, &FolderOptions{Size: 4, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Shape(), []int{1, 4, 4}) || d.Len() != 3 {
		t.Errorf("got %d images of %v, want 3 of [1 4 4]", d.Len(), d.Shape())
	}
}

func TestLoadFolderErrors(t *testing.T) {
	files := tree(t)
	corrupt := maps.Clone(files)
	corrupt["top/test/mango/9.jpg"] = []byte("\xff\xd8\xff\xe0 this is not a JPEG")
	missing := maps.Clone(files)
	delete(missing, "top/test/mango/0.png")
	delete(missing, "top/test/mango/1.png")
	empty := t.TempDir()
	os.MkdirAll(filepath.Join(empty, "cat"), 0o755)
	truncTar := writeTar(t, files, true)
	b, _ := os.ReadFile(truncTar)
	truncTar = writeFile(t, t.TempDir(), "trunc.tar.gz", b[:len(b)/2])

	cases := []struct {
		name, root string
		opts       FolderOptions
		want       []string // substrings of the error
	}{
		{"corrupt jpeg", filepath.Join(writeTree(t, corrupt), "top"), FolderOptions{Split: "test"}, []string{"test/mango/9.jpg", "skip-bad"}},
		{"corrupt jpeg in tar", writeTar(t, corrupt, true), FolderOptions{Split: "test"}, []string{"tree.tar.gz", "test/mango/9.jpg"}},
		{"class missing from test", filepath.Join(writeTree(t, missing), "top"), FolderOptions{Split: "test"}, []string{`"mango"`, `"train"`}},
		{"empty folder", empty, FolderOptions{}, []string{empty, "no images"}},
		{"split not chosen", filepath.Join(writeTree(t, files), "top"), FolderOptions{}, []string{"several folders", "split"}},
		{"unknown split", filepath.Join(writeTree(t, files), "top"), FolderOptions{Split: "val"}, []string{"no images", "test, train"}},
		{"truncated tarball", truncTar, FolderOptions{Split: "test"}, []string{"trunc.tar.gz"}},
		{"no such path", filepath.Join(empty, "nope"), FolderOptions{}, []string{"nope"}},
		{"bad channels", empty, FolderOptions{Channels: 2}, []string{"2 channels"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := LoadFolder(context.Background(), c.root, &c.opts)
			if err == nil {
				t.Fatalf("LoadFolder = %d images, want an error", d.Len())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	// SkipBad skips and lists the corrupt file.
	d, err := LoadFolder(context.Background(), filepath.Join(writeTree(t, corrupt), "top"), &FolderOptions{Split: "test", SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 6 || len(d.Skipped) != 1 || !strings.HasSuffix(d.Skipped[0], filepath.FromSlash("test/mango/9.jpg")) {
		t.Errorf("SkipBad: %d images, skipped %v; want 6 and the corrupt file", d.Len(), d.Skipped)
	}
}

func TestLoadFolderCancel(t *testing.T) {
	root := filepath.Join(writeTree(t, tree(t)), "top")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadFolder(ctx, root, &FolderOptions{Split: "train"}); err == nil {
		t.Error("LoadFolder with a cancelled context succeeded")
	}
}

// TestCIFAR10BinaryRoundTrip writes CIFAR-10 binary batches from decoded
// images and reads them back through the cifar10 spec.
func TestCIFAR10BinaryRoundTrip(t *testing.T) {
	src := cifarJPEGTest(t).Stratified(60, newSrc(1))
	dir := t.TempDir()
	write := func(name string, d *Dataset) {
		var b bytes.Buffer
		if err := WriteCIFAR10Binary(&b, d); err != nil {
			t.Fatal(err)
		}
		if b.Len() != d.Len()*cifarRecord {
			t.Fatalf("%s: %d bytes, want %d", name, b.Len(), d.Len()*cifarRecord)
		}
		writeFile(t, dir, name, b.Bytes())
	}
	for i := range 5 {
		write(fmt.Sprintf("data_batch_%d.bin", i+1), src.Select(seq(60)[i*10:(i+1)*10]))
	}
	write("test_batch.bin", src.Head(10))
	train, err := Load(context.Background(), "cifar10:"+dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := Load(context.Background(), "cifar10:"+dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(train.Pixels, src.Head(50).Pixels) || !slices.Equal(train.Labels, src.Head(50).Labels) {
		t.Error("train batches do not read back the images written")
	}
	if !bytes.Equal(test.Pixels, src.Head(10).Pixels) || !slices.Equal(test.Classes, CIFAR10Classes) {
		t.Error("test batch does not read back the images written")
	}
	if test.Sources[3] != "test_batch.bin#3" {
		t.Errorf("Sources[3] = %q, want test_batch.bin#3", test.Sources[3])
	}

	// The same files packed like the official cifar-10-binary.tar.gz,
	// named as a file and as the folder holding it.
	files := map[string][]byte{}
	for _, e := range must(os.ReadDir(dir)) {
		files["cifar-10-batches-bin/"+e.Name()] = must(os.ReadFile(filepath.Join(dir, e.Name())))
	}
	files["cifar-10-batches-bin/batches.meta.txt"] = []byte(strings.Join(CIFAR10Classes, "\n"))
	var buf bytes.Buffer
	writeTarTo(&buf, files, true)
	official := writeFile(t, t.TempDir(), "cifar-10-binary.tar.gz", buf.Bytes())
	for _, spec := range []string{"cifar10:" + official, "cifar10:" + filepath.Dir(official)} {
		tr, err := Load(context.Background(), spec, "train")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tr.Pixels, train.Pixels) || !slices.Equal(tr.Labels, train.Labels) {
			t.Errorf("%s: train split differs from the unpacked files", spec)
		}
	}
}

func TestCIFAR10BinaryErrors(t *testing.T) {
	dir := t.TempDir()
	rec := make([]byte, cifarRecord)
	trunc := writeFile(t, dir, "trunc.bin", append(bytes.Repeat(rec, 2), rec[:100]...))
	bad := slices.Clone(rec)
	bad[0] = 42
	badLabel := writeFile(t, dir, "label.bin", append(slices.Clone(rec), bad...))
	cases := []struct {
		name, spec, split string
		want              []string
	}{
		{"truncated", "cifar10:" + trunc, "", []string{"trunc.bin", "record 2", "3073"}},
		{"label above 9", "cifar10:" + badLabel, "", []string{"label.bin", "record 1", "label 42"}},
		{"empty dir", "cifar10:" + t.TempDir(), "train", []string{"data_batch_1.bin", "cifar10-jpg-train.tar.gz"}},
		{"bad split", "cifar10:" + dir, "val", []string{`"val"`, "train, test"}},
		{"missing", "cifar10:" + filepath.Join(dir, "none"), "test", []string{"none"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(context.Background(), c.spec, c.split)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// idxBytes builds an IDX file: magic 0x0000080<rank>, dims, data.
func idxBytes(dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestReadIDX(t *testing.T) {
	dir := t.TempDir()
	pix := make([]byte, 3*2*2)
	for i := range pix {
		pix[i] = byte(i)
	}
	labels := []byte{2, 0, 1}
	for _, zip := range []bool{false, true} {
		img, lab := idxBytes([]int{3, 2, 2}, pix), idxBytes([]int{3}, labels)
		suffix := ""
		if zip {
			img, lab, suffix = gz(img), gz(lab), ".gz"
		}
		ip := writeFile(t, dir, "train-images-idx3-ubyte"+suffix, img)
		lp := writeFile(t, dir, "train-labels-idx1-ubyte"+suffix, lab)
		d, err := ReadIDX(ip, lp, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Pixels, pix) || !slices.Equal(d.Labels, []int{2, 0, 1}) || !slices.Equal(d.Classes, []string{"0", "1", "2"}) || !slices.Equal(d.Shape(), []int{1, 2, 2}) {
			t.Errorf("gz=%v: got %v %v %v %v", zip, d.Pixels, d.Labels, d.Classes, d.Shape())
		}
	}
	// Through the spec, .gz preferred only when the plain file is absent.
	d, err := Load(context.Background(), "fashion-mnist:"+dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || d.Classes[0] != "T-shirt/top" {
		t.Errorf("fashion-mnist:%s: %d images, classes %v", dir, d.Len(), d.Classes)
	}

	bad := t.TempDir()
	cases := []struct {
		name        string
		images, lab []byte
		want        []string
	}{
		{"truncated images", gz(idxBytes([]int{3, 2, 2}, pix[:7])), idxBytes([]int{3}, labels), []string{"imgs", "truncated", "7 of 12"}},
		{"count mismatch", idxBytes([]int{3, 2, 2}, pix), idxBytes([]int{2}, labels[:2]), []string{"3 images", "2 labels"}},
		{"labels as images", idxBytes([]int{3}, labels), idxBytes([]int{3}, labels), []string{"imgs", "1 dimensions, want 3"}},
		{"not idx", []byte("hello world"), idxBytes([]int{3}, labels), []string{"imgs", "not an unsigned-byte IDX"}},
		{"absurd size", idxBytes([]int{1 << 20, 1 << 10, 1 << 10}, nil), idxBytes([]int{3}, labels), []string{"imgs", "declared dimensions [1048576 1024 1024] (of 3) already exceed"}},
		// The dimensions not yet read are not printed as 0.
		{"absurd count", idxBytes([]int{1 << 31, 28, 28}, nil), idxBytes([]int{3}, labels), []string{"imgs", "declared dimensions [2147483648 28] (of 3) already exceed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ip := writeFile(t, bad, "imgs", c.images)
			lp := writeFile(t, bad, "labs", c.lab)
			_, err := ReadIDX(ip, lp, nil)
			if err == nil {
				t.Fatal("ReadIDX succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// npyBytes builds a version-1 .npy file.
func npyBytes(descr string, shape []int, data []byte) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	sh := strings.Join(dims, ", ")
	if len(shape) == 1 {
		sh += ","
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, sh)
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func TestReadCIFAR10C(t *testing.T) {
	// A miniature CIFAR-10-C: 50,000 images of 2×2 HWC, image i's pixels
	// all i%251 except channel k adds k; labels int64 i%10.
	const n = 50000
	pix := make([]byte, n*2*2*3)
	lab := make([]byte, n*8)
	for i := range n {
		for p := range 4 {
			for k := range 3 {
				pix[(i*4+p)*3+k] = byte(i%251 + k)
			}
		}
		binary.LittleEndian.PutUint64(lab[i*8:], uint64(i%10))
	}
	dir := t.TempDir()
	writeFile(t, dir, "fog.npy", npyBytes("|u1", []int{n, 2, 2, 3}, pix))
	writeFile(t, dir, "labels.npy", npyBytes("<i8", []int{n}, lab))
	d, err := Load(context.Background(), "cifar10-c:"+dir+"#fog@3", "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 10000 || !slices.Equal(d.Shape(), []int{3, 2, 2}) {
		t.Fatalf("got %d images of %v, want 10000 of [3 2 2]", d.Len(), d.Shape())
	}
	// Image 5 of severity 3 is row 20005; CHW: channel k plane is all
	// 20005%251 + k.
	want := []uint8{}
	for k := range 3 {
		v := uint8(20005%251 + k)
		want = append(want, v, v, v, v)
	}
	if got := d.Raw(5); !slices.Equal(got, want) || d.Labels[5] != 5 {
		t.Errorf("image 5 = %v label %d, want %v label 5", got, d.Labels[5], want)
	}

	// Errors name the file.
	writeFile(t, dir, "short.npy", npyBytes("|u1", []int{n, 2, 2, 3}, pix[:1000]))
	writeFile(t, dir, "float.npy", npyBytes("<f4", []int{n, 2, 2, 3}, pix))
	for _, c := range []struct{ corruption, want string }{
		{"short", "short.npy"}, {"float", "float.npy"}, {"snow", "snow.npy"},
	} {
		if _, err := ReadCIFAR10C(dir, c.corruption, 1); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadCIFAR10C(%s) error = %v, want one naming %s", c.corruption, err, c.want)
		}
	}
	if _, err := ReadCIFAR10C(dir, "fog", 6); err == nil {
		t.Error("severity 6 accepted")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
