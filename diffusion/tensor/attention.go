package tensor

import (
	"fmt"
	"math"
)

// maxScoreFloats bounds the attention score block one worker holds at a time
// (4 MiB): a 64x64-latent self-attention (4096 queries × 4096 keys) is
// computed 256 query rows at a time instead of as one 4096² matrix per head.
// The backward step holds two such blocks per worker (probabilities and their
// gradient). A variable only so the tests can make blocks small.
var maxScoreFloats = 1 << 20

// Attention is scaled dot-product attention (Vaswani et al. 2017) over
// multi-head projections laid out as the Linear layers produce them, so no
// head permutation is copied:
//
//	q: [B, Lq, H·D], k: [B, Lk, H·D], v: [B, Lk, H·Dv] → [B, Lq, H·Dv]
//	out_h = softmax(scale · q_h·k_hᵀ [+ causal mask]) · v_h
//
// Head h occupies columns [h·D, (h+1)·D). With causal, query i attends only
// to keys j ≤ i (CLIP's text mask). The score matrix is never materialised
// whole: each worker processes blocks of query rows whose scores fit in
// maxScoreFloats, in the spirit of diffusers' sliced attention. This matches
// torch's baddbmm + softmax in float32, i.e. diffusers' AttnProcessor with
// or without upcast_attention. It panics on inconsistent shapes.
//
// When q, k or v is tracked, the backward step recomputes the probabilities
// P block by block in the same way (nothing of size Lq·Lk is kept) and, per
// block and head, with dO the output's gradient, adds Pᵀ·dO to dv,
// scale·dS·k to dq and scale·dSᵀ·q to dk, where dS = P ⊙ (dP − rowsum(P ⊙
// dP)) and dP = dO·vᵀ; masked positions have P = 0. Each (batch, head) pair
// is one task, so the blocks that accumulate into the same rows of dk and dv
// run in turn.
func Attention(q, k, v *Tensor, heads int, scale float32, causal bool) *Tensor {
	mustFloat32("Attention", q, k, v)
	if q.Dims() != 3 || k.Dims() != 3 || v.Dims() != 3 {
		panic(fmt.Sprintf("tensor: Attention needs [B, L, H·D] inputs, got %v %v %v", q.Shape, k.Shape, v.Shape))
	}
	b, lq, hd := q.Shape[0], q.Shape[1], q.Shape[2]
	lk := k.Shape[1]
	hdv := v.Shape[2]
	if k.Shape[0] != b || v.Shape[0] != b || k.Shape[2] != hd || v.Shape[1] != lk || heads <= 0 || hd%heads != 0 || hdv%heads != 0 {
		panic(fmt.Sprintf("tensor: Attention shapes q %v k %v v %v with %d heads", q.Shape, k.Shape, v.Shape, heads))
	}
	d, dv := hd/heads, hdv/heads
	if lq == 0 || lk == 0 {
		return New(b, lq, hdv)
	}
	out := newUninit(b, lq, hdv) // every element is written by a P·V product
	qd, kd, vd := q.Data, k.Data, v.Data
	chunk := max(1, min(lq, maxScoreFloats/lk))
	if attnRows6 != nil && lk <= fusedMaxKeys && d > 0 && dv > 0 {
		attentionRows(attnRows6, out.Data, qd, kd, vd, b, lq, lk, heads, d, dv, scale, causal)
	} else {
		attentionBlocks(out.Data, qd, kd, vd, b, lq, lk, heads, d, dv, chunk, scale, causal)
	}
	if !tracked(q, k, v) {
		return out
	}
	record(out, []*Tensor{q, k, v}, func(g []float32, grads [][]float32) {
		attentionBackward(grads[0], grads[1], grads[2], g, qd, kd, vd, b, lq, lk, heads, d, dv, chunk, scale, causal)
	})
	return out
}

