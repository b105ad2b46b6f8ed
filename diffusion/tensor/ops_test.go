package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randn(r *rand.Rand, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

func assertClose(t *testing.T, name string, got, want *Tensor, atol float64) {
	t.Helper()
	if !SameShape(got, want) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
	}
	if d, at := MaxAbsDiff(got, want); d > atol {
		t.Fatalf("%s: max abs diff %g at %d (got %g want %g), atol %g", name, d, at, got.Data[at], want.Data[at], atol)
	}
}

// naiveConv2d is the textbook 7-loop convolution used as the reference.
func naiveConv2d(x, w, b *Tensor, p Conv2dParams) *Tensor {
	n, cin, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	cout, kh, kw := w.Shape[0], w.Shape[2], w.Shape[3]
	ho, wo := Conv2dOutSize(h, kh, p), Conv2dOutSize(wd, kw, p)
	out := New(n, cout, ho, wo)
	for i := 0; i < n; i++ {
		for o := 0; o < cout; o++ {
			for y := 0; y < ho; y++ {
				for xx := 0; xx < wo; xx++ {
					var s float64
					if b != nil {
						s = float64(b.Data[o])
					}
					for c := 0; c < cin; c++ {
						for ki := 0; ki < kh; ki++ {
							for kj := 0; kj < kw; kj++ {
								iy, ix := y*p.Stride-p.Padding+ki, xx*p.Stride-p.Padding+kj
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								s += float64(x.Data[((i*cin+c)*h+iy)*wd+ix]) * float64(w.Data[((o*cin+c)*kh+ki)*kw+kj])
							}
						}
					}
					out.Data[((i*cout+o)*ho+y)*wo+xx] = float32(s)
				}
			}
		}
	}
	return out
}

func TestConv2d(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name                  string
		n, cin, h, w, cout, k int
		p                     Conv2dParams
		bias                  bool
	}{
		{"3x3 pad1", 2, 5, 7, 9, 6, 3, Conv2dParams{1, 1}, true},
		{"3x3 stride2 pad0 (Downsample2D)", 1, 4, 9, 8, 3, 3, Conv2dParams{2, 0}, true},
		{"3x3 stride2 pad1", 2, 3, 8, 8, 4, 3, Conv2dParams{2, 1}, false},
		{"1x1", 2, 8, 5, 6, 3, 1, Conv2dParams{1, 0}, true},
		{"1x1 no bias", 1, 3, 4, 4, 7, 1, Conv2dParams{1, 0}, false},
		{"3x3 on 1x1 image", 1, 2, 1, 1, 2, 3, Conv2dParams{1, 1}, true},
		{"wide image", 1, 2, 3, 40, 2, 3, Conv2dParams{1, 1}, true},
		{"5x5 pad2 (shifted im2col, |dx| 2)", 2, 3, 6, 5, 4, 5, Conv2dParams{1, 2}, true},
		{"3x3 pad1 on a 1-wide image", 1, 2, 5, 1, 3, 3, Conv2dParams{1, 1}, true},
		{"3x3 pad1 on a 2x2 image", 2, 3, 2, 2, 2, 3, Conv2dParams{1, 1}, false},
		{"3x3 pad0 (narrower output)", 1, 2, 6, 7, 3, 3, Conv2dParams{1, 0}, true},
		{"3x3 pad1, more columns than one GEMM block", 1, 2, 48, 48, 3, 3, Conv2dParams{1, 1}, true},
	}
	for _, c := range cases {
		for _, band := range []int{0, 1, 2, -1} { // output rows per im2col band; 0: all; -1: all, BLAS not Packed (no implicit GEMM)
			t.Run(fmt.Sprintf("%s/band%d", c.name, band), func(t *testing.T) {
				if band < 0 {
					old := BLAS
					BLAS = struct{ Packed }{}
					defer func() { BLAS = old }()
				}
				if band > 0 {
					old := maxColFloats
					maxColFloats = band * c.cin * c.k * c.k * Conv2dOutSize(c.w, c.k, c.p)
					defer func() { maxColFloats = old }()
				}
				x := randn(r, c.n, c.cin, c.h, c.w)
				w := randn(r, c.cout, c.cin, c.k, c.k)
				var b *Tensor
				if c.bias {
					b = randn(r, c.cout)
				}
				assertClose(t, "conv", Conv2d(x, w, b, c.p), naiveConv2d(x, w, b, c.p), 1e-4)
			})
		}
	}
}

