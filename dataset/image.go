package dataset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
)

// maxImagePixels bounds the declared size of an image before it is
// decoded, so that a corrupt or hostile header cannot make the decoder
// allocate gigabytes. 64 Mpixel is far above any data set this tool trains
// on (CelebA-HQ is 1 Mpixel).
const maxImagePixels = 1 << 26

// decodeImage decodes a JPEG or PNG held in data into CHW uint8 with c
// channels (1: luma, 3: RGB), resized to h×w when h, w > 0 (see
// resizeCHW), else at its own size. It returns the pixels and their shape.
func decodeImage(data []byte, c, h, w int) (pix []uint8, ih, iw int, _ error) {
	if dw, dh, ok := declaredSize(data); ok && (dw <= 0 || dh <= 0 || int64(dw)*int64(dh) > maxImagePixels) {
		return nil, 0, 0, fmt.Errorf("declared size %dx%d is empty or above %d pixels", dw, dh, maxImagePixels)
	}
	// Dispatch on the magic bytes ourselves: image.Decode would wrap the
	// reader in a fresh 4 KiB bufio.Reader per image to sniff the format.
	var img image.Image
	var err error
	switch {
	case len(data) >= 2 && data[0] == 0xff && data[1] == 0xd8:
		img, err = jpeg.Decode(bytes.NewReader(data))
	case len(data) >= 8 && string(data[:8]) == "\x89PNG\r\n\x1a\n":
		img, err = png.Decode(bytes.NewReader(data))
	default:
		return nil, 0, 0, fmt.Errorf("neither JPEG nor PNG (the file starts with % x)", data[:min(len(data), 4)])
	}
	if err != nil {
		return nil, 0, 0, err
	}
	b := img.Bounds()
	ih, iw = b.Dy(), b.Dx()
	if h <= 0 || w <= 0 || (h == ih && w == iw) {
		pix = make([]uint8, c*ih*iw)
		imageToCHW(pix, img, c)
		return pix, ih, iw, nil
	}
	src := make([]uint8, c*ih*iw)
	imageToCHW(src, img, c)
	pix = make([]uint8, c*h*w)
	resizeCHW(pix, h, w, src, c, ih, iw)
	return pix, h, w, nil
}

// imageToCHW writes img into dst as CHW uint8 with c channels (1 or 3).
// Colour is reduced to luma with the weights of color.GrayModel; gray is
// replicated to RGB; alpha is dropped (JPEG has none; PNG pixels are
// taken as stored, not composited on a background).
func imageToCHW(dst []uint8, img image.Image, c int) {
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	plane := h * w
	put := func(k int, r, g, bl uint8) {
		if c == 1 {
			dst[k] = uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(bl) + 1<<15) >> 16)
			return
		}
		dst[k] = r
		dst[plane+k] = g
		dst[2*plane+k] = bl
	}
	switch m := img.(type) {
	case *image.YCbCr:
		if m.SubsampleRatio == image.YCbCrSubsampleRatio420 && b.Min.X%2 == 0 && b.Min.Y%2 == 0 {
			// The common JPEG case, without the per-pixel offset calls.
			for y := 0; y < h; y++ {
				yrow := m.Y[(y+b.Min.Y-m.Rect.Min.Y)*m.YStride+(b.Min.X-m.Rect.Min.X):]
				yrow = yrow[:w]
				crow := (((y+b.Min.Y)/2)-m.Rect.Min.Y/2)*m.CStride + (b.Min.X/2 - m.Rect.Min.X/2)
				cb, cr := m.Cb[crow:crow+(w+1)/2], m.Cr[crow:crow+(w+1)/2]
				if c == 3 {
					rr, gg, bb := dst[y*w:y*w+w], dst[plane+y*w:plane+y*w+w], dst[2*plane+y*w:2*plane+y*w+w]
					for x, yv := range yrow {
						rr[x], gg[x], bb[x] = color.YCbCrToRGB(yv, cb[x/2], cr[x/2])
					}
					continue
				}
				for x, yv := range yrow {
					r, g, bl := color.YCbCrToRGB(yv, cb[x/2], cr[x/2])
					put(y*w+x, r, g, bl)
				}
			}
			break
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				put(y*w+x, r, g, bl)
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				put(y*w+x, v, v, v)
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				put(y*w+x, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				put(y*w+x, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				n := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				put(y*w+x, n.R, n.G, n.B)
			}
		}
	}
}

