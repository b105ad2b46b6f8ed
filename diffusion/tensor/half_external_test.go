package tensor_test

import (
	"math"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// TestHalfMatchesSafetensors widens every one of the 65536 F16 and BF16 bit
// patterns and compares the float32 bits (NaN payloads included) with the
// safetensors package's reference conversions. It is an external test
// because safetensors imports tensor.
func TestHalfMatchesSafetensors(t *testing.T) {
	bits := make([]uint16, 1<<16)
	for i := range bits {
		bits[i] = uint16(i)
	}
	for _, c := range []struct {
		kind tensor.HalfKind
		ref  func(uint16) float32
	}{
		{tensor.F16, safetensors.F16ToFloat32},
		{tensor.BF16, safetensors.BF16ToFloat32},
	} {
		got := tensor.FromHalf(bits, c.kind, 256, 256).Float32().Data
		bad := 0
		for i, h := range bits {
			if g, w := math.Float32bits(got[i]), math.Float32bits(c.ref(h)); g != w {
				if bad < 5 {
					t.Errorf("%v %#04x: %#08x, want %#08x", c.kind, h, g, w)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%v: %d of 65536 values differ", c.kind, bad)
		}
	}
}