func naiveAttention(q, k, v *Tensor, heads int, scale float32, causal bool) *Tensor {
	b, lq, hd := q.Shape[0], q.Shape[1], q.Shape[2]
	lk, hdv := k.Shape[1], v.Shape[2]
	d, dv := hd/heads, hdv/heads
	out := New(b, lq, hdv)
	for bi := 0; bi < b; bi++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < lq; i++ {
				s := make([]float64, lk)
				m := math.Inf(-1)
				for j := 0; j < lk; j++ {
					if causal && j > i {
						s[j] = math.Inf(-1)
						continue
					}
					var dot float64
					for e := 0; e < d; e++ {
						dot += float64(q.Data[(bi*lq+i)*hd+h*d+e]) * float64(k.Data[(bi*lk+j)*hd+h*d+e])
					}
					s[j] = dot * float64(scale)
					m = math.Max(m, s[j])
				}
				var sum float64
				for j := range s {
					s[j] = math.Exp(s[j] - m)
					sum += s[j]
				}
				for e := 0; e < dv; e++ {
					var acc float64
					for j := 0; j < lk; j++ {
						acc += s[j] / sum * float64(v.Data[(bi*lk+j)*hdv+h*dv+e])
					}
					out.Data[(bi*lq+i)*hdv+h*dv+e] = float32(acc)
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name             string
		b, lq, lk, heads int
		d, dv            int
		causal           bool
	}{
		{"self 2 heads", 2, 10, 10, 2, 4, 4, false},
		{"cross", 2, 9, 7, 3, 5, 5, false},
		{"causal (CLIP)", 3, 12, 12, 4, 8, 8, true},
		{"many queries chunked", 1, 3000, 700, 1, 4, 4, false},
		// The fused path's edges: blocks of fewer than six queries, one
		// to five column strips of 16 (masked tails), several tasks per
		// head (800 > fusedRows queries), the most keys it takes.
		{"one query", 1, 1, 5, 2, 3, 3, false},
		{"five queries, 16 keys", 2, 5, 16, 1, 16, 16, false},
		{"SD cross, 7 queries", 1, 7, 77, 2, 40, 40, false},
		{"SD cross, dv 160", 1, 13, 77, 1, 160, 160, false},
		{"dv ≠ d", 2, 20, 33, 3, 7, 17, false},
		{"49 to 64 keys", 1, 12, 49, 1, 9, 64, false},
		{"65 keys, dv 65", 1, 6, 65, 1, 5, 65, false},
		{"CLIP causal 77", 2, 77, 77, 2, 64, 64, true},
		{"800 queries", 1, 800, 77, 1, 8, 8, false},
		{"256 keys", 1, 30, 256, 1, 8, 8, true},
		// Zero-width heads: uniform weights over no dimensions, or an
		// empty output (the fused path must not take them).
		{"d 0", 1, 2, 3, 1, 0, 4, false},
		{"dv 0", 1, 2, 3, 1, 4, 0, false},
	}
	type path struct {
		name  string
		rows6 rowsKernel
	}
	paths := []path{{"gemm blocks", nil}, {"fused go", rows6Go}}
	if attnRows6 != nil {
		paths = append(paths, path{"fused asm", attnRows6})
	}
	defer func(k rowsKernel) { attnRows6 = k }(attnRows6)
	for _, c := range cases {
		q := randn(r, c.b, c.lq, c.heads*c.d)
		k := randn(r, c.b, c.lk, c.heads*c.d)
		v := randn(r, c.b, c.lk, c.heads*c.dv)
		scale := float32(1 / math.Sqrt(float64(max(1, c.d))))
		want := naiveAttention(q, k, v, c.heads, scale, c.causal)
		for _, p := range paths {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				attnRows6 = p.rows6
				before := FLOPs()
				got := Attention(q, k, v, c.heads, scale, c.causal)
				assertClose(t, "attention", got, want, 2e-5)
				if p.rows6 != nil && c.lk <= fusedMaxKeys {
					if n, want := FLOPs()-before, int64(2*c.b*c.heads*c.lq*c.lk*(c.d+c.dv)); n != want {
						t.Errorf("fused path counted %d FLOPs, want %d", n, want)
					}
				}
			})
		}
	}
}

