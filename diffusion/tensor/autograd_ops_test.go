package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// opCase is one configuration of an op with a backward step: f builds the
// output from ins, and setup (optional) shrinks a package limit for the
// duration of the case, returning the function that restores it.
type opCase struct {
	name  string
	f     func(in []*Tensor) *Tensor
	ins   []*Tensor
	setup func() (restore func())
}

// withColFloats makes Conv2d work in bands of at most v column floats.
func withColFloats(v int) func() func() {
	return func() func() {
		old := maxColFloats
		maxColFloats = v
		return func() { maxColFloats = old }
	}
}

// withScoreFloats makes Attention work in blocks of at most v scores.
func withScoreFloats(v int) func() func() {
	return func() func() {
		old := maxScoreFloats
		maxScoreFloats = v
		return func() { maxScoreFloats = old }
	}
}

func (c opCase) run(t *testing.T, body func(t *testing.T)) {
	t.Run(c.name, func(t *testing.T) {
		if c.setup != nil {
			defer c.setup()()
		}
		body(t)
	})
}

func convCases(r *rand.Rand) []opCase {
	type cfg struct {
		name                  string
		n, cin, h, w, cout, k int
		p                     Conv2dParams
		bias                  bool
		colFloats             int // 0: the default bands
	}
	cfgs := []cfg{
		{"1x1", 2, 3, 4, 5, 4, 1, Conv2dParams{1, 0}, true, 0},
		{"1x1 no bias", 1, 4, 3, 3, 2, 1, Conv2dParams{1, 0}, false, 0},
		{"1x1 stride2", 1, 3, 5, 4, 2, 1, Conv2dParams{2, 0}, true, 0},
		{"3x3 pad1", 2, 2, 5, 6, 3, 3, Conv2dParams{1, 1}, true, 0},
		{"3x3 pad1 on 1x1 image", 1, 2, 1, 1, 2, 3, Conv2dParams{1, 1}, true, 0},
		{"3x3 stride2 pad1 odd", 2, 2, 7, 5, 3, 3, Conv2dParams{2, 1}, true, 0},
		{"3x3 stride2 pad1 even", 1, 3, 6, 8, 2, 3, Conv2dParams{2, 1}, false, 0},
		{"3x3 stride2 pad0 odd", 2, 2, 9, 7, 3, 3, Conv2dParams{2, 0}, true, 0},
		{"3x3 stride2 pad0 even", 1, 2, 8, 6, 2, 3, Conv2dParams{2, 0}, true, 0},
		// kdim·wo = 18·6: bands of 2 output rows, the last one short.
		{"3x3 pad1 banded", 2, 2, 5, 6, 3, 3, Conv2dParams{1, 1}, true, 2 * 18 * 6},
		// One output row per band.
		{"3x3 stride2 pad1 banded", 2, 2, 7, 6, 2, 3, Conv2dParams{2, 1}, true, 1},
	}
	var cases []opCase
	for _, c := range cfgs {
		ins := []*Tensor{randTensor(r, c.n, c.cin, c.h, c.w), randTensor(r, c.cout, c.cin, c.k, c.k)}
		if c.bias {
			ins = append(ins, randTensor(r, c.cout))
		}
		p := c.p
		oc := opCase{name: "Conv2d " + c.name, ins: ins, f: func(in []*Tensor) *Tensor {
			var b *Tensor
			if len(in) > 2 {
				b = in[2]
			}
			return Conv2d(in[0], in[1], b, p)
		}}
		if c.colFloats > 0 {
			oc.setup = withColFloats(c.colFloats)
		}
		cases = append(cases, oc)
	}
	return cases
}

