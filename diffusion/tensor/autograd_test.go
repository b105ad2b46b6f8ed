package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randTensor returns a tensor of shape filled from N(0, 1) by r.
func randTensor(r *rand.Rand, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

// checkGrads compares the gradients Backward computes for loss = Σ w⊙f(ins)
// (w fixed random weights) with central finite differences of step h on
// every input element, in float64 arithmetic over float32 evaluations. f
// must not keep state between calls. Tolerance: |analytic − numeric| ≤
// atol + rtol·|numeric|.
func checkGrads(t *testing.T, name string, f func(ins []*Tensor) *Tensor, ins []*Tensor, h, atol, rtol float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	probe := f(ins)
	w := randTensor(r, probe.Shape...)
	eval := func() float64 {
		out := f(ins)
		var s float64
		for i, v := range out.Data {
			s += float64(v) * float64(w.Data[i])
		}
		return s
	}
	tp := NewTape()
	tp.Watch(ins...)
	out := f(ins)
	if !out.Tracked() {
		t.Fatalf("%s: output is not tracked", name)
	}
	tp.Backward(out, w.Data)
	grads := make([]*Tensor, len(ins))
	for i, in := range ins {
		grads[i] = in.Grad()
	}
	Unwatch(ins...)
	for i, in := range ins {
		worst := 0.0
		for j := range in.Data {
			v := in.Data[j]
			in.Data[j] = v + float32(h)
			up := eval()
			in.Data[j] = v - float32(h)
			down := eval()
			in.Data[j] = v
			num := (up - down) / (2 * h)
			var got float64
			if grads[i] != nil {
				got = float64(grads[i].Data[j])
			}
			if d := math.Abs(got - num); d > atol+rtol*math.Abs(num) {
				t.Fatalf("%s: input %d element %d: gradient %.6g, finite difference %.6g", name, i, j, got, num)
			} else if d > worst {
				worst = d
			}
		}
		t.Logf("%s: input %d %v max |analytic−numeric| %.2g", name, i, in.Shape, worst)
	}
}

func TestGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		f    func(in []*Tensor) *Tensor
		ins  []*Tensor
	}{
		{"Linear", func(in []*Tensor) *Tensor { return Linear(in[0], in[1], in[2]) },
			[]*Tensor{randTensor(r, 2, 3, 5), randTensor(r, 4, 5), randTensor(r, 4)}},
		{"MatMul", func(in []*Tensor) *Tensor { return MatMul(in[0], in[1]) },
			[]*Tensor{randTensor(r, 2, 3, 5), randTensor(r, 5, 4)}},
		{"MatMulBatched", func(in []*Tensor) *Tensor { return MatMul(in[0], in[1]) },
			[]*Tensor{randTensor(r, 2, 3, 5), randTensor(r, 2, 5, 4)}},
		{"SiLU", func(in []*Tensor) *Tensor { return SiLU(in[0].Clone()) }, []*Tensor{randTensor(r, 3, 7)}},
		{"GELU", func(in []*Tensor) *Tensor { return GELU(in[0].Clone()) }, []*Tensor{randTensor(r, 3, 7)}},
		{"QuickGELU", func(in []*Tensor) *Tensor { return QuickGELU(in[0].Clone()) }, []*Tensor{randTensor(r, 3, 7)}},
		{"GEGLU", func(in []*Tensor) *Tensor { return GEGLU(in[0]) }, []*Tensor{randTensor(r, 3, 8)}},
		{"AddToInPlace", func(in []*Tensor) *Tensor {
			x := Add(in[0], in[1])
			AddTo(x, x, in[0])
			return SiLU(x)
		}, []*Tensor{randTensor(r, 2, 5), randTensor(r, 2, 5)}},
		{"Scale", func(in []*Tensor) *Tensor { return Scale(in[0].Clone(), -1.5) }, []*Tensor{randTensor(r, 4)}},
		{"AddChannelBias", func(in []*Tensor) *Tensor { return AddChannelBias(in[0].Clone(), in[1]) },
			[]*Tensor{randTensor(r, 2, 3, 2, 2), randTensor(r, 2, 3)}},
		{"SubMulExp", func(in []*Tensor) *Tensor { return Mul(Sub(in[0], in[1]), Exp(in[1])) },
			[]*Tensor{randTensor(r, 6), randTensor(r, 6)}},
		{"MSE", func(in []*Tensor) *Tensor { return MSE(in[0], in[1]) }, []*Tensor{randTensor(r, 2, 5), randTensor(r, 2, 5)}},
		{"Mean", func(in []*Tensor) *Tensor { return Mean(in[0]) }, []*Tensor{randTensor(r, 2, 5)}},
		{"Concat1", func(in []*Tensor) *Tensor { return Concat(1, in[0], in[1]) },
			[]*Tensor{randTensor(r, 2, 3, 2, 2), randTensor(r, 2, 1, 2, 2)}},
		{"Split", func(in []*Tensor) *Tensor {
			p := Split(in[0], 2, 2)
			return Mul(p[0].Reshape(2, 2), p[1].Reshape(2, 2).Clone().Reshape(4).Reshape(2, 2))
		}, []*Tensor{randTensor(r, 4, 2, 1)}},
		{"Repeat", func(in []*Tensor) *Tensor { return Repeat(in[0], 3) }, []*Tensor{randTensor(r, 2, 3)}},
		{"Transpose", func(in []*Tensor) *Tensor { return Transpose(in[0]) }, []*Tensor{randTensor(r, 2, 3, 5)}},
		{"Upsample2x", func(in []*Tensor) *Tensor { return UpsampleNearest(in[0], 6, 4) }, []*Tensor{randTensor(r, 1, 2, 3, 2)}},
		{"UpsampleSize", func(in []*Tensor) *Tensor { return UpsampleNearest(in[0], 5, 7) }, []*Tensor{randTensor(r, 1, 2, 3, 2)}},
		{"PadBottomRight", func(in []*Tensor) *Tensor { return PadBottomRight(in[0]) }, []*Tensor{randTensor(r, 1, 2, 3, 2)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGrads(t, c.name, c.f, c.ins, 1e-2, 2e-3, 2e-2) })
	}
}

