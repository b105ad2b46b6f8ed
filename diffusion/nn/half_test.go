package nn

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/safetensors"
	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// TestFileSourceHalf checks which tensors FileSource keeps in 16 bits (F16
// and BF16 of two or more dimensions), that their values are exactly the
// float32 decoding of the file, and that they are copies that outlive the
// closed (unmapped) file.
func TestFileSourceHalf(t *testing.T) {
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(math.Sin(float64(i)+0.5)) * float32(1+i%5) / 3
		}
		return v
	}
	tests := []struct {
		name  string
		dtype safetensors.DType
		shape []int
		half  tensor.HalfKind // 0: float32
	}{
		{"f16.matrix", safetensors.F16, []int{3, 5}, tensor.F16},
		{"f16.conv", safetensors.F16, []int{4, 2, 3, 3}, tensor.F16},
		{"bf16.matrix", safetensors.BF16, []int{6, 2}, tensor.BF16},
		{"bf16.conv", safetensors.BF16, []int{2, 3, 1, 1}, tensor.BF16},
		{"f16.bias", safetensors.F16, []int{7}, 0},
		{"bf16.norm", safetensors.BF16, []int{4}, 0},
		{"f32.matrix", safetensors.F32, []int{3, 4}, 0},
		{"f16.scalar", safetensors.F16, []int{}, 0},
	}
	var ts []safetensors.Tensor
	for _, tt := range tests {
		n := 1
		for _, d := range tt.shape {
			n *= d
		}
		ts = append(ts, safetensors.Tensor{Name: tt.name, Shape: tt.shape, Data: vals(n), DType: tt.dtype})
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := safetensors.WriteFile(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	ref, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*tensor.Tensor{}
	for _, tt := range tests {
		if want[tt.name], err = ref.Tensor(tt.name); err != nil {
			t.Fatal(err)
		}
	}
	ref.Close()

	src, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tensor.Tensor{}
	for _, tt := range tests {
		x, err := src.Load(tt.name, tt.shape)
		if err != nil {
			t.Fatal(err)
		}
		if x.IsHalf() != (tt.half != 0) || x.HalfKind != tt.half {
			t.Errorf("%s: IsHalf %v kind %v, want kind %v", tt.name, x.IsHalf(), x.HalfKind, tt.half)
		}
		got[tt.name] = x
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		g, w := got[tt.name].Float32(), want[tt.name]
		if !tensor.SameShape(g, w) {
			t.Fatalf("%s: shape %v, want %v", tt.name, g.Shape, w.Shape)
		}
		for i := range w.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
				t.Errorf("%s[%d] = %v, want %v", tt.name, i, g.Data[i], w.Data[i])
				break
			}
		}
	}
}

func TestFloat32Source(t *testing.T) {
	h := tensor.FromHalf([]uint16{0x3c00, 0xc000, 0x3555, 0}, tensor.F16, 2, 2)
	f := tensor.FromData([]float32{1, 2}, 2)
	src := Float32Source(MapSource{"h": h, "f": f})
	x, err := src.Load("h", []int{2, 2})
	if err != nil {
		t.Fatal(err)
	}
	if x.IsHalf() || len(x.Data) != 4 || x.Data[0] != 1 || x.Data[1] != -2 || x.Data[2] != 0.333251953125 || x.Data[3] != 0 {
		t.Errorf("Load(h) = %v half %v", x.Data, x.IsHalf())
	}
	if y, err := src.Load("f", []int{2}); err != nil || y != f {
		t.Errorf("Load(f) = %v, %v; want the float32 tensor itself", y, err)
	}
	if _, err := src.Load("h", []int{4}); err == nil {
		t.Error("shape mismatch not reported")
	}
	if !src.Has("h") || src.Has("x") || len(src.Names()) != 2 {
		t.Errorf("Has/Names not passed through: %v", src.Names())
	}
}