func normCases(r *rand.Rand) []opCase {
	gn := func(groups int) func(in []*Tensor) *Tensor {
		return func(in []*Tensor) *Tensor {
			var w, b *Tensor
			if len(in) > 1 {
				w, b = in[1], in[2]
			}
			return GroupNorm(in[0], groups, w, b, 1e-5)
		}
	}
	ln := func(in []*Tensor) *Tensor {
		var w, b *Tensor
		if len(in) > 1 {
			w, b = in[1], in[2]
		}
		return LayerNorm(in[0], w, b, 1e-5)
	}
	return []opCase{
		{name: "GroupNorm 2 groups", f: gn(2), ins: []*Tensor{randTensor(r, 2, 4, 3, 3), randTensor(r, 4), randTensor(r, 4)}},
		{name: "GroupNorm no affine", f: gn(2), ins: []*Tensor{randTensor(r, 2, 4, 2, 3)}},
		{name: "GroupNorm 1 group", f: gn(1), ins: []*Tensor{randTensor(r, 1, 3, 2, 2), randTensor(r, 3), randTensor(r, 3)}},
		{name: "GroupNorm per channel 3-D", f: gn(3), ins: []*Tensor{randTensor(r, 2, 3, 7), randTensor(r, 3), randTensor(r, 3)}},
		{name: "GroupNormTo in place", f: func(in []*Tensor) *Tensor {
			h := in[0].Clone()
			GroupNormTo(h, h, 2, in[1], in[2], 1e-5)
			return h
		}, ins: []*Tensor{randTensor(r, 2, 4, 2, 2), randTensor(r, 4), randTensor(r, 4)}},
		{name: "GroupNormTo in place keeps saved input", f: func(in []*Tensor) *Tensor {
			h := in[0].Clone()
			sq := Mul(h, h) // saves h's values
			GroupNormTo(h, h, 2, in[1], in[2], 1e-5)
			return Add(sq, h)
		}, ins: []*Tensor{randTensor(r, 1, 4, 2, 3), randTensor(r, 4), randTensor(r, 4)}},
		{name: "GroupNormTo other dst", f: func(in []*Tensor) *Tensor {
			dst := New(in[0].Shape...)
			GroupNormTo(dst, in[0], 1, in[1], in[2], 1e-5)
			return dst
		}, ins: []*Tensor{randTensor(r, 2, 2, 3, 2), randTensor(r, 2), randTensor(r, 2)}},
		{name: "LayerNorm", f: ln, ins: []*Tensor{randTensor(r, 2, 3, 5), randTensor(r, 5), randTensor(r, 5)}},
		{name: "LayerNorm no affine", f: ln, ins: []*Tensor{randTensor(r, 4, 8)}},
		{name: "LayerNorm weight only", f: func(in []*Tensor) *Tensor { return LayerNorm(in[0], in[1], nil, 1e-5) },
			ins: []*Tensor{randTensor(r, 3, 6), randTensor(r, 6)}},
	}
}

func softmaxCases(r *rand.Rand) []opCase {
	masked := randTensor(r, 3, 5)
	masked.Data[1] = float32(math.Inf(-1)) // a masked logit has gradient 0
	return []opCase{
		{name: "Softmax", f: func(in []*Tensor) *Tensor { return Softmax(in[0].Clone()) }, ins: []*Tensor{randTensor(r, 2, 3, 4)}},
		{name: "Softmax masked", f: func(in []*Tensor) *Tensor { return Softmax(in[0].Clone()) }, ins: []*Tensor{masked}},
		{name: "Softmax in place keeps saved input", f: func(in []*Tensor) *Tensor {
			h := in[0].Clone()
			sq := Mul(h, h) // saves h's values
			Softmax(h)
			return Add(sq, h)
		}, ins: []*Tensor{randTensor(r, 2, 6)}},
	}
}

func attentionCases(r *rand.Rand) []opCase {
	type cfg struct {
		name             string
		b, lq, lk, heads int
		d, dv            int
		causal           bool
		scoreFloats      int // 0: the default blocks
		onlyQ, onlyKV    bool
	}
	cfgs := []cfg{
		{"self 2 heads", 2, 5, 5, 2, 3, 3, false, 0, false, false},
		{"causal 2 heads", 2, 6, 6, 2, 4, 4, true, 0, false, false},
		{"cross Lq>Lk D≠Dv", 2, 5, 3, 3, 2, 4, false, 0, false, false},
		{"cross Lq<Lk D≠Dv", 1, 3, 6, 2, 4, 2, false, 0, false, false},
		{"causal Lq>Lk", 1, 6, 4, 1, 3, 2, true, 0, false, false},
		{"chunked", 2, 7, 5, 2, 3, 2, false, 2 * 5, false, false},
		{"chunked causal", 1, 9, 9, 3, 2, 3, true, 2 * 9, false, false},
		{"one row per chunk causal", 1, 5, 5, 1, 3, 3, true, 1, false, false},
		{"q only tracked", 1, 4, 3, 2, 2, 3, false, 0, true, false},
		{"k, v only tracked", 1, 4, 3, 2, 2, 3, true, 0, false, true},
	}
	var cases []opCase
	for _, c := range cfgs {
		q := randTensor(r, c.b, c.lq, c.heads*c.d)
		k := randTensor(r, c.b, c.lk, c.heads*c.d)
		v := randTensor(r, c.b, c.lk, c.heads*c.dv)
		scale := float32(1 / math.Sqrt(float64(c.d)))
		heads, causal := c.heads, c.causal
		oc := opCase{name: "Attention " + c.name}
		switch {
		case c.onlyQ:
			oc.ins = []*Tensor{q}
			oc.f = func(in []*Tensor) *Tensor { return Attention(in[0], k, v, heads, scale, causal) }
		case c.onlyKV:
			oc.ins = []*Tensor{k, v}
			oc.f = func(in []*Tensor) *Tensor { return Attention(q, in[0], in[1], heads, scale, causal) }
		default:
			oc.ins = []*Tensor{q, k, v}
			oc.f = func(in []*Tensor) *Tensor { return Attention(in[0], in[1], in[2], heads, scale, causal) }
		}
		if c.scoreFloats > 0 {
			oc.setup = withScoreFloats(c.scoreFloats)
		}
		cases = append(cases, oc)
	}
	return cases
}

func TestOpGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for _, set := range [][]opCase{convCases(r), normCases(r), softmaxCases(r), attentionCases(r)} {
		for _, c := range set {
			c.run(t, func(t *testing.T) { checkGrads(t, c.name, c.f, c.ins, 1e-2, 2e-3, 2e-2) })
		}
	}
}

// checkTrackedSame checks that running f on tracked inputs gives exactly the
// output of the untracked run: recording must not change the numbers.
func checkTrackedSame(t *testing.T, name string, f func(ins []*Tensor) *Tensor, ins []*Tensor) {
	t.Helper()
	plain := f(ins)
	if plain.Tracked() {
		t.Fatalf("%s: untracked inputs gave a tracked output", name)
	}
	want := append([]float32(nil), plain.Data...)
	tp := NewTape()
	tp.Watch(ins...)
	defer Unwatch(ins...)
	got := f(ins)
	if !got.Tracked() {
		t.Fatalf("%s: tracked inputs gave an untracked output", name)
	}
	for i := range want {
		if math.Float32bits(got.Data[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d is %v tracked, %v untracked", name, i, got.Data[i], want[i])
		}
	}
	tp.Reset()
}

func TestTrackedForwardIsIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 13))
	var cases []opCase
	for _, set := range [][]opCase{convCases(r), normCases(r), softmaxCases(r), attentionCases(r)} {
		cases = append(cases, set...)
	}
	// Sizes where the kernels split work across goroutines and SGEMM blocks.
	cases = append(cases,
		opCase{name: "Conv2d 3x3 16 channels 24x24", f: func(in []*Tensor) *Tensor {
			return Conv2d(in[0], in[1], in[2], Conv2dParams{1, 1})
		}, ins: []*Tensor{randTensor(r, 2, 16, 24, 24), randTensor(r, 16, 16, 3, 3), randTensor(r, 16)}},
		opCase{name: "GroupNorm 32 groups", f: func(in []*Tensor) *Tensor {
			return GroupNorm(in[0], 32, in[1], in[2], 1e-6)
		}, ins: []*Tensor{randTensor(r, 2, 64, 8, 8), randTensor(r, 64), randTensor(r, 64)}},
		opCase{name: "LayerNorm 300 rows", f: func(in []*Tensor) *Tensor {
			return LayerNorm(in[0], in[1], in[2], 1e-5)
		}, ins: []*Tensor{randTensor(r, 300, 40), randTensor(r, 40), randTensor(r, 40)}},
		opCase{name: "Softmax 300 rows", f: func(in []*Tensor) *Tensor { return Softmax(in[0].Clone()) },
			ins: []*Tensor{randTensor(r, 300, 77)}},
		opCase{name: "Attention 300x77 chunked", f: func(in []*Tensor) *Tensor {
			return Attention(in[0], in[1], in[2], 4, 0.25, false)
		}, ins: []*Tensor{randTensor(r, 2, 300, 64), randTensor(r, 2, 77, 64), randTensor(r, 2, 77, 32)},
			setup: withScoreFloats(64 * 77)},
	)
	for _, c := range cases {
		c.run(t, func(t *testing.T) { checkTrackedSame(t, c.name, c.f, c.ins) })
	}
}