// TestRows6 holds the assembly rowsKernel to rows6Go for every column
// count up to 200 (one to four strips, each tail width) and checks that
// nothing outside the six rows' n columns of c is written.
func TestRows6(t *testing.T) {
	if attnRows6 == nil {
		t.Skip("no vector rows kernel on this CPU")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, k := range []int{1, 2, 7, 40, 77} {
		for n := 1; n <= 200; n++ {
			lda, ldb, ldc := k+3, n+5, n+2
			a := randn(r, 5*lda+k).Data
			b := randn(r, (k-1)*ldb+n).Data
			got := make([]float32, 5*ldc+n+7)
			want := make([]float32, len(got))
			for i := range got {
				got[i], want[i] = -1, -1
			}
			attnRows6(a, lda, b, ldb, got, ldc, k, n)
			rows6Go(a, lda, b, ldb, want, ldc, k, n)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("k %d n %d: c[%d] = %g, want %g", k, n, i, got[i], want[i])
				}
			}
		}
	}
}

func TestGroupNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := randn(r, 2, 6, 3, 4)
	w, b := randn(r, 6), randn(r, 6)
	got := GroupNorm(x, 3, w, b, 1e-5)
	want := New(x.Shape...)
	for n := 0; n < 2; n++ {
		for g := 0; g < 3; g++ {
			var vals []float64
			for c := 2 * g; c < 2*g+2; c++ {
				for i := 0; i < 12; i++ {
					vals = append(vals, float64(x.Data[(n*6+c)*12+i]))
				}
			}
			var mean, v float64
			for _, e := range vals {
				mean += e
			}
			mean /= float64(len(vals))
			for _, e := range vals {
				v += (e - mean) * (e - mean)
			}
			v /= float64(len(vals))
			for c := 2 * g; c < 2*g+2; c++ {
				for i := 0; i < 12; i++ {
					idx := (n*6+c)*12 + i
					want.Data[idx] = float32((float64(x.Data[idx])-mean)/math.Sqrt(v+1e-5))*w.Data[c] + b.Data[c]
				}
			}
		}
	}
	assertClose(t, "group norm", got, want, 1e-5)
}

func TestLayerNormAndSoftmax(t *testing.T) {
	x := FromData([]float32{1, 2, 3, 4, -1, 0, 1, 10}, 2, 4)
	ln := LayerNorm(x, nil, nil, 0)
	for r := 0; r < 2; r++ {
		var mean, sq float64
		for _, v := range ln.Data[r*4 : r*4+4] {
			mean += float64(v)
		}
		for _, v := range ln.Data[r*4 : r*4+4] {
			sq += float64(v) * float64(v)
		}
		if math.Abs(mean) > 1e-5 || math.Abs(sq/4-1) > 1e-4 {
			t.Errorf("row %d: mean %g, var %g", r, mean/4, sq/4)
		}
	}
	sm := Softmax(FromData([]float32{0, 0, 1000, 1000, float32(math.Inf(-1)), 0}, 3, 2))
	want := []float32{0.5, 0.5, 0.5, 0.5, 0, 1}
	for i := range want {
		if math.Abs(float64(sm.Data[i]-want[i])) > 1e-6 {
			t.Fatalf("softmax = %v, want %v", sm.Data, want)
		}
	}
}

