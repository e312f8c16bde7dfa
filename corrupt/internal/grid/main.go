// Command grid draws docs/corruptions.png: every corruption of package
// corrupt (rows) at severities 0 (clean) to 5 (columns) on a few lossless
// CIFAR-10 test images, upscaled ×3 with nearest-neighbour so that a person
// can see them.
//
//	go run ./corrupt/internal/grid -data ../shared/data/cifar10/test_249.bin -o docs/corruptions.png
//
// The images come from test_249.bin in the CIFAR-10 binary record format
// (1 label byte, then 1024 R, 1024 G, 1024 B bytes per image), decoded here.
package main

import (
	"flag"
	"fmt"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/csam-onnx/csam-onnx/corrupt"
	_ "gonum.org/v1/plot" // registers the Liberation fonts in font.DefaultCache
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"
)

const (
	side     = 32
	zoom     = 3
	cell     = side * zoom
	gap      = 2
	groupGap = 14
	labelW   = 150
	headerH  = 40
	record   = 1 + 3*side*side
)

func main() {
	data := flag.String("data", filepath.Join("..", "shared", "data", "cifar10", "test_249.bin"), "CIFAR-10 binary file to read test images from")
	out := flag.String("o", filepath.Join("docs", "corruptions.png"), "PNG file to write")
	pick := flag.String("images", "7,14,0", "comma-separated record indices of the images to show")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := run(*data, *out, *pick, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "grid:", err)
		os.Exit(1)
	}
}

func run(dataPath, outPath, pick string, seed uint64) error {
	var idx []int
	for _, f := range strings.Split(pick, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 0 {
			return fmt.Errorf("-images: %q is not a record index", f)
		}
		idx = append(idx, i)
	}
	imgs, err := readCIFAR(dataPath, idx)
	if err != nil {
		return err
	}
	names := corrupt.Names()
	groupW := (corrupt.MaxSeverity+1)*(cell+gap) - gap
	W := labelW + len(imgs)*groupW + (len(imgs)-1)*groupGap + gap
	H := headerH + len(names)*(cell+gap)
	// Text first, through gonum/plot's canvas (72 dpi: one point is one
	// pixel), then the thumbnails painted into its image.
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(W), vg.Length(H)), vgimg.UseDPI(72))
	c.SetColor(color.Black)
	sans := font.Font{Typeface: "Liberation", Variant: "Sans"}
	face := font.DefaultCache.Lookup(sans, vg.Points(15))
	small := font.DefaultCache.Lookup(sans, vg.Points(13))
	hgt := float64(H)
	for row, name := range names {
		info, _ := corrupt.Describe(name)
		y := hgt - float64(headerH+row*(cell+gap)+cell/2) - 5
		c.FillString(face, vg.Point{X: 6, Y: vg.Length(y + 8)}, name)
		note := string(info.Family)
		if info.Extra {
			note += ", extra"
		}
		if info.Procedural {
			note += ", procedural"
		}
		c.FillString(small, vg.Point{X: 6, Y: vg.Length(y - 10)}, "("+note+")")
	}
	for gi := range imgs {
		for sev := 0; sev <= corrupt.MaxSeverity; sev++ {
			label := strconv.Itoa(sev)
			if sev == 0 {
				label = "clean"
			}
			x := float64(labelW + gi*(groupW+groupGap) + sev*(cell+gap) + cell/2)
			w := float64(face.Width(label))
			c.FillString(face, vg.Point{X: vg.Length(x - w/2), Y: vg.Length(hgt - headerH + 12)}, label)
		}
	}
	c.FillString(small, vg.Point{X: 6, Y: vg.Length(hgt - headerH + 12)}, "severity →")

	canvas := c.Image()

	buf := make([]float32, 3*side*side)
	for row, name := range names {
		for gi, im := range imgs {
			for sev := 0; sev <= corrupt.MaxSeverity; sev++ {
				copy(buf, im)
				if sev > 0 {
					rng := corrupt.NewRNG(seed, name, sev, gi)
					if err := corrupt.Apply(name, sev, im, 3, side, side, rng, buf); err != nil {
						return err
					}
				}
				x0 := labelW + gi*(groupW+groupGap) + sev*(cell+gap)
				y0 := headerH + row*(cell+gap)
				paint(canvas, buf, x0, y0)
			}
		}
	}

	f, err := os.Create(outPath)
	if err != nil {
		return err
	}
	if err := png.Encode(f, canvas); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", outPath, err)
	}
	return f.Close()
}

// readCIFAR returns the images at the given record indices as CHW float32
// in [0,1].
func readCIFAR(path string, idx []int) ([][]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]float32
	rec := make([]byte, record)
	for _, i := range idx {
		if _, err := f.ReadAt(rec, int64(i)*record); err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("%s: record %d is past the end of the file", path, i)
			}
			return nil, fmt.Errorf("%s: record %d: %w", path, i, err)
		}
		im := make([]float32, 3*side*side)
		for j, b := range rec[1:] {
			im[j] = float32(b) / 255
		}
		out = append(out, im)
	}
	return out, nil
}

// paint draws a 3×32×32 CHW image at (x0, y0), each pixel as a zoom×zoom
// block.
func paint(dst draw.Image, im []float32, x0, y0 int) {
	n := side * side
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			i := y*side + x
			col := color.RGBA{R: to8(im[i]), G: to8(im[n+i]), B: to8(im[2*n+i]), A: 255}
			for dy := 0; dy < zoom; dy++ {
				for dx := 0; dx < zoom; dx++ {
					dst.Set(x0+x*zoom+dx, y0+y*zoom+dy, col)
				}
			}
		}
	}
}

func to8(v float32) uint8 {
	return uint8(min(max(v, 0), 1)*255 + 0.5)
}
