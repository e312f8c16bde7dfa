package tensor

import "testing"

// TestWrap: integer types wrap around as two's complement, Bool becomes 0
// or 1, and 64-bit and non-integer types keep the value.
func TestWrap(t *testing.T) {
	for _, c := range []struct {
		d       DType
		in, out int64
	}{
		{Int8, 130, -126}, {Int8, -129, 127}, {Uint8, 256 + 7, 7}, {Uint8, -1, 255},
		{Int16, 1 << 15, -(1 << 15)}, {Uint16, -2, 65534}, {Int32, 1 << 31, -(1 << 31)},
		{Uint32, -1, 1<<32 - 1}, {Bool, 5, 1}, {Bool, -3, 1}, {Bool, 0, 0},
		{Int64, -1 << 40, -1 << 40}, {Uint64, -1, -1}, {Float32, 1 << 40, 1 << 40},
	} {
		if got := c.d.Wrap(c.in); got != c.out {
			t.Errorf("%s.Wrap(%d) = %d, want %d", c.d, c.in, got, c.out)
		}
	}
}
