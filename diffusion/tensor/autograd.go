package tensor

import (
	"fmt"
	"sync"
)

// Tape records, in forward order, the backward step of every op that reads
// a tracked tensor, and replays them in reverse to compute gradients
// (reverse-mode automatic differentiation, as torch.autograd does with its
// graph). The model code is the same for inference and training: the
// trainer watches the parameters, runs the ordinary Forward methods and
// calls Backward on the loss.
//
// Rules that keep in-place ops correct: a backward step captures the data
// slices it needs at record time, never a *Tensor, and an in-place op on a
// tracked tensor (SiLU, AddTo, Scale, AddChannelBias, ...) writes to a fresh
// slice and rebinds the tensor to it, so values saved for backward are
// never overwritten. The difference is visible only through views: a view
// taken before an in-place op keeps the old values while training.
//
// A Tape is used by one forward pass at a time; ops may run their kernels in
// parallel, recording is serialised.
type Tape struct {
	mu    sync.Mutex
	steps []func()
}

// gradNode is a tracked tensor's value at one point of the computation and
// its gradient, allocated on first accumulation.
type gradNode struct {
	tape *Tape
	size int
	grad []float32
}

func (n *gradNode) acc() []float32 {
	if n == nil {
		return nil
	}
	if n.grad == nil {
		n.grad = make([]float32, n.size)
	}
	return n.grad
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// Watch makes each tensor a leaf tracked by tp (a parameter to train, or an
// input whose gradient is wanted), dropping any gradient it had. It panics if
// a tensor is already tracked by another tape or is half-precision (training
// needs float32 storage: watch t.Float32() instead).
func (tp *Tape) Watch(ts ...*Tensor) {
	for _, t := range ts {
		if t.IsHalf() {
			panic(fmt.Sprintf("tensor: Watch of a half-precision tensor %v (convert it with Float32)", t.Shape))
		}
		if t.ag != nil && t.ag.tape != tp {
			panic("tensor: Watch of a tensor tracked by another tape")
		}
		t.ag = &gradNode{tape: tp, size: len(t.Data)}
	}
}

// Unwatch stops tracking each tensor; ops on it no longer record.
func Unwatch(ts ...*Tensor) {
	for _, t := range ts {
		t.ag = nil
	}
}

// Tracked reports whether t is tracked by a tape.
func (t *Tensor) Tracked() bool { return t.ag != nil }

// Grad returns the gradient accumulated for t's current value by the last
// Backward, shaped like t and sharing the tape's storage, or nil when t is
// untracked or no gradient reached it.
func (t *Tensor) Grad() *Tensor {
	if t.ag == nil || t.ag.grad == nil {
		return nil
	}
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: t.ag.grad}
}

// Detach returns an untracked tensor sharing t's data (torch's detach).
func (t *Tensor) Detach() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: t.Data, Half: t.Half, HalfKind: t.HalfKind}
}

// Backward propagates from out: its gradient is seeded with seed (same
// length as out), or with ones when seed is nil (a scalar loss), and every
// recorded step runs once in reverse order. The steps are then dropped, so
// the tape holds no activations afterwards; gradients of watched tensors stay
// readable through Grad until they are watched again. It panics if out is not
// tracked by tp.
func (tp *Tape) Backward(out *Tensor, seed []float32) {
	if out.ag == nil || out.ag.tape != tp {
		panic("tensor: Backward of a tensor this tape does not track")
	}
	g := out.ag.acc()
	if seed == nil {
		fill(g, 1)
	} else {
		if len(seed) != len(g) {
			panic(fmt.Sprintf("tensor: Backward seed of %d values for %v", len(seed), out.Shape))
		}
		addInto(g, seed)
	}
	tp.mu.Lock()
	steps := tp.steps
	tp.steps = nil
	pendingSteps.Add(-int64(len(steps)))
	tp.mu.Unlock()
	for i := len(steps) - 1; i >= 0; i-- {
		steps[i]()
		steps[i] = nil // let the step's saved activations go
	}
}

// Reset drops every recorded step without running it.
func (tp *Tape) Reset() {
	tp.mu.Lock()
	pendingSteps.Add(-int64(len(tp.steps)))
	tp.steps = nil
	tp.mu.Unlock()
}

// tapeOf returns the tape tracking any of ts, or nil. It panics if two
// tapes are mixed.
func tapeOf(ts ...*Tensor) *Tape {
	var tp *Tape
	for _, t := range ts {
		if t == nil || t.ag == nil {
			continue
		}
		if tp != nil && t.ag.tape != tp {
			panic("tensor: op mixes tensors of two tapes")
		}
		tp = t.ag.tape
	}
	return tp
}

// tracked reports whether any of ts is tracked.
func tracked(ts ...*Tensor) bool { return tapeOf(ts...) != nil }

// Record makes out the result of an op on ins when any of ins is tracked:
// out is bound to a new node and back is queued to run during Backward with
// out's gradient g (len(out.Data) values) and, for each input, the slice its
// gradient accumulates into (nil for an untracked input). back must add to
// those slices, never overwrite them, and must use only values captured when
// the op ran. Nil entries in ins are allowed. Record is how ops outside this
// package (losses, the VAE's reparameterisation) join the graph; with no
// tracked input it does nothing.
func Record(out *Tensor, ins []*Tensor, back func(g []float32, grads [][]float32)) {
	record(out, ins, back)
}

func record(out *Tensor, ins []*Tensor, back func(g []float32, grads [][]float32)) {
	tp := tapeOf(ins...)
	if tp == nil {
		return
	}
	nodes := make([]*gradNode, len(ins))
	for i, t := range ins {
		if t != nil {
			nodes[i] = t.ag
		}
	}
	on := &gradNode{tape: tp, size: len(out.Data)}
	out.ag = on
	step := func() {
		if on.grad == nil {
			return // nothing downstream depends on out
		}
		grads := make([][]float32, len(nodes))
		for i, n := range nodes {
			grads[i] = n.acc()
		}
		back(on.grad, grads)
	}
	tp.mu.Lock()
	tp.steps = append(tp.steps, step)
	pendingSteps.Add(1)
	tp.mu.Unlock()
}

// addInto sets dst += src; dst nil means the input needs no gradient.
func addInto(dst, src []float32) {
	if dst == nil {
		return
	}
	parallelFor(len(dst), 1<<15, func(lo, hi int) {
		d, s := dst[lo:hi], src[lo:hi]
		for i := range d {
			d[i] += s[i]
		}
	})
}