// resizeCHW resamples the c-channel CHW image src (sh×sw) to dst (dh×dw):
// first the largest centred window of src with dst's aspect ratio is cut
// out (centre crop), then that window is resampled to dh×dw, each axis on
// its own: by area averaging when it shrinks (every output pixel is the
// mean of the source area it covers, partial pixels weighted by coverage)
// and by bilinear interpolation (pixel centres aligned, edges clamped) when
// it grows. Values are rounded to the nearest byte.
func resizeCHW(dst []uint8, dh, dw int, src []uint8, c, sh, sw int) {
	// Centre crop to the target aspect ratio.
	cw, ch := sw, sh
	if sw*dh > sh*dw { // source is wider
		cw = max(1, int(math.Round(float64(sh)*float64(dw)/float64(dh))))
	} else {
		ch = max(1, int(math.Round(float64(sw)*float64(dh)/float64(dw))))
	}
	x0, y0 := (sw-cw)/2, (sh-ch)/2
	wx := axisWeights(cw, dw)
	wy := axisWeights(ch, dh)
	tmp := make([]float32, ch*dw)
	for k := 0; k < c; k++ {
		plane := src[k*sh*sw : (k+1)*sh*sw]
		// Horizontal pass: rows y0..y0+ch of the window → ch×dw.
		for y := 0; y < ch; y++ {
			row := plane[(y0+y)*sw+x0 : (y0+y)*sw+x0+cw]
			for x, t := range wx {
				var s float32
				for j, wt := range t.w {
					s += wt * float32(row[t.start+j])
				}
				tmp[y*dw+x] = s
			}
		}
		// Vertical pass: ch×dw → dh×dw.
		out := dst[k*dh*dw : (k+1)*dh*dw]
		for y, t := range wy {
			for x := 0; x < dw; x++ {
				var s float32
				for j, wt := range t.w {
					s += wt * tmp[(t.start+j)*dw+x]
				}
				out[y*dw+x] = clampByte(s)
			}
		}
	}
}

type taps struct {
	start int
	w     []float32
}

// axisWeights returns, for each of the dn output positions, the source
// positions and weights (summing to 1) that make it from sn inputs.
func axisWeights(sn, dn int) []taps {
	t := make([]taps, dn)
	scale := float64(sn) / float64(dn)
	for o := range t {
		if scale >= 1 { // area average over [o*scale, (o+1)*scale)
			lo, hi := float64(o)*scale, float64(o+1)*scale
			j0, j1 := int(math.Floor(lo)), min(sn, int(math.Ceil(hi)))
			ws := make([]float32, j1-j0)
			for j := j0; j < j1; j++ {
				cover := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j))
				ws[j-j0] = float32(cover / scale)
			}
			t[o] = taps{j0, ws}
			continue
		}
		// Bilinear, centres aligned: output centre o+0.5 maps to source
		// coordinate (o+0.5)*scale, i.e. pixel index x = that - 0.5.
		x := (float64(o)+0.5)*scale - 0.5
		x = math.Max(0, math.Min(float64(sn-1), x))
		j0 := int(math.Floor(x))
		f := float32(x - float64(j0))
		if j0+1 >= sn || f == 0 {
			t[o] = taps{j0, []float32{1}}
			continue
		}
		t[o] = taps{j0, []float32{1 - f, f}}
	}
	return t
}

func clampByte(v float32) uint8 {
	v += 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// declaredSize reads the width and height a PNG or baseline/progressive
// JPEG header declares, without decoding; ok is false when data is
// neither (the decoder then reports the error).
func declaredSize(data []byte) (w, h int, ok bool) {
	if len(data) >= 24 && string(data[:8]) == "\x89PNG\r\n\x1a\n" && string(data[12:16]) == "IHDR" {
		return int(binary.BigEndian.Uint32(data[16:20])), int(binary.BigEndian.Uint32(data[20:24])), true
	}
	if len(data) < 4 || data[0] != 0xff || data[1] != 0xd8 {
		return 0, 0, false
	}
	// Walk the JPEG marker segments up to the first start-of-frame.
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xff {
			return 0, 0, false
		}
		marker := data[i+1]
		if marker == 0xff { // fill byte
			i++
			continue
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc {
			if i+9 > len(data) {
				return 0, 0, false
			}
			return int(binary.BigEndian.Uint16(data[i+7:])), int(binary.BigEndian.Uint16(data[i+5:])), true
		}
		if marker == 0xd9 || marker == 0xda { // end of image, start of scan
			return 0, 0, false
		}
		i += 2 + n
	}
	return 0, 0, false
}
