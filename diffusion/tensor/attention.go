package tensor

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// maxScoreFloats bounds the attention score block one worker holds at a time
// (4 MiB): a 64x64-latent self-attention (4096 queries × 4096 keys) is
// computed 256 query rows at a time instead of as one 4096² matrix per head.
const maxScoreFloats = 1 << 20

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
func Attention(q, k, v *Tensor, heads int, scale float32, causal bool) *Tensor {
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
	out := New(b, lq, hdv)
	if lq == 0 || lk == 0 {
		return out
	}
	chunk := max(1, min(lq, maxScoreFloats/lk))
	nChunks := (lq + chunk - 1) / chunk
	tasks := b * heads * nChunks
	workers := min(runtime.GOMAXPROCS(0), tasks)
	var next sync.Mutex
	task := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scores := make([]float32, chunk*lk)
			for {
				next.Lock()
				t := task
				task++
				next.Unlock()
				if t >= tasks {
					return
				}
				bh, c := t/nChunks, t%nChunks
				bi, h := bh/heads, bh%heads
				q0 := c * chunk
				rows := min(chunk, lq-q0)
				qs := q.Data[(bi*lq+q0)*hd+h*d:]
				ks := k.Data[bi*lk*hd+h*d:]
				vs := v.Data[bi*lk*hdv+h*dv:]
				os := out.Data[(bi*lq+q0)*hdv+h*dv:]
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
		}()
	}
	wg.Wait()
	return out
}
