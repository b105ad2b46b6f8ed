package workers

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/safetensors"
)

// TestEstimateModelBytesHalf checks that F16 and BF16 matrices and kernels
// count 2 bytes a value (they stay in 16 bits once loaded) and every other
// tensor 4.
func TestEstimateModelBytesHalf(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "unet"), 0o755); err != nil {
		t.Fatal(err)
	}
	ts := []safetensors.Tensor{
		{Name: "a.weight", Shape: []int{4, 4}, Data: make([]float32, 16), DType: safetensors.F16},        // 32 bytes
		{Name: "b.weight", Shape: []int{2, 2, 3, 3}, Data: make([]float32, 36), DType: safetensors.BF16}, // 72
		{Name: "a.bias", Shape: []int{4}, Data: make([]float32, 4), DType: safetensors.F16},              // 16
		{Name: "c.weight", Shape: []int{3, 3}, Data: make([]float32, 9), DType: safetensors.F32},         // 36
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "unet", "diffusion_pytorch_model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := EstimateModelBytes(dir), int64(32+72+16+36); got != want {
		t.Errorf("EstimateModelBytes = %d, want %d", got, want)
	}
}
