package sampling

// Golden tests against ../shared/refs (cases/<pipeline>/cases.json), made
// with diffusers 0.27.2 on CPU float32 by, per scheduler:
//
//	sched = Class.from_config(pipe.scheduler.config, **extra)  # extra: DPM++ algorithm_type/solver_order/use_karras_sigmas
//	sched.set_timesteps(N)                                      # kind scheduler_set_timesteps: timesteps, sigmas, init_noise_sigma, order
//	sample = initial_noise * sched.init_noise_sigma             # kind scheduler_step_sequence:
//	for i, t in enumerate(sched.timesteps):
//	    scaled_model_inputs[i] = sched.scale_model_input(sample, t)
//	    out = sched.step(model_outputs[i], t, sample[, eta=1.0], generator=g)
//	    sample = prev_samples[i] = out.prev_sample              # pred_original_samples[i] where returned
//
// and the img2img pipeline cases (get_timesteps and add_noise). The tests
// skip when the reference data is absent.

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/tensor"
	"github.com/pigment-ai/pigment/internal/refcases"
)

var refPipelines = []string{"tiny-sd15", "tiny-sd2v"}

// stepTol is the acceptance for scheduler tensors (refs README:
// "scheduler sequences and timesteps/sigmas <= 1e-5 (timesteps exact)").
const stepTol = 1e-5

