//go:build !purego

package tensor

// maxTapsRow: see pool_amd64.s.
//
//go:noescape
func maxTapsRow(n, ntap int, offs *int32, src *float32, base int, dst *float32, am *int32)