func TestActivations(t *testing.T) {
	cases := []struct {
		name string
		f    func(*Tensor) *Tensor
		in   float32
		want float64
	}{
		{"silu(1)", SiLU, 1, 1 / (1 + math.Exp(-1))},
		{"silu(-3)", SiLU, -3, -3 / (1 + math.Exp(3))},
		{"gelu(1)", GELU, 1, 0.8413447460685429},
		{"gelu(-2)", GELU, -2, -0.04550026389635842},
		{"quick_gelu(1)", QuickGELU, 1, 1 / (1 + math.Exp(-1.702))},
	}
	for _, c := range cases {
		got := c.f(FromData([]float32{c.in}, 1)).Data[0]
		if math.Abs(float64(got)-c.want) > 1e-6 {
			t.Errorf("%s = %g, want %g", c.name, got, c.want)
		}
	}
	g := GEGLU(FromData([]float32{2, 3, 1, -2}, 1, 4))
	if math.Abs(float64(g.Data[0])-2*0.8413447460685429) > 1e-6 || math.Abs(float64(g.Data[1])-3*-0.04550026389635842) > 1e-6 {
		t.Errorf("GEGLU = %v", g.Data)
	}
	if _, err := Activation("relu6"); err == nil {
		t.Error("unknown activation accepted")
	}
}