// diskConfig parses the pipeline's scheduler/scheduler_config.json.
func diskConfig(t *testing.T, pipeline string) Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refcases.ModelDir(t, pipeline), "scheduler", "scheduler_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// configFromMap builds a Config from a decoded JSON object, skipping keys
// Config does not model.
func configFromMap(t *testing.T, m map[string]any) Config {
	t.Helper()
	var c Config
	for k, v := range m {
		if _, ok := configFields[k]; !ok {
			continue
		}
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// caseKind parses "scheduler/<kind>/..." ids; ddim_eta1 is DDIM.
func caseKind(t *testing.T, id string) Kind {
	t.Helper()
	name := strings.Split(id, "/")[1]
	name = strings.TrimSuffix(name, "_eta1")
	k, err := ParseKind(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// maxErrs collects the worst difference per group for a summary log.
type maxErrs struct {
	mu sync.Mutex
	m  map[string]float64
}

func (e *maxErrs) add(group string, d float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = make(map[string]float64)
	}
	if old, ok := e.m[group]; !ok || d > old || math.IsNaN(d) {
		e.m[group] = d
	}
}

func (e *maxErrs) log(t *testing.T) {
	if len(e.m) == 0 {
		return
	}
	keys := make([]string, 0, len(e.m))
	for k := range e.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %-48s max |got-want| = %.3g", k, e.m[k])
	}
	t.Logf("summary:%s", b.String())
}

func TestSetTimestepsRefs(t *testing.T) {
	var errs maxErrs
	for _, pipeline := range refPipelines {
		t.Run(pipeline, func(t *testing.T) {
			set := refcases.Open(t, pipeline)
			disk := diskConfig(t, pipeline)
			cases := set.ByKind("scheduler_set_timesteps")
			if len(cases) == 0 {
				t.Fatal("no scheduler_set_timesteps cases")
			}
			// The shared alphas_cumprod table, bit for bit.
			s, err := New(DDIM, disk)
			if err != nil {
				t.Fatal(err)
			}
			ac := tensor.FromData(s.AlphasCumprod(), 1000)
			errs.add(pipeline+" alphas_cumprod", refcases.Close(t, "alphas_cumprod", ac, set.Tensor(t, "scheduler/alphas_cumprod"), 0))

			for _, c := range cases {
				t.Run(c.ID, func(t *testing.T) {
					k := caseKind(t, c.ID)
					n := c.Int(t, "inputs", "num_inference_steps")
					s, err := New(k, disk)
					if err != nil {
						t.Fatal(err)
					}
					compareEffective(t, s, c.Value(t, "params", "effective_config").(map[string]any))
					p, err := s.Plan(n)
					if err != nil {
						t.Fatal(err)
					}
					want := set.CaseTensor(t, c, "outputs", "timesteps")
					if len(p.Timesteps) != want.Len() {
						t.Fatalf("%d timesteps %v, want %d %v", len(p.Timesteps), p.Timesteps, want.Len(), want.Data)
					}
					for i, w := range want.Data {
						if p.Timesteps[i] != float64(w) {
							t.Fatalf("timesteps %v, want %v", p.Timesteps, want.Data)
						}
					}
					if c.Has("outputs", "sigmas") {
						wantS := set.CaseTensor(t, c, "outputs", "sigmas")
						got := make([]float32, len(p.Sigmas))
						for i, v := range p.Sigmas {
							got[i] = float32(v)
						}
						errs.add(string(k)+" sigmas", refcases.Close(t, "sigmas", tensor.FromData(got, len(got)), wantS, stepTol))
					} else if p.Sigmas != nil {
						t.Errorf("sigmas %v, want none", p.Sigmas)
					}
					wantInit := c.Float(t, "outputs", "init_noise_sigma")
					d := math.Abs(p.InitNoiseSigma - wantInit)
					errs.add(string(k)+" init_noise_sigma", d)
					if d > stepTol {
						t.Errorf("init_noise_sigma %v, want %v", p.InitNoiseSigma, wantInit)
					}
					if order := c.Int(t, "outputs", "order"); p.Order != order {
						t.Errorf("order %d, want %d", p.Order, order)
					}
				})
			}
		})
	}
	errs.log(t)
}

// compareEffective checks every key of the scheduler's effective config
// against diffusers' effective_config.
func compareEffective(t *testing.T, s *Scheduler, want map[string]any) {
	t.Helper()
	for _, key := range s.Effective.Keys() {
		got, _ := s.Effective.Value(key)
		w, ok := want[key]
		if !ok {
			t.Errorf("effective config has %s = %v; diffusers' has no such key", key, got)
			continue
		}
		if !sameJSONValue(got, w) {
			t.Errorf("effective config %s = %#v, want %#v", key, got, w)
		}
	}
	for key := range want {
		if _, modelled := configFields[key]; modelled && !s.Effective.Has(key) {
			if _, own := classKey(s.Kind.ClassName(), key); own {
				t.Errorf("effective config lacks %s", key)
			}
		}
	}
}

func classKey(class, key string) (any, bool) {
	for _, kd := range classDefaults[class] {
		if kd.key == key {
			return kd.value, true
		}
	}
	return nil, false
}

func sameJSONValue(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case float64:
		switch g := got.(type) {
		case float64:
			return g == w || (math.IsNaN(g) && math.IsNaN(w))
		case int:
			return float64(g) == w
		}
		return false
	case []any:
		g, ok := got.([]float64)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range g {
			if f, _ := w[i].(float64); f != g[i] {
				return false
			}
		}
		return true
	}
	return got == want
}

// rowOf returns a copy of x[i] for x of shape [T, ...].
func rowOf(x *tensor.Tensor, i int) *tensor.Tensor {
	n := x.Len() / x.Shape[0]
	return tensor.FromData(append([]float32(nil), x.Data[i*n:(i+1)*n]...), x.Shape[1:]...)
}

// seqNoise returns rows of a stored [T, ...] noise tensor in order.
type seqNoise struct {
	t    testing.TB
	rows *tensor.Tensor
	k    int
}

func (s *seqNoise) Randn(shape ...int) *tensor.Tensor {
	if s.k >= s.rows.Shape[0] {
		s.t.Fatalf("noise draw %d: only %d stored", s.k, s.rows.Shape[0])
	}
	r := rowOf(s.rows, s.k)
	s.k++
	if !tensor.SameShape(r, tensor.New(shape...)) {
		s.t.Fatalf("noise draw shape %v, stored %v", shape, r.Shape)
	}
	return r
}

func TestStepSequenceRefs(t *testing.T) {
	var errs maxErrs
	for _, pipeline := range refPipelines {
		t.Run(pipeline, func(t *testing.T) {
			set := refcases.Open(t, pipeline)
			disk := diskConfig(t, pipeline)
			cases := set.ByKind("scheduler_step_sequence")
			if len(cases) == 0 {
				t.Fatal("no scheduler_step_sequence cases")
			}
			for _, c := range cases {
				t.Run(c.ID, func(t *testing.T) {
					k := caseKind(t, c.ID)
					group := pipeline + " " + strings.Split(c.ID, "/")[1]
					var n int
					if _, err := fmt.Sscanf(c.ID[strings.LastIndex(c.ID, "/")+1:], "N%d", &n); err != nil {
						t.Fatal(err)
					}
					s, err := New(k, disk)
					if err != nil {
						t.Fatal(err)
					}
					p, err := s.Plan(n)
					if err != nil {
						t.Fatal(err)
					}
					wantTs := c.Value(t, "inputs", "timesteps").([]any)
					if len(wantTs) != len(p.Timesteps) {
						t.Fatalf("%d timesteps, want %d", len(p.Timesteps), len(wantTs))
					}
					if d := math.Abs(p.InitNoiseSigma - c.Float(t, "inputs", "init_noise_sigma")); d != 0 {
						t.Errorf("init_noise_sigma %v, want %v", p.InitNoiseSigma, c.Float(t, "inputs", "init_noise_sigma"))
					}
					noise0 := set.CaseTensor(t, c, "inputs", "initial_noise")
					outs := set.CaseTensor(t, c, "inputs", "model_outputs")
					x := tensor.New(noise0.Shape...)
					for i, v := range noise0.Data {
						x.Data[i] = v * float32(p.InitNoiseSigma)
					}
					var scaled []*tensor.Tensor
					model := func(ctx context.Context, in *tensor.Tensor, ts float64) (*tensor.Tensor, error) {
						i := len(scaled)
						if w := wantTs[i].(float64); ts != w {
							t.Errorf("call %d: t = %v, want %v", i, ts, w)
						}
						scaled = append(scaled, in.Clone())
						return rowOf(outs, i), nil
					}
					var steps []Step
					opts := Options{Eta: c.Float(t, "params", "eta"), Callback: func(st Step) error {
						if st.I != len(steps) || st.T != p.Timesteps[st.I] {
							t.Errorf("callback step %d (t=%v) after %d steps", st.I, st.T, len(steps))
						}
						steps = append(steps, st)
						return nil
					}}
					if c.Has("outputs", "noise") {
						opts.Noise = &seqNoise{t: t, rows: set.CaseTensor(t, c, "outputs", "noise")}
					}
					final, err := s.Sample(context.Background(), model, x, p, opts)
					if err != nil {
						t.Fatal(err)
					}
					if len(steps) != len(p.Timesteps) {
						t.Fatalf("%d callbacks, want %d", len(steps), len(p.Timesteps))
					}
					wantScaled := set.CaseTensor(t, c, "outputs", "scaled_model_inputs")
					wantPrev := set.CaseTensor(t, c, "outputs", "prev_samples")
					for i := range steps {
						name := fmt.Sprintf("step %d (t=%v)", i, p.Timesteps[i])
						errs.add(group+" scaled_model_inputs", refcases.Close(t, name+" scaled_model_input", scaled[i], rowOf(wantScaled, i), stepTol))
						errs.add(group+" prev_samples", refcases.Close(t, name+" prev_sample", steps[i].X, rowOf(wantPrev, i), stepTol))
						if c.Has("outputs", "pred_original_samples") {
							if steps[i].Denoised == nil {
								t.Fatalf("%s: no Denoised", name)
							}
							errs.add(group+" pred_original_samples", refcases.Close(t, name+" pred_original_sample", steps[i].Denoised, rowOf(set.CaseTensor(t, c, "outputs", "pred_original_samples"), i), stepTol))
						}
					}
					errs.add(group+" final_sample", refcases.Close(t, "final_sample", final, set.CaseTensor(t, c, "outputs", "final_sample"), stepTol))
					if ns, ok := opts.Noise.(*seqNoise); ok && ns.k != ns.rows.Shape[0] {
						t.Errorf("%d noise draws, want %d", ns.k, ns.rows.Shape[0])
					}
				})
			}
		})
	}
	errs.log(t)
}

// TestImg2ImgRefs checks Img2ImgStart against the img2img pipeline cases'
// step_timesteps, and AddNoise against their initial_latents:
// add_noise(vae latent_dist.sample * 0.18215, noise, timesteps[t_start]),
// the latent sample rebuilt from vae/encode0's mean and std (same image)
// and the case's first draw.
func TestImg2ImgRefs(t *testing.T) {
	var errs maxErrs
	for _, pipeline := range refPipelines {
		t.Run(pipeline, func(t *testing.T) {
			set := refcases.Open(t, pipeline)
			disk := diskConfig(t, pipeline)
			cases := set.ByKind("img2img")
			if len(cases) == 0 {
				t.Fatal("no img2img cases")
			}
			enc := set.Case(t, "vae/encode0")
			mean := set.CaseTensor(t, enc, "outputs", "mean")
			std := set.CaseTensor(t, enc, "outputs", "std")
			for _, c := range cases {
				t.Run(c.ID, func(t *testing.T) {
					cfg := configFromMap(t, c.Value(t, "params", "effective_scheduler_config").(map[string]any))
					name := c.String(t, "params", "scheduler")
					var k Kind
					var err error
					if name == "default" {
						k, err = DefaultKind(disk)
					} else {
						k, err = ParseKind(name)
					}
					if err != nil {
						t.Fatal(err)
					}
					if k.ClassName() != c.String(t, "params", "scheduler_class") {
						t.Fatalf("kind %s is %s, case used %s", k, k.ClassName(), c.String(t, "params", "scheduler_class"))
					}
					s, err := New(k, cfg)
					if err != nil {
						t.Fatal(err)
					}
					n := c.Int(t, "inputs", "num_inference_steps")
					p, err := s.Plan(n)
					if err != nil {
						t.Fatal(err)
					}
					start, err := s.Img2ImgStart(p, n, c.Float(t, "inputs", "strength"))
					if err != nil {
						t.Fatal(err)
					}
					want := c.Value(t, "outputs", "step_timesteps").([]any)
					got := p.Timesteps[start:]
					if len(got) != len(want) {
						t.Fatalf("timesteps from %d: %v, want %v", start, got, want)
					}
					for i, w := range want {
						if got[i] != w.(float64) {
							t.Fatalf("timesteps from %d: %v, want %v", start, got, want)
						}
					}

					draws := c.Value(t, "outputs", "random_draws").([]any)
					sampleNoise := set.Tensor(t, draws[0].(map[string]any)["tensor"].(string))
					addNoise := set.Tensor(t, draws[1].(map[string]any)["tensor"].(string))
					latents := tensor.New(mean.Shape...)
					for i := range latents.Data {
						latents.Data[i] = float32(0.18215) * (mean.Data[i] + float32(std.Data[i]*sampleNoise.Data[i]))
					}
					noisy := s.AddNoise(latents, addNoise, p, start)
					errs.add(string(k)+" add_noise", refcases.Close(t, "initial_latents", noisy, set.CaseTensor(t, c, "outputs", "initial_latents"), stepTol))
				})
			}
		})
	}
	errs.log(t)
}