// attentionBlocks writes Attention's output to out ([B, Lq, H·Dv]) with two
// GEMMs per block of chunk query rows and head, the block's scores in a
// pooled scratch buffer of each worker.
func attentionBlocks(out, qd, kd, vd []float32, b, lq, lk, heads, d, dv, chunk int, scale float32, causal bool) {
	hd, hdv := heads*d, heads*dv
	nChunks := (lq + chunk - 1) / chunk
	eachTaskScratch(b*heads*nChunks, chunk*lk, func(scores []float32) func(int) {
		return func(t int) {
			bh, c := t/nChunks, t%nChunks
			bi, h := bh/heads, bh%heads
			q0 := c * chunk
			rows := min(chunk, lq-q0)
			qs := qd[(bi*lq+q0)*hd+h*d:]
			ks := kd[bi*lk*hd+h*d:]
			vs := vd[bi*lk*hdv+h*dv:]
			os := out[(bi*lq+q0)*hdv+h*dv:]
			s := scores[:rows*lk]
			gemm(false, true, rows, lk, d, scale, qs, hd, ks, hd, 0, s, lk)
			for r := 0; r < rows; r++ {
				row := s[r*lk : (r+1)*lk]
				if causal {
					for j := q0 + r + 1; j < lk; j++ {
						row[j] = float32(math.Inf(-1))
					}
				}
				softmaxRow(row)
			}
			gemm(false, false, rows, dv, lk, 1, s, lk, vs, hdv, 0, os, hdv)
		}
	})
}

// fusedMaxKeys is the most keys for which Attention takes attentionRows: a
// block's six score rows then stay in the L1 cache (6·256 floats, 6 KiB).
// Self-attention over thousands of latent pixels goes through
// attentionBlocks, whose GEMMs are faster there.
const fusedMaxKeys = 256

// fusedRows is how many query rows one attentionRows task covers.
const fusedRows = 96

// attentionRows writes Attention's output to out ([B, Lq, H·Dv]) six query
// rows at a time, for few keys (cross-attention to 77 text tokens): per block
// and head, scores S = q·(scale·kᵀ) (6×Lk) with rows6, the softmax of S's rows
// in place, then out = S·v with rows6 again, written straight into out. The
// block never leaves the L1 cache, and q, v and out are used where they lie.
// A block goes through every head before the next, so each row of q and out
// crosses the memory bus once (a head's slice of a row is only D floats);
// scale·kᵀ of every head is packed first (B×H×D×Lk, the size of k). Tasks
// are (batch item, fusedRows query rows); a block of fewer than six rows
// goes through zero-padded copies.
func attentionRows(rows6 rowsKernel, out, qd, kd, vd []float32, b, lq, lk, heads, d, dv int, scale float32, causal bool) {
	hd, hdv := heads*d, heads*dv
	flops.Add(2 * int64(b) * int64(heads) * int64(lq) * int64(lk) * int64(d+dv))
	ktBuf := getScratch(b * heads * d * lk)
	defer putScratch(ktBuf)
	kt := *ktBuf // kt[((bi·H+h)·D+p)·Lk+j] = scale·k[bi, j, h·D+p]
	eachTask(b*heads, func() func(int) {
		return func(t int) {
			bi, h := t/heads, t%heads
			ks, kth := kd[bi*lk*hd+h*d:], kt[t*d*lk:(t+1)*d*lk]
			for j := range lk {
				for p, x := range ks[j*hd : j*hd+d] {
					kth[p*lk+j] = scale * x
				}
			}
		}
	})
	nChunks := (lq + fusedRows - 1) / fusedRows
	eachTaskScratch(b*nChunks, 6*(lk+hd+hdv), func(buf []float32) func(int) {
		s, qpad, opad := buf[:6*lk], buf[6*lk:6*(lk+hd)], buf[6*(lk+hd):]
		return func(t int) {
			bi, c := t/nChunks, t%nChunks
			q0 := c * fusedRows
			rows := min(fusedRows, lq-q0)
			for r0 := 0; r0 < rows; r0 += 6 {
				n := min(6, rows-r0)
				i0 := q0 + r0 // the block's first query
				qb, ob := qd[(bi*lq+i0)*hd:], out[(bi*lq+i0)*hdv:]
				if n < 6 {
					clear(qpad)
					copy(qpad, qb[:n*hd])
					qb, ob = qpad, opad
				}
				for h := range heads {
					bh := bi*heads + h
					rows6(qb[h*d:], hd, kt[bh*d*lk:], lk, s, lk, d, lk)
					if causal {
						for r := range n {
							for j := i0 + r + 1; j < lk; j++ {
								s[r*lk+j] = negInf32
							}
						}
					}
					softmaxKernels.rows(s[:n*lk], lk)
					rows6(s, lk, vd[bi*lk*hdv+h*dv:], hdv, ob[h*dv:], hdv, lk, dv)
				}
				if n < 6 {
					copy(out[(bi*lq+i0)*hdv:][:n*hdv], opad)
				}
			}
		}
	})
}

