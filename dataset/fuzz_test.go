package dataset

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// Fuzz targets for the decoders of outside input: whatever the bytes, the
// readers return a Dataset that validates or an error, and never panic.
// Run one with, e.g., go test -fuzz FuzzReadNPY -fuzztime 30s ./dataset.

func FuzzDecodeImage(f *testing.F) {
	f.Add(pngBytes(f, 3, 2, 0))
	f.Add(jpegBytes(f, 9, 5))
	f.Add([]byte("\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, size := range []int{0, 5} {
			pix, h, w, err := decodeImage(data, 3, size, size)
			if err == nil && len(pix) != 3*h*w {
				t.Fatalf("decodeImage: %d values for %dx%d", len(pix), h, w)
			}
		}
	})
}

func FuzzReadCIFAR10Binary(f *testing.F) {
	f.Add(make([]byte, cifarRecord))
	f.Add(make([]byte, cifarRecord+7))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := writeFile(t, t.TempDir(), "f.bin", data)
		if d, err := ReadCIFAR10Binary(p); err == nil {
			if err := d.Validate(); err != nil && d.Len() > 0 {
				t.Fatal(err)
			}
		}
	})
}

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]int{2, 2, 2}, make([]byte, 8)), idxBytes([]int{2}, []byte{0, 1}))
	f.Add(gz(idxBytes([]int{1, 1, 1}, []byte{9})), idxBytes([]int{1}, []byte{3}))
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		dir := t.TempDir()
		if d, err := ReadIDX(writeFile(t, dir, "i", images), writeFile(t, dir, "l", labels), nil); err == nil && d.Len() > 0 {
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzReadNPY(f *testing.F) {
	f.Add(npyBytes("|u1", []int{2, 2, 2, 3}, make([]byte, 24)), npyBytes("<i8", []int{2}, make([]byte, 16)))
	f.Add(npyBytes("|u1", []int{1, 1, 1}, []byte{5}), npyBytes("|u1", []int{1}, []byte{1}))
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		dir := t.TempDir()
		if d, err := ReadNPYImages(writeFile(t, dir, "i.npy", images), writeFile(t, dir, "l.npy", labels), 0, -1, nil); err == nil && d.Len() > 0 {
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzLoadFolderTar(f *testing.F) {
	files := map[string][]byte{"a/x.png": pngBytes(f, 2, 2, 1), "b/y.png": pngBytes(f, 2, 2, 2)}
	for _, zip := range []bool{false, true} {
		var buf bytes.Buffer
		writeTarTo(&buf, files, zip)
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "t.tar")
		writeFile(t, filepath.Dir(p), "t.tar", data)
		if d, err := LoadFolder(context.Background(), p, &FolderOptions{Workers: 2}); err == nil {
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