// TestTapeInPlaceKeepsSavedValues checks the copy-on-write rule: an in-place
// op after an op that saved its input must not change that op's gradient.
func TestTapeInPlaceKeepsSavedValues(t *testing.T) {
	x := FromData([]float32{1, 2, 3}, 3)
	w := FromData([]float32{2, 2, 2}, 3)
	tp := NewTape()
	tp.Watch(x, w)
	h := x.Clone()
	y := Mul(h, w) // saves h = x
	SiLU(h)        // rewrites h in place: must not reach y's backward
	AddTo(y, y, h)
	loss := Sum(y)
	tp.Backward(loss, nil)
	for i, want := range []float32{1, 2, 3} {
		if got := w.Grad().Data[i]; got != want {
			t.Fatalf("dw[%d] = %v, want %v (saved input was overwritten)", i, got, want)
		}
	}
	if x.Tracked() != true || h.Data[0] == 1 {
		t.Fatalf("h not updated in place: %v", h.Data)
	}
}

// TestUntrackedOpsRecordNothing checks inference pays nothing: no tape, no
// node on outputs.
func TestUntrackedOpsRecordNothing(t *testing.T) {
	x := Full(1, 2, 2)
	y := SiLU(Add(x, x))
	if y.Tracked() {
		t.Fatal("untracked inputs gave a tracked output")
	}
}

func TestErf32(t *testing.T) {
	worst := 0.0
	for x := -6.0; x <= 6; x += 1e-3 {
		d := math.Abs(float64(erf32(float32(x))) - math.Erf(float64(float32(x))))
		worst = max(worst, d)
	}
	if worst > 5e-7 {
		t.Fatalf("erf32 differs from math.Erf by %.3g", worst)
	}
	t.Logf("max |erf32 − erf| %.3g", worst)
}