// rowsKernel computes c = a·b for six rows: C[6][n] = A[6][k]·B[k][n], the
// rows of a, b and c lda, ldb and ldc floats apart (k, n ≥ 1). Only the n
// columns of each row of c are written.
type rowsKernel func(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int)

// rows6Go is the portable rowsKernel, the reference the tests hold the
// assembly to.
func rows6Go(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int) {
	for r := range 6 {
		cr := c[r*ldc : r*ldc+n]
		clear(cr)
		for p, x := range a[r*lda : r*lda+k] {
			for j, y := range b[p*ldb : p*ldb+n] {
				cr[j] += x * y
			}
		}
	}
}

// checkRows6 panics unless a, b and c hold the elements a rowsKernel call
// reads and writes.
func checkRows6(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int) {
	if k < 1 || n < 1 || len(a) < 5*lda+k || len(b) < (k-1)*ldb+n || len(c) < 5*ldc+n {
		panic(fmt.Sprintf("tensor: rows kernel bounds: k %d n %d, lengths %d %d %d", k, n, len(a), len(b), len(c)))
	}
}

// attentionBackward adds to dq, dk and dv (each nil when not wanted, shaped
// as q, k and v) the gradients of Attention for the output gradient g, in
// blocks of chunk query rows. Tasks are (batch, head) pairs: a task owns
// head h's columns of batch item bi in all three gradients, so workers never
// write the same element.
func attentionBackward(dq, dk, dv, g, qd, kd, vd []float32, b, lq, lk, heads, d, dvh, chunk int, scale float32, causal bool) {
	hd, hdv := heads*d, heads*dvh
	eachTask(b*heads, func() func(int) {
		probs := make([]float32, chunk*lk)
		var dprobs []float32
		if dq != nil || dk != nil {
			dprobs = make([]float32, chunk*lk)
		}
		return func(t int) {
			bi, h := t/heads, t%heads
			ks := kd[bi*lk*hd+h*d:]
			vs := vd[bi*lk*hdv+h*dvh:]
			for q0 := 0; q0 < lq; q0 += chunk {
				rows := min(chunk, lq-q0)
				// Keys past the block's last query are masked for every
				// row of a causal block: leave them out.
				lke := lk
				if causal {
					lke = min(lk, q0+rows)
				}
				qs := qd[(bi*lq+q0)*hd+h*d:]
				gs := g[(bi*lq+q0)*hdv+h*dvh:]
				p := probs[:rows*lk]
				gemm(false, true, rows, lke, d, scale, qs, hd, ks, hd, 0, p, lk)
				for r := 0; r < rows; r++ {
					row := p[r*lk : r*lk+lke]
					if causal {
						for j := q0 + r + 1; j < lke; j++ {
							row[j] = negInf32
						}
					}
					softmaxRow(row)
				}
				if dv != nil { // dV += Pᵀ·dO
					gemm(true, false, lke, dvh, rows, 1, p, lk, gs, hdv, 1, dv[bi*lk*hdv+h*dvh:], hdv)
				}
				if dprobs == nil {
					continue
				}
				// dP = dO·Vᵀ, then dS = P ⊙ (dP − rowsum(dP ⊙ P)) in place.
				ds := dprobs[:rows*lk]
				gemm(false, true, rows, lke, dvh, 1, gs, hdv, vs, hdv, 0, ds, lk)
				for r := 0; r < rows; r++ {
					pr, dr := p[r*lk:r*lk+lke], ds[r*lk:r*lk+lke]
					dot := float32(dot64(dr, pr))
					for j, v := range dr {
						dr[j] = pr[j] * (v - dot)
					}
				}
				if dq != nil { // dQ += scale·dS·K
					gemm(false, false, rows, d, lke, scale, ds, lk, ks, hd, 1, dq[(bi*lq+q0)*hd+h*d:], hd)
				}
				if dk != nil { // dK += scale·dSᵀ·Q
					gemm(true, false, lke, d, rows, scale, ds, lk, qs, hd, 1, dk[bi*lk*hd+h*d:], hd)
				}
			}
		}
	})
}
