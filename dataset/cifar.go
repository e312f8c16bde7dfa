package dataset

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// CIFAR10Classes are the CIFAR-10 class names in label order, as listed
// in the official batches.meta.txt.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// cifarRecord is the size of one record of the CIFAR-10 binary format: a
// label byte, then 1024 red, 1024 green and 1024 blue bytes (32×32, row
// major).
const cifarRecord = 1 + 3*32*32

// ReadCIFAR10Binary reads files in the CIFAR-10 binary format (such as
// data_batch_1.bin … data_batch_5.bin or test_batch.bin) into one Dataset
// in file order. A file whose size is not a whole number of 3,073-byte
// records, or a label byte above 9, is an error naming the file and record.
func ReadCIFAR10Binary(files ...string) (*Dataset, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("dataset: ReadCIFAR10Binary: no files given")
	}
	d := &Dataset{Name: strings.Join(files, ","), C: 3, H: 32, W: 32, Classes: append([]string(nil), CIFAR10Classes...)}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		st, err := f.Stat()
		if err == nil && st.Size()%cifarRecord != 0 {
			f.Close()
			return nil, fmt.Errorf("dataset: %s: size %d is not a multiple of the CIFAR-10 record size %d (1 label + 3072 pixel bytes): record %d is truncated; is this a CIFAR-10 binary batch file?",
				name, st.Size(), cifarRecord, st.Size()/cifarRecord)
		}
		err = decodeCIFAR10(d, f, name)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// decodeCIFAR10 appends the records read from r to d. name is used in
// errors and in d.Sources.
func decodeCIFAR10(d *Dataset, r io.Reader, name string) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var rec [cifarRecord]byte
	base := filepath.Base(name)
	for i := 0; ; i++ {
		n, err := io.ReadFull(br, rec[:])
		if err == io.EOF {
			return nil
		}
		if err == io.ErrUnexpectedEOF {
			return fmt.Errorf("dataset: %s: record %d is truncated (%d of %d bytes); the file size must be a multiple of %d", name, i, n, cifarRecord, cifarRecord)
		}
		if err != nil {
			return fmt.Errorf("dataset: %s: record %d: %w", name, i, err)
		}
		if rec[0] > 9 {
			return fmt.Errorf("dataset: %s: record %d has label %d, want 0..9; is this a CIFAR-10 (not CIFAR-100) file?", name, i, rec[0])
		}
		d.Labels = append(d.Labels, int(rec[0]))
		d.Pixels = append(d.Pixels, rec[1:]...)
		d.Sources = append(d.Sources, fmt.Sprintf("%s#%d", base, i))
	}
}

// WriteCIFAR10Binary writes d in the CIFAR-10 binary format. d must hold
// 3×32×32 images with labels below 256.
func WriteCIFAR10Binary(w io.Writer, d *Dataset) error {
	if d.C != 3 || d.H != 32 || d.W != 32 {
		return fmt.Errorf("dataset: %s: cannot write %dx%dx%d images as CIFAR-10 records (3x32x32)", d.Name, d.C, d.H, d.W)
	}
	bw := bufio.NewWriter(w)
	for i, l := range d.Labels {
		if l < 0 || l > 255 {
			return fmt.Errorf("dataset: %s: image %d has label %d, which does not fit the label byte", d.Name, i, l)
		}
		bw.WriteByte(byte(l))
		bw.Write(d.Raw(i))
	}
	return bw.Flush()
}

// openTar opens a .tar or .tar.gz file (gzip detected by content). The
// returned function closes it.
func openTar(name string) (*tar.Reader, func(), error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("dataset: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("dataset: %s: %w", name, err)
		}
		return tar.NewReader(gz), func() { gz.Close(); f.Close() }, nil
	}
	return tar.NewReader(br), func() { f.Close() }, nil
}

// tarHasCIFARBinary reports whether one of the first entries of the
// tarball is a CIFAR-10 binary batch (as in the official
// cifar-10-binary.tar.gz), as opposed to a tree of images.
func tarHasCIFARBinary(name string) bool {
	tr, done, err := openTar(name)
	if err != nil {
		return false
	}
	defer done()
	for range 16 {
		hdr, err := tr.Next()
		if err != nil {
			return false
		}
		if b := path.Base(hdr.Name); strings.HasPrefix(b, "data_batch_") || b == "test_batch.bin" {
			return true
		}
	}
	return false
}

// readCIFAR10Tar reads the CIFAR-10 binary batches files (base names, in
// this order) from a tarball such as the official cifar-10-binary.tar.gz.
func readCIFAR10Tar(name string, files []string) (*Dataset, error) {
	tr, done, err := openTar(name)
	if err != nil {
		return nil, err
	}
	defer done()
	parts := map[string]*Dataset{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: reading the archive: %w (is it complete?)", name, err)
		}
		base := path.Base(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || !slices.Contains(files, base) || parts[base] != nil {
			continue
		}
		if hdr.Size%cifarRecord != 0 {
			return nil, fmt.Errorf("dataset: %s: %s: size %d is not a multiple of the CIFAR-10 record size %d", name, hdr.Name, hdr.Size, cifarRecord)
		}
		p := &Dataset{}
		if err := decodeCIFAR10(p, tr, name+": "+hdr.Name); err != nil {
			return nil, err
		}
		parts[base] = p
	}
	d := &Dataset{Name: name, C: 3, H: 32, W: 32, Classes: append([]string(nil), CIFAR10Classes...)}
	for _, f := range files {
		p := parts[f]
		if p == nil {
			return nil, fmt.Errorf("dataset: %s holds no %s", name, f)
		}
		d.Pixels = append(d.Pixels, p.Pixels...)
		d.Labels = append(d.Labels, p.Labels...)
		d.Sources = append(d.Sources, p.Sources...)
	}
	return d, nil
}
