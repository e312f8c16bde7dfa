//go:build !purego

package tensor

// maxTapsRow: see pool_amd64.s.
//
//go:noescape
func maxTapsRow(n, ntap int, offs *int32, src *float32, base int, dst *float32, am *int32)

// maxH3s1, maxH3s2, maxV3: the two passes of MaxPool3x3, see pool_amd64.s.
//
//go:noescape
func maxH3s1(rows, nb int, src *float32, hv *float32, hi *int32)

//go:noescape
func maxH3s2(rows, nb int, src *float32, hv *float32, hi *int32)

//go:noescape
func maxV3(oh, nb, s, h, w int, hv *float32, hi *int32, dst *float32, am *int32)