// TestConvAttentionGradsLarger compares the backward steps on shapes large
// enough to split work across goroutines and bands with references computed
// by the simplest loops: Conv2d's against its adjoint written out per tap,
// Attention's against per-query-row gradients in float64.
func TestConvAttentionGradsLarger(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 19))
	for _, c := range []struct {
		p         Conv2dParams
		h, w      int
		colFloats int
	}{{Conv2dParams{1, 1}, 12, 10, 0}, {Conv2dParams{2, 1}, 11, 12, 0}, {Conv2dParams{2, 0}, 12, 9, 0}, {Conv2dParams{1, 1}, 12, 10, 3 * 72 * 10}} {
		t.Run(fmt.Sprintf("Conv2d stride%d pad%d %dx%d bands %d", c.p.Stride, c.p.Padding, c.h, c.w, c.colFloats), func(t *testing.T) {
			if c.colFloats > 0 {
				defer withColFloats(c.colFloats)()()
			}
			n, cin, cout := 2, 8, 6
			x, w, b := randTensor(r, n, cin, c.h, c.w), randTensor(r, cout, cin, 3, 3), randTensor(r, cout)
			tp := NewTape()
			tp.Watch(x, w, b)
			out := Conv2d(x, w, b, c.p)
			g := randTensor(r, out.Shape...)
			tp.Backward(out, g.Data)
			ho, wo := out.Shape[2], out.Shape[3]
			dx, dw, db := New(x.Shape...), New(w.Shape...), New(cout)
			for i := 0; i < n; i++ {
				for o := 0; o < cout; o++ {
					for y := 0; y < ho; y++ {
						for xx := 0; xx < wo; xx++ {
							gv := g.Data[((i*cout+o)*ho+y)*wo+xx]
							db.Data[o] += gv
							for ci := 0; ci < cin; ci++ {
								for ki := 0; ki < 3; ki++ {
									for kj := 0; kj < 3; kj++ {
										iy, ix := y*c.p.Stride-c.p.Padding+ki, xx*c.p.Stride-c.p.Padding+kj
										if iy < 0 || iy >= c.h || ix < 0 || ix >= c.w {
											continue
										}
										xi, wi := ((i*cin+ci)*c.h+iy)*c.w+ix, ((o*cin+ci)*3+ki)*3+kj
										dx.Data[xi] += gv * w.Data[wi]
										dw.Data[wi] += gv * x.Data[xi]
									}
								}
							}
						}
					}
				}
			}
			assertClose(t, "dx", x.Grad(), dx, 1e-3)
			assertClose(t, "dw", w.Grad(), dw, 1e-3)
			assertClose(t, "db", b.Grad(), db, 1e-3)
		})
	}
	for _, causal := range []bool{false, true} {
		t.Run(fmt.Sprintf("Attention causal %v", causal), func(t *testing.T) {
			defer withScoreFloats(13 * 40)()() // blocks of 13 query rows
			bsz, lq, lk, heads, d, dv := 2, 40, 40, 3, 8, 5
			if !causal {
				lk = 23
			}
			q, k, v := randTensor(r, bsz, lq, heads*d), randTensor(r, bsz, lk, heads*d), randTensor(r, bsz, lk, heads*dv)
			scale := float32(0.3)
			tp := NewTape()
			tp.Watch(q, k, v)
			out := Attention(q, k, v, heads, scale, causal)
			g := randTensor(r, out.Shape...)
			tp.Backward(out, g.Data)
			dq, dk, dvt := New(q.Shape...), New(k.Shape...), New(v.Shape...)
			hd, hdv := heads*d, heads*dv
			for bi := 0; bi < bsz; bi++ {
				for h := 0; h < heads; h++ {
					for i := 0; i < lq; i++ {
						p := make([]float64, lk)
						m := math.Inf(-1)
						for j := range p {
							p[j] = math.Inf(-1)
							if causal && j > i {
								continue
							}
							var s float64
							for e := 0; e < d; e++ {
								s += float64(q.Data[(bi*lq+i)*hd+h*d+e]) * float64(k.Data[(bi*lk+j)*hd+h*d+e])
							}
							p[j] = s * float64(scale)
							m = math.Max(m, p[j])
						}
						var sum float64
						for j := range p {
							p[j] = math.Exp(p[j] - m)
							sum += p[j]
						}
						dp := make([]float64, lk)
						var dot float64
						for j := range p {
							p[j] /= sum
							for e := 0; e < dv; e++ {
								gv := float64(g.Data[(bi*lq+i)*hdv+h*dv+e])
								dvt.Data[(bi*lk+j)*hdv+h*dv+e] += float32(p[j] * gv)
								dp[j] += gv * float64(v.Data[(bi*lk+j)*hdv+h*dv+e])
							}
							dot += dp[j] * p[j]
						}
						for j := range p {
							ds := p[j] * (dp[j] - dot) * float64(scale)
							for e := 0; e < d; e++ {
								dq.Data[(bi*lq+i)*hd+h*d+e] += float32(ds * float64(k.Data[(bi*lk+j)*hd+h*d+e]))
								dk.Data[(bi*lk+j)*hd+h*d+e] += float32(ds * float64(q.Data[(bi*lq+i)*hd+h*d+e]))
							}
						}
					}
				}
			}
			assertClose(t, "dq", q.Grad(), dq, 1e-4)
			assertClose(t, "dk", k.Grad(), dk, 1e-4)
			assertClose(t, "dv", v.Grad(), dvt, 1e-4)
		})
	}
}