func TestShapeOps(t *testing.T) {
	a := FromData([]float32{1, 2, 3, 4}, 1, 2, 1, 2)
	b := FromData([]float32{5, 6}, 1, 1, 1, 2)
	c := Concat(1, a, b)
	if want := []float32{1, 2, 3, 4, 5, 6}; !equal(c.Data, want) || c.Shape[1] != 3 {
		t.Errorf("Concat = %v %v", c.Shape, c.Data)
	}
	u := UpsampleNearest2x(FromData([]float32{1, 2, 3, 4}, 1, 1, 2, 2))
	if want := []float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}; !equal(u.Data, want) {
		t.Errorf("Upsample = %v", u.Data)
	}
	tr := Transpose(FromData([]float32{1, 2, 3, 4, 5, 6}, 1, 2, 3))
	if want := []float32{1, 4, 2, 5, 3, 6}; !equal(tr.Data, want) || tr.Shape[1] != 3 {
		t.Errorf("Transpose = %v %v", tr.Shape, tr.Data)
	}
	parts := Split(FromData([]float32{1, 2, 3, 4, 5, 6}, 3, 2), 1, 2)
	if !equal(parts[1].Data, []float32{3, 4, 5, 6}) {
		t.Errorf("Split = %v", parts[1].Data)
	}
	m := MatMul(FromData([]float32{1, 2, 3, 4}, 2, 2), FromData([]float32{5, 6, 7, 8}, 2, 2))
	if want := []float32{19, 22, 43, 50}; !equal(m.Data, want) {
		t.Errorf("MatMul = %v", m.Data)
	}
	l := Linear(FromData([]float32{1, 2}, 1, 2), FromData([]float32{1, 0, 0, 1, 1, 1}, 3, 2), FromData([]float32{0, 1, 2}, 3))
	if want := []float32{1, 3, 5}; !equal(l.Data, want) {
		t.Errorf("Linear = %v", l.Data)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 88; x += 0.000731 {
		want := math.Exp(float64(x))
		got := float64(expf(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	// 2 ulp of float32 is about 2.4e-7 relative.
	if worst > 2.4e-7 {
		t.Fatalf("expf max relative error %g", worst)
	}
	for _, c := range []struct{ in, want float32 }{{-100, 0}, {0, 1}, {float32(math.Inf(-1)), 0}} {
		if got := expf(c.in); got != c.want {
			t.Errorf("expf(%g) = %g, want %g", c.in, got, c.want)
		}
	}
	if got := expf(100); !math.IsInf(float64(got), 1) {
		t.Errorf("expf(100) = %g, want +Inf", got)
	}
	for _, impl := range softmaxImpls() {
		testExpSum(t, impl)
	}
}

// TestSoftmaxRows checks every implementation's rows against a float64
// softmax for row lengths 1..100 (each tail of one, two and three registers
// and the three-register loop) and around shortRow, blocks of one to three rows, rows with −Inf
// entries and rows of all −Inf (zeros), and guard elements around the block
// that must stay untouched; a row holding a NaN must come out all NaN.
func TestSoftmaxRows(t *testing.T) {
	const guard = 1234.5
	r := rand.New(rand.NewPCG(9, 10))
	for _, impl := range softmaxImpls() {
		for _, n := range append(seq(1, 100), 255, 256, 257, 300) {
			rows := 1 + n%3
			buf := make([]float32, rows*n+8)
			for i := range buf {
				buf[i] = guard
			}
			block := buf[4 : 4+rows*n]
			for i := range block {
				block[i] = float32(r.NormFloat64() * 10)
			}
			if n > 1 {
				block[n/2] = negInf32 // one masked entry in row 0
			}
			if rows > 1 {
				for i := range n { // row 1 fully masked
					block[n+i] = negInf32
				}
			}
			if n > 2 && rows > 2 {
				block[2*n+1] = float32(math.NaN()) // row 2 holds a NaN: all NaN
			}
			in := slices.Clone(block)
			impl.rows(block, n)
			for i := range buf {
				if (i < 4 || i >= 4+rows*n) && buf[i] != guard {
					t.Fatalf("%s n %d: wrote buf[%d] outside the block", impl.name, n, i)
				}
			}
			for ri := range rows {
				x := in[ri*n : (ri+1)*n]
				if slices.ContainsFunc(x, func(v float32) bool { return v != v }) {
					for j, v := range block[ri*n : (ri+1)*n] {
						if v == v {
							t.Fatalf("%s n %d: row %d holds a NaN but p[%d] = %g", impl.name, n, ri, j, v)
						}
					}
					continue
				}
				m := math.Inf(-1)
				for _, v := range x {
					m = math.Max(m, float64(v))
				}
				var sum float64
				for _, v := range x {
					sum += math.Exp(float64(v) - m)
				}
				for j, v := range x {
					want := 0.0
					if !math.IsInf(m, -1) {
						want = math.Exp(float64(v)-m) / sum
					}
					if got := block[ri*n+j]; !(math.Abs(float64(got)-want) <= max(1e-6*want, 1e-12)) { // NaN fails too
						t.Fatalf("%s n %d row %d: p[%d] = %g, want %g", impl.name, n, ri, j, got, want)
					}
				}
			}
		}
	}
}

// testExpSum checks one implementation of softmaxRow's passes against
// math.Exp over expf's range, in rows of lengths 0..33 (every tail length)
// within a longer buffer whose guard elements must stay untouched.
func testExpSum(t *testing.T, impl softmaxImpl) {
	const guard = 1234.5
	buf := make([]float32, 80)
	worst := 0.0
	x := float32(-87)
	for n := 0; x <= 88; n = (n + 1) % 34 {
		for i := range buf {
			buf[i] = guard
		}
		row := buf[3 : 3+n]
		in := make([]float32, n)
		for i := range row {
			row[i] = min(x, 88)
			in[i] = row[i]
			x += 0.000731
		}
		// Below the cut-off, −Inf and NaN in some rows.
		if n > 2 && n%3 == 0 {
			row[n-1], in[n-1] = -87.4, -87.4
			row[0], in[0] = float32(math.Inf(-1)), float32(math.Inf(-1))
			row[1], in[1] = -1e30, -1e30
		}
		if got, want := impl.max(row), rowMaxGo(in); got != want {
			t.Fatalf("%s: max of %v = %g, want %g", impl.name, in, got, want)
		}
		sum := impl.expSum(row, 0)
		var wantSum float64
		for i, v := range row {
			want := math.Exp(float64(in[i]))
			if in[i] < -87.33654 {
				want = 0
			}
			wantSum += float64(v)
			if want == 0 {
				if v != 0 {
					t.Fatalf("%s: exp(%g) = %g, want 0", impl.name, in[i], v)
				}
				continue
			}
			if rel := math.Abs(float64(v)-want) / want; rel > worst {
				worst = rel
			}
		}
		if wantSum < math.MaxFloat32/2 && math.Abs(float64(sum)-wantSum) > 1e-6*wantSum {
			t.Fatalf("%s: sum %g, want %g (n = %d)", impl.name, sum, wantSum, n)
		}
		impl.scale(row, 0.5)
		for i := range buf {
			if (i < 3 || i >= 3+n) && buf[i] != guard {
				t.Fatalf("%s: n = %d wrote buf[%d] = %g outside the row", impl.name, n, i, buf[i])
			}
		}
	}
	if worst > 2.4e-7 {
		t.Errorf("%s: exp max relative error %g", impl.name, worst)
	}
	// Rows of all −Inf become all zero; an empty row's max is −Inf.
	if m := impl.max(nil); !math.IsInf(float64(m), -1) {
		t.Errorf("%s: max of empty row = %g", impl.name, m)
	}
	for n := 1; n <= 33; n++ {
		row := make([]float32, n)
		for i := range row {
			row[i] = float32(math.Inf(-1))
		}
		if m := impl.max(row); !math.IsInf(float64(m), -1) {
			t.Fatalf("%s: max of −Inf row = %g", impl.name, m)
		}
		if s := impl.expSum(row[:n-1], 0); s != 0 {
			t.Fatalf("%s: sum of exp(−Inf) = %g", impl.name, s)
		}
		for i, v := range row[:n-1] {
			if v != 0 {
				t.Fatalf("%s: exp(−Inf)[%d] = %g", impl.name, i, v)
			}
		}
	}
	t.Logf("%s: exp max relative error %g", impl.name, worst)
}

// TestSiLUImpls checks every SiLU implementation against float64 math over
// [−100, 100] (past both ends of exp's range), in slices of every tail
// length inside guarded buffers, in place and out of place, with NaN.
func TestSiLUImpls(t *testing.T) {
	silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	dsilu := func(x float64) float64 { s := 1 / (1 + math.Exp(-x)); return s * (1 + x*(1-s)) }
	const guard = 1234.5
	for _, impl := range actImpls() {
		t.Run(impl.name, func(t *testing.T) {
			worst, worstGrad := 0.0, 0.0
			x := -100.0
			for n := 0; x <= 100; n = (n + 1) % 35 {
				src := make([]float32, n)
				for i := range src {
					src[i] = float32(x)
					x += 0.0173
				}
				if n > 3 {
					src[1] = float32(math.NaN())
				}
				for _, inPlace := range []bool{false, true} {
					buf := make([]float32, n+6)
					for i := range buf {
						buf[i] = guard
					}
					dst := buf[3 : 3+n]
					in := src
					if inPlace {
						copy(dst, src)
						in = dst
					}
					impl.silu(dst, in)
					g, acc := make([]float32, n+6), make([]float32, n+6)
					for i := range g {
						g[i], acc[i] = 0.5+float32(i%5), guard
					}
					for i := 3; i < 3+n; i++ {
						acc[i] = 0.25
					}
					impl.siluGrad(acc[3:3+n], g[3:3+n], src)
					for i := range buf {
						if (i < 3 || i >= 3+n) && (buf[i] != guard || acc[i] != guard) {
							t.Fatalf("n=%d: wrote outside the slice at %d", n, i-3)
						}
					}
					for i, v := range src {
						want, wantGrad := silu(float64(v)), 0.25+float64(g[3+i])*dsilu(float64(v))
						got, gotGrad := float64(dst[i]), float64(acc[3+i])
						if math.IsNaN(float64(v)) {
							if !math.IsNaN(got) || !math.IsNaN(gotGrad) {
								t.Fatalf("SiLU(NaN) = %g, grad %g", got, gotGrad)
							}
							continue
						}
						e := math.Abs(got-want) / math.Max(math.Abs(want), 1e-30)
						if math.Abs(want) < 1e-30 {
							e = math.Abs(got - want)
						}
						eg := math.Abs(gotGrad-wantGrad) / math.Max(math.Abs(wantGrad), 1)
						worst, worstGrad = max(worst, e), max(worstGrad, eg)
					}
				}
			}
			if worst > 1e-6 || worstGrad > 1e-6 {
				t.Fatalf("max relative error %g, gradient %g", worst, worstGrad)
			}
			t.Logf("max relative error %g, gradient %g", worst, worstGrad)
		})
	}
}

// TestGEGLUImpls checks every GEGLU implementation against float64 math
// (math.Erf) for gates over [−12, 12], every tail length, guarded buffers.
func TestGEGLUImpls(t *testing.T) {
	phi := func(v float64) float64 { return 0.5 * (1 + math.Erf(v/math.Sqrt2)) }
	dgelu := func(v float64) float64 { return phi(v) + v*math.Exp(-v*v/2)/math.Sqrt(2*math.Pi) }
	const guard = 1234.5
	guarded := func(n int, f func(i int) float32) []float32 {
		b := make([]float32, n+6)
		for i := range b {
			b[i] = guard
			if i >= 3 && i < 3+n {
				b[i] = f(i - 3)
			}
		}
		return b
	}
	for _, impl := range actImpls() {
		t.Run(impl.name, func(t *testing.T) {
			worst := 0.0
			v := -12.0
			for n := 0; v <= 12; n = (n + 1) % 35 {
				gate, hidden, g := make([]float32, n), make([]float32, n), make([]float32, n)
				for i := range gate {
					gate[i], hidden[i], g[i] = float32(v), float32(1.5-float64(i%4)), float32(0.5+float64(i%3))
					v += 0.0071
				}
				dst := guarded(n, func(int) float32 { return 0 })
				accH := guarded(n, func(int) float32 { return 0.25 })
				accG := guarded(n, func(int) float32 { return -0.5 })
				impl.geglu(dst[3:3+n], hidden, gate)
				impl.gegluGrad(accH[3:3+n], accG[3:3+n], g, hidden, gate)
				for i := range dst {
					if (i < 3 || i >= 3+n) && (dst[i] != guard || accH[i] != guard || accG[i] != guard) {
						t.Fatalf("n=%d: wrote outside the slice at %d", n, i-3)
					}
				}
				for i, x := range gate {
					xv, h, gv := float64(x), float64(hidden[i]), float64(g[i])
					for _, c := range []struct{ got, want float64 }{
						{float64(dst[3+i]), h * xv * phi(xv)},
						{float64(accH[3+i]), 0.25 + gv*xv*phi(xv)},
						{float64(accG[3+i]), -0.5 + gv*h*dgelu(xv)},
					} {
						worst = max(worst, math.Abs(c.got-c.want)/math.Max(1, math.Abs(c.want)))
					}
				}
			}
			if worst > 2e-6 {
				t.Fatalf("max error %g", worst)
			}
			t.Logf("max error %g", worst)
		})
	}
}

// TestIm2colRowRanges checks every sub-range [j0, j0+n) of one im2col row,
// of a plane and of its 2x nearest upsampling, against the per-element
// definition, for offsets past every edge and odd and even starts.
func TestIm2colRowRanges(t *testing.T) {
	const h, w = 4, 5
	plane := make([]float32, h*w)
	for i := range plane {
		plane[i] = float32(i + 1)
	}
	for _, c := range []struct {
		name string
		row  func(dst, plane []float32, h, w, dy, dx, j0, n int)
		f    int // output pixels per input pixel along each axis
	}{
		{"shifted", im2colShifted, 1},
		{"upsampled", im2colUpsampled, 2},
	} {
		ow := c.f * w // output row width
		for rows := 1; rows <= 7; rows++ {
			for dy := -3; dy <= 4; dy++ {
				for dx := -3; dx <= 3; dx++ {
					total := rows * ow
					for j0 := 0; j0 < total; j0++ {
						for n := 0; j0+n <= total; n++ {
							dst := make([]float32, n+2)
							for i := range dst {
								dst[i] = -1 // every entry of the range must be written
							}
							c.row(dst[:n], plane, h, w, dy, dx, j0, n)
							for i := range n {
								iy, ix := (j0+i)/ow+dy, (j0+i)%ow+dx
								want := float32(0)
								if iy >= 0 && iy < c.f*h && ix >= 0 && ix < ow {
									want = plane[(iy/c.f)*w+ix/c.f]
								}
								if dst[i] != want {
									t.Fatalf("%s rows %d dy %d dx %d j0 %d n %d: entry %d = %g, want %g", c.name, rows, dy, dx, j0, n, i, dst[i], want)
								}
							}
							if dst[n] != -1 || dst[n+1] != -1 {
								t.Fatalf("%s: wrote past the range", c.name)
							}
						}
					}
				}
			}
		}
	}
}

// TestConv2dUpsample2x checks the fused upsample + convolution against
// Conv2d of UpsampleNearest2x: bit for bit, since the products see the same
// operands in the same order; with half weights, with BLAS not Packed and
// with a tracked input (both the composition), and through the backward
// step.
func TestConv2dUpsample2x(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		name                  string
		n, cin, h, w, cout, k int
		p                     Conv2dParams
		bias, half            bool
	}{
		{"3x3 pad1 (Upsample2D)", 2, 5, 4, 6, 7, 3, Conv2dParams{1, 1}, true, false},
		{"no bias", 1, 3, 5, 3, 4, 3, Conv2dParams{1, 1}, false, false},
		{"1x1 image", 1, 2, 1, 1, 3, 3, Conv2dParams{1, 1}, true, false},
		{"more columns than one GEMM block", 1, 3, 20, 21, 5, 3, Conv2dParams{1, 1}, true, false},
		{"5x5 pad2", 1, 2, 4, 5, 3, 5, Conv2dParams{1, 2}, true, false},
		{"1x1 kernel", 2, 4, 3, 3, 2, 1, Conv2dParams{1, 0}, true, false},
		{"3x3 pad0 (composition)", 1, 2, 4, 4, 3, 3, Conv2dParams{1, 0}, true, false},
		{"3x3 stride 2 (composition)", 1, 2, 4, 4, 3, 3, Conv2dParams{2, 1}, true, false},
		{"half weights", 1, 4, 5, 5, 6, 3, Conv2dParams{1, 1}, true, true},
	}
	for _, c := range cases {
		for _, packed := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/packed=%v", c.name, packed), func(t *testing.T) {
				if !packed {
					old := BLAS
					BLAS = struct{ Packed }{}
					defer func() { BLAS = old }()
				}
				x := randn(r, c.n, c.cin, c.h, c.w)
				w := randn(r, c.cout, c.cin, c.k, c.k)
				if c.half {
					w = FromHalf(randHalf(r, F16, w.Len()), F16, w.Shape...)
				}
				var b *Tensor
				if c.bias {
					b = randn(r, c.cout)
				}
				got := Conv2dUpsample2x(x, w, b, c.p)
				want := Conv2d(UpsampleNearest2x(x), w, b, c.p)
				if !slices.Equal(got.Shape, want.Shape) || !slices.Equal(got.Data, want.Data) {
					t.Fatalf("shape %v, want %v, or the values differ", got.Shape, want.Shape)
				}
			})
		}
	}
	// Tracked: the composition, with its gradient.
	x := randn(r, 1, 2, 3, 3)
	w, b := randn(r, 2, 2, 3, 3), randn(r, 2)
	tp := NewTape()
	tp.Watch(x)
	y := Conv2dUpsample2x(x, w, b, Conv2dParams{1, 1})
	tp.Backward(Sum(y), nil)
	xr := x.Detach()
	tp2 := NewTape()
	tp2.Watch(xr)
	tp2.Backward(Sum(Conv2d(UpsampleNearest2x(xr), w, b, Conv2dParams{1, 1})), nil)
	if !slices.Equal(x.Grad().Data, xr.Grad().Data) {
		t.Fatalf("gradient %v, want %v", x.Grad().Data, xr.Grad().Data)
	}
}

// seq returns lo, lo+1, …, hi.
func seq(lo, hi int) []int {
	s := make([]int, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}
