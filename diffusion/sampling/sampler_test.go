package sampling

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment/diffusion/tensor"
)

// Scheduler configs of the Stable Diffusion families (scheduler/
// scheduler_config.json of runwayml/stable-diffusion-v1-5 and
// stabilityai/stable-diffusion-2-1), used where no reference data is needed.
const (
	configSD15 = `{"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
		"beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
		"set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}`
	configSD2V = `{"_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
		"beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
		"prediction_type": "v_prediction", "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
		"timestep_spacing": "trailing", "trained_betas": null}`
)

func mustConfig(t testing.TB, js string) Config {
	t.Helper()
	c, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseKind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Kind
	}{
		{"ddim", DDIM}, {"DDIM", DDIM}, {"DDIMScheduler", DDIM},
		{"euler", Euler}, {"Euler", Euler}, {"EulerDiscreteScheduler", Euler},
		{"euler_a", EulerA}, {"Euler a", EulerA}, {"EULER A", EulerA}, {"euler-a", EulerA}, {"  Euler   a ", EulerA},
		{"EulerAncestralDiscreteScheduler", EulerA},
		{"dpmpp_2m", DPMPP2M}, {"DPM++ 2M", DPMPP2M}, {"DPMSolverMultistepScheduler", DPMPP2M},
		{"dpmpp_2m_karras", DPMPP2MKarras}, {"DPM++ 2M Karras", DPMPP2MKarras}, {"dpm++ 2m karras", DPMPP2MKarras},
		{"lms", LMS}, {"LMS", LMS}, {"LMSDiscreteScheduler", LMS},
		{"pndm", PNDM}, {"PLMS", PNDM}, {"PNDMScheduler", PNDM},
	} {
		got, err := ParseKind(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "heun", "euler_b", "DPM++ 2S a", "UniPCMultistepScheduler"} {
		_, err := ParseKind(bad)
		if err == nil {
			t.Errorf("ParseKind(%q): no error", bad)
			continue
		}
		for _, k := range Kinds() {
			if !strings.Contains(err.Error(), string(k)) || !strings.Contains(err.Error(), k.DisplayName()) {
				t.Errorf("ParseKind(%q) error %q does not list %s / %q", bad, err, k, k.DisplayName())
			}
		}
	}
}

func TestKinds(t *testing.T) {
	want := map[Kind]string{DDIM: "DDIM", Euler: "Euler", EulerA: "Euler a", DPMPP2M: "DPM++ 2M",
		DPMPP2MKarras: "DPM++ 2M Karras", LMS: "LMS", PNDM: "PLMS"}
	if len(Kinds()) != len(want) {
		t.Fatalf("Kinds() = %v", Kinds())
	}
	for _, k := range Kinds() {
		if k.DisplayName() != want[k] {
			t.Errorf("%s.DisplayName() = %q, want %q", k, k.DisplayName(), want[k])
		}
		if got, err := ParseKind(k.DisplayName()); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k.DisplayName(), got, err)
		}
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
}

func TestDefaultKind(t *testing.T) {
	for _, tc := range []struct {
		json string
		want Kind
	}{
		{configSD15, PNDM},
		{configSD2V, DDIM},
		{`{"_class_name": "EulerDiscreteScheduler"}`, Euler},
		{`{"_class_name": "EulerAncestralDiscreteScheduler"}`, EulerA},
		{`{"_class_name": "LMSDiscreteScheduler"}`, LMS},
		{`{"_class_name": "DPMSolverMultistepScheduler"}`, DPMPP2M},
		{`{"_class_name": "DPMSolverMultistepScheduler", "use_karras_sigmas": false}`, DPMPP2M},
		{`{"_class_name": "DPMSolverMultistepScheduler", "use_karras_sigmas": true}`, DPMPP2MKarras},
	} {
		got, err := DefaultKind(mustConfig(t, tc.json))
		if err != nil || got != tc.want {
			t.Errorf("DefaultKind(%s) = %q, %v; want %q", tc.json, got, err, tc.want)
		}
	}
	for _, bad := range []string{`{}`, `{"_class_name": "UniPCMultistepScheduler"}`} {
		if k, err := DefaultKind(mustConfig(t, bad)); err == nil {
			t.Errorf("DefaultKind(%s) = %q, want an error", bad, k)
		}
	}
}

func TestDefaultKindRefs(t *testing.T) {
	for pipeline, want := range map[string]Kind{"tiny-sd15": PNDM, "tiny-sd2v": DDIM} {
		if got, err := DefaultKind(diskConfig(t, pipeline)); err != nil || got != want {
			t.Errorf("%s: DefaultKind = %q, %v; want %q", pipeline, got, err, want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c := mustConfig(t, `{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity,
		"trained_betas": null, "sigma_min": null, "num_train_timesteps": 1000.0, "note": "NaN Infinity",
		"prediction_type": null, "beta_start": 0.001}`)
	if !c.Has("lambda_min_clipped") || !math.IsInf(c.LambdaMinClipped, -1) {
		t.Errorf("lambda_min_clipped = %v (present %v)", c.LambdaMinClipped, c.Has("lambda_min_clipped"))
	}
	if !c.Has("trained_betas") || c.TrainedBetas != nil || !c.Has("sigma_min") || c.SigmaMin != nil {
		t.Errorf("nullable keys: %v %v", c.TrainedBetas, c.SigmaMin)
	}
	if c.Has("prediction_type") {
		t.Error("null prediction_type should count as absent")
	}
	if c.NumTrainTimesteps != 1000 || c.BetaStart != 0.001 || c.Has("beta_end") {
		t.Errorf("parsed %+v", c)
	}
	if v, ok := c.Value("sigma_min"); !ok || v != nil {
		t.Errorf("Value(sigma_min) = %v, %v", v, ok)
	}
	for _, bad := range []string{`[]`, `{"num_train_timesteps": "1000"}`, `{"num_train_timesteps": 10.5}`,
		`{"clip_sample": 1}`, `{"trained_betas": [0.1, "x"]}`, `{"beta_start": Infinit}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%s): no error", bad)
		}
	}
	var s Config
	if err := s.Set("timestep_spacing", "trailing"); err != nil || !s.Has("timestep_spacing") || s.TimestepSpacing != "trailing" {
		t.Errorf("Set: %v %+v", err, s)
	}
	if err := s.Set("no_such_key", 1); err == nil {
		t.Error("Set(no_such_key): no error")
	}
}

// TestFromConfigDefaults checks the from_config rule: keys absent from the
// file take each class's own default.
func TestFromConfigDefaults(t *testing.T) {
	sd15 := mustConfig(t, configSD15)
	for _, tc := range []struct {
		k              Kind
		spacing        string
		clip, alphaOne bool
	}{
		{DDIM, "leading", false, false}, // clip_sample/set_alpha_to_one are in the file
		{PNDM, "leading", false, false},
		{Euler, "linspace", false, false},
		{EulerA, "linspace", false, false},
		{LMS, "linspace", false, false},
		{DPMPP2M, "linspace", false, false},
	} {
		s, err := New(tc.k, sd15)
		if err != nil {
			t.Fatal(err)
		}
		e := s.Effective
		if e.TimestepSpacing != tc.spacing || e.ClipSample != tc.clip || e.SetAlphaToOne != tc.alphaOne || e.StepsOffset != 1 || e.BetaSchedule != "scaled_linear" {
			t.Errorf("%s: effective %+v", tc.k, e)
		}
		if e.ClassName != tc.k.ClassName() {
			t.Errorf("%s: _class_name %q", tc.k, e.ClassName)
		}
	}
	// An empty config: DDIM's own defaults clip_sample and set_alpha_to_one are true.
	s, err := New(DDIM, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Effective.ClipSample || !s.Effective.SetAlphaToOne || s.Effective.BetaSchedule != "linear" || s.Effective.StepsOffset != 0 {
		t.Errorf("DDIM defaults: %+v", s.Effective)
	}
	// Kind overrides: DPM++ 2M Karras regardless of the file.
	s, err = New(DPMPP2MKarras, sd15)
	if err != nil || !s.Effective.UseKarrasSigmas || s.Effective.SolverOrder != 2 || s.Effective.AlgorithmType != "dpmsolver++" {
		t.Errorf("karras: %v %+v", err, s.Effective)
	}
	// Keys a class does not have are not part of its effective config.
	s, _ = New(EulerA, sd15)
	if s.Effective.Has("clip_sample") || s.Effective.Has("use_karras_sigmas") {
		t.Errorf("euler_a effective keys %v", s.Effective.Keys())
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		k    Kind
		json string
	}{
		{"heun", `{}`},
		{DDIM, `{"beta_schedule": "sigmoid"}`},
		{DDIM, `{"timestep_spacing": "uniform"}`},
		{DDIM, `{"prediction_type": "x0"}`},
		{DDIM, `{"thresholding": true}`},
		{EulerA, `{"prediction_type": "sample"}`},
		{PNDM, `{"prediction_type": "sample"}`},
		{Euler, `{"interpolation_type": "log_linear"}`},
		{DPMPP2M, `{"solver_type": "bh2"}`},
		{DPMPP2M, `{"variance_type": "learned_range"}`},
		{DDIM, `{"trained_betas": [0.1, 0.2]}`},
		{DDIM, `{"num_train_timesteps": 1}`},
	} {
		if _, err := New(tc.k, mustConfig(t, tc.json)); err == nil {
			t.Errorf("New(%s, %s): no error", tc.k, tc.json)
		}
	}
}

func TestPlanSteps(t *testing.T) {
	cfg := mustConfig(t, configSD15)
	for _, k := range Kinds() {
		s, err := New(k, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, -1, 1001} {
			if _, err := s.Plan(n); err == nil {
				t.Errorf("%s: Plan(%d): no error", k, n)
			}
		}
		for _, n := range []int{1, 4, 1000} {
			p, err := s.Plan(n)
			if err != nil {
				if k == DDIM || k == PNDM {
					// leading spacing with steps_offset 1 reaches t = 1000 at 1000 steps:
					// diffusers fails indexing alphas_cumprod there, and so do we.
					if n == 1000 {
						continue
					}
				}
				t.Errorf("%s: Plan(%d): %v", k, n, err)
				continue
			}
			want := n
			if k == PNDM && n > 1 {
				want = n + 1
			}
			if len(p.Timesteps) != want || p.Steps != n || p.Order != 1 {
				t.Errorf("%s: Plan(%d): %d timesteps, Steps %d, Order %d", k, n, len(p.Timesteps), p.Steps, p.Order)
			}
		}
	}
}

// Known diffusers schedules (tests/schedulers/test_scheduler_*.py,
// test_steps_offset) and numpy's arange quirk under "trailing".
func TestPlanTimesteps(t *testing.T) {
	linear := `{"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "steps_offset": 1}`
	for _, tc := range []struct {
		k     Kind
		json  string
		steps int
		want  []float64
	}{
		{PNDM, linear, 10, []float64{901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1}},
		{DDIM, linear, 5, []float64{801, 601, 401, 201, 1}},
		{DDIM, `{"timestep_spacing": "linspace"}`, 4, []float64{999, 666, 333, 0}},
		{DPMPP2M, `{"timestep_spacing": "leading", "steps_offset": 1}`, 4, []float64{801, 601, 401, 201}},
		{Euler, `{"timestep_spacing": "leading", "steps_offset": 1}`, 4, []float64{751, 501, 251, 1}},
		// np.arange(1000, 0, -1000/61) has 62 values; diffusers keeps the extra -1.
		{DDIM, `{"timestep_spacing": "trailing"}`, 61, nil},
	} {
		s, err := New(tc.k, mustConfig(t, tc.json))
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Plan(tc.steps)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == nil {
			if len(p.Timesteps) != 62 || p.Timesteps[0] != 999 || p.Timesteps[61] != -1 {
				t.Errorf("%s %s N=%d: %v", tc.k, tc.json, tc.steps, p.Timesteps)
			}
			continue
		}
		if fmt.Sprint(p.Timesteps) != fmt.Sprint(tc.want) {
			t.Errorf("%s %s N=%d: timesteps %v, want %v", tc.k, tc.json, tc.steps, p.Timesteps, tc.want)
		}
	}
}

// testModel is a deterministic stand-in for a UNet: a bounded mix of its
// input and a fixed pattern.
func testModel(calls *int) Model {
	return func(ctx context.Context, x *tensor.Tensor, ts float64) (*tensor.Tensor, error) {
		*calls++
		out := tensor.New(x.Shape...)
		for i, v := range x.Data {
			out.Data[i] = 0.5*v + float32(math.Sin(float64(i)*0.7+ts*0.01))
		}
		return out, nil
	}
}

// testNoise draws a deterministic pseudo-normal pattern.
type testNoise struct{ n int }

func (s *testNoise) Randn(shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	for i := range x.Data {
		s.n++
		x.Data[i] = float32(math.Sin(float64(s.n)*12.9898) * 1.7)
	}
	return x
}

func initialLatents(p Plan, shape ...int) *tensor.Tensor {
	x := (&testNoise{}).Randn(shape...)
	for i := range x.Data {
		x.Data[i] *= float32(p.InitNoiseSigma)
	}
	return x
}

func finite(x *tensor.Tensor) bool {
	for _, v := range x.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// TestStepsFinite runs every sampler at 1 and 150 steps (and variants:
// DDIM eta 1 with clipping, PNDM with PRK steps, zero-terminal-SNR betas,
// v-prediction, Karras/Lu schedules, the cosine schedule).
func TestStepsFinite(t *testing.T) {
	type variant struct {
		name string
		k    Kind
		json string
		eta  float64
	}
	var vs []variant
	for _, k := range Kinds() {
		vs = append(vs, variant{"sd15", k, configSD15, 0}, variant{"sd2v", k, configSD2V, 0})
	}
	vs = append(vs,
		variant{"eta1-clip", DDIM, `{"clip_sample": true}`, 1},
		variant{"prk", PNDM, `{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}`, 0},
		variant{"zsnr", DDIM, `{"rescale_betas_zero_snr": true, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}`, 0},
		variant{"zsnr", Euler, `{"rescale_betas_zero_snr": true, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}`, 0},
		variant{"zsnr", EulerA, `{"rescale_betas_zero_snr": true, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}`, 0},
		variant{"zsnr", DPMPP2M, `{"rescale_betas_zero_snr": true, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}`, 0},
		variant{"karras", Euler, `{"use_karras_sigmas": true}`, 0},
		variant{"karras", LMS, `{"use_karras_sigmas": true}`, 0},
		variant{"lu", DPMPP2M, `{"use_lu_lambdas": true}`, 0},
		variant{"sigma_min-heun", DPMPP2M, `{"final_sigmas_type": "sigma_min", "solver_type": "heun"}`, 0},
		variant{"cosine-clipped", DPMPP2M, `{"beta_schedule": "squaredcos_cap_v2", "lambda_min_clipped": -5.1}`, 0},
		variant{"sample", DDIM, `{"prediction_type": "sample"}`, 0},
		variant{"sample", Euler, `{"prediction_type": "sample"}`, 0},
		variant{"sample", LMS, `{"prediction_type": "sample"}`, 0},
		variant{"sample", DPMPP2M, `{"prediction_type": "sample"}`, 0},
		variant{"continuous", Euler, `{"timestep_type": "continuous", "prediction_type": "v_prediction"}`, 0},
	)
	for _, v := range vs {
		for _, n := range []int{1, 150} {
			if v.name == "prk" && n == 1 {
				n = 4 // PRK needs at least 4 steps
			}
			t.Run(fmt.Sprintf("%s/%s/N%d", v.k, v.name, n), func(t *testing.T) {
				s, err := New(v.k, mustConfig(t, v.json))
				if err != nil {
					t.Fatal(err)
				}
				p, err := s.Plan(n)
				if err != nil {
					t.Fatal(err)
				}
				calls, steps := 0, 0
				x := initialLatents(p, 1, 4, 8, 8)
				out, err := s.Sample(context.Background(), testModel(&calls), x, p, Options{
					Eta: v.eta, Noise: &testNoise{n: 1000},
					Callback: func(st Step) error {
						steps++
						if !finite(st.X) || (st.Denoised != nil && !finite(st.Denoised)) {
							return fmt.Errorf("step %d (t=%v): non-finite values", st.I, st.T)
						}
						return nil
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				if !finite(out) || !tensor.SameShape(out, x) {
					t.Fatalf("final sample shape %v, finite %v", out.Shape, finite(out))
				}
				if calls != len(p.Timesteps) || steps != len(p.Timesteps) {
					t.Errorf("%d model calls, %d callbacks for %d timesteps", calls, steps, len(p.Timesteps))
				}
			})
		}
	}
}

// TestDiffusersFullLoopSums repeats the full-loop checks of diffusers'
// scheduler unit tests (tests/schedulers/test_scheduler_ddim.py and
// test_scheduler_pndm.py, test_full_loop_*): 10 steps of the dummy model
// sample*t/(t+1) from dummy_sample_deter, with their tolerances on
// sum(|x|) and mean(|x|). The PNDM loop runs the PRK steps.
func TestDiffusersFullLoopSums(t *testing.T) {
	const base = `"num_train_timesteps": 1000, "beta_end": 0.02, "beta_schedule": "linear"`
	for _, tc := range []struct {
		name      string
		k         Kind
		json      string
		sum, mean float64
	}{
		{"ddim", DDIM, `{` + base + `, "beta_start": 0.0001, "clip_sample": true}`, 172.0067, 0.223967},
		{"ddim v", DDIM, `{` + base + `, "beta_start": 0.0001, "clip_sample": true, "prediction_type": "v_prediction"}`, 52.5302, 0.0684},
		{"ddim alpha1", DDIM, `{` + base + `, "beta_start": 0.01, "clip_sample": true, "set_alpha_to_one": true}`, 149.8295, 0.1951},
		{"ddim no alpha1", DDIM, `{` + base + `, "beta_start": 0.01, "clip_sample": true, "set_alpha_to_one": false}`, 149.0784, 0.1941},
		{"pndm", PNDM, `{` + base + `, "beta_start": 0.0001}`, 198.1318, 0.2580},
		{"pndm v", PNDM, `{` + base + `, "beta_start": 0.0001, "prediction_type": "v_prediction"}`, 67.3986, 0.0878},
		{"pndm alpha1", PNDM, `{` + base + `, "beta_start": 0.01, "set_alpha_to_one": true}`, 230.0399, 0.2995},
		{"pndm no alpha1", PNDM, `{` + base + `, "beta_start": 0.01, "set_alpha_to_one": false}`, 186.9482, 0.2434},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.k, mustConfig(t, tc.json))
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Plan(10)
			if err != nil {
				t.Fatal(err)
			}
			model := func(ctx context.Context, x *tensor.Tensor, ts float64) (*tensor.Tensor, error) {
				out := tensor.New(x.Shape...)
				for i, v := range x.Data {
					out.Data[i] = float32(v*float32(ts)) / float32(ts+1)
				}
				return out, nil
			}
			out, err := s.Sample(context.Background(), model, dummySampleDeter(), p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			sum := 0.0
			for _, v := range out.Data {
				sum += math.Abs(float64(v))
			}
			mean := sum / float64(out.Len())
			if math.Abs(sum-tc.sum) > 1e-2 || math.Abs(mean-tc.mean) > 1e-3 {
				t.Errorf("sum %.4f mean %.6f, want %.4f %.4f", sum, mean, tc.sum, tc.mean)
			}
		})
	}
}

// dummySampleDeter is diffusers' SchedulerCommonTest.dummy_sample_deter:
// arange(4*3*8*8)/n laid out as (C, H, W, B), permuted to (B, C, H, W).
func dummySampleDeter() *tensor.Tensor {
	b, c, h, w := 4, 3, 8, 8
	n := b * c * h * w
	x := tensor.New(b, c, h, w)
	for ci := 0; ci < c; ci++ {
		for hi := 0; hi < h; hi++ {
			for wi := 0; wi < w; wi++ {
				for bi := 0; bi < b; bi++ {
					idx := ((ci*h+hi)*w+wi)*b + bi
					x.Data[((bi*c+ci)*h+hi)*w+wi] = float32(idx) / float32(n)
				}
			}
		}
	}
	return x
}

// TestCancel cancels the context during the second model call: the step
// completes (its callback runs) and Sample returns context.Canceled before
// the third call.
func TestCancel(t *testing.T) {
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) {
			s, err := New(k, mustConfig(t, configSD15))
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Plan(10)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls, steps := 0, 0
			inner := testModel(&calls)
			model := func(ctx context.Context, x *tensor.Tensor, ts float64) (*tensor.Tensor, error) {
				if calls == 1 {
					cancel()
				}
				return inner(ctx, x, ts)
			}
			out, err := s.Sample(ctx, model, initialLatents(p, 1, 4, 4, 4), p, Options{
				Noise: &testNoise{}, Callback: func(Step) error { steps++; return nil },
			})
			if !errors.Is(err, context.Canceled) || out != nil {
				t.Fatalf("Sample = %v, %v; want context.Canceled", out, err)
			}
			if calls != 2 || steps != 2 {
				t.Errorf("%d model calls, %d steps; want 2 and 2", calls, steps)
			}
		})
	}
}

func TestSampleErrors(t *testing.T) {
	s, _ := New(EulerA, mustConfig(t, configSD15))
	p, _ := s.Plan(4)
	x := initialLatents(p, 1, 4, 4, 4)
	calls := 0
	model := testModel(&calls)
	ctx := context.Background()
	stop := errors.New("stop")
	for name, run := range map[string]func() error{
		"no noise":     func() error { _, err := s.Sample(ctx, model, x, p, Options{}); return err },
		"bad start":    func() error { _, err := s.Sample(ctx, model, x, p, Options{Noise: &testNoise{}, Start: 4}); return err },
		"negative eta": func() error { _, err := s.Sample(ctx, model, x, p, Options{Noise: &testNoise{}, Eta: -1}); return err },
		"empty latents": func() error {
			_, err := s.Sample(ctx, model, tensor.New(0), p, Options{Noise: &testNoise{}})
			return err
		},
		"short plan": func() error {
			q := p
			q.Sigmas = q.Sigmas[:2]
			_, err := s.Sample(ctx, model, x, q, Options{Noise: &testNoise{}})
			return err
		},
		"model error": func() error {
			_, err := s.Sample(ctx, func(context.Context, *tensor.Tensor, float64) (*tensor.Tensor, error) { return nil, stop }, x, p, Options{Noise: &testNoise{}})
			if !errors.Is(err, stop) {
				return nil
			}
			return err
		},
		"model shape": func() error {
			_, err := s.Sample(ctx, func(context.Context, *tensor.Tensor, float64) (*tensor.Tensor, error) {
				return tensor.New(1, 4, 2, 2), nil
			}, x, p, Options{Noise: &testNoise{}})
			return err
		},
		"callback error": func() error {
			_, err := s.Sample(ctx, model, x, p, Options{Noise: &testNoise{}, Callback: func(Step) error { return stop }})
			if !errors.Is(err, stop) {
				return nil
			}
			return err
		},
	} {
		if err := run(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(DDIM, Config{}); err != nil {
		t.Fatal(err)
	}
	d, _ := New(DDIM, Config{})
	dp, _ := d.Plan(4)
	if _, err := d.Sample(ctx, model, x, dp, Options{Eta: 1}); err == nil {
		t.Error("DDIM eta 1 without noise: no error")
	}
}

func TestImg2ImgStart(t *testing.T) {
	cfg := mustConfig(t, configSD15)
	for _, tc := range []struct {
		k        Kind
		steps    int
		strength float64
		want     int
	}{
		{DDIM, 20, 0.6, 8}, {PNDM, 20, 0.6, 8}, {EulerA, 4, 1.0, 0}, {DPMPP2MKarras, 10, 0.6, 4},
		{Euler, 50, 0.75, 13}, {LMS, 10, 0.1, 9}, {PNDM, 4, 0.25, 3},
	} {
		s, _ := New(tc.k, cfg)
		p, _ := s.Plan(tc.steps)
		got, err := s.Img2ImgStart(p, tc.steps, tc.strength)
		if err != nil || got != tc.want {
			t.Errorf("%s N=%d strength %v: %d, %v; want %d", tc.k, tc.steps, tc.strength, got, err, tc.want)
		}
	}
	s, _ := New(Euler, cfg)
	p, _ := s.Plan(10)
	for _, strength := range []float64{0, -0.5, 1.01, math.NaN(), 0.05} {
		if got, err := s.Img2ImgStart(p, 10, strength); err == nil {
			t.Errorf("strength %v: %d, no error", strength, got)
		}
	}
}

func TestAddNoise(t *testing.T) {
	orig := tensor.FromData([]float32{1, -2, 0.5, 0}, 1, 1, 2, 2)
	noise := tensor.FromData([]float32{0.5, 1, -1, 2}, 1, 1, 2, 2)
	for _, k := range Kinds() {
		s, _ := New(k, mustConfig(t, configSD15))
		p, _ := s.Plan(10)
		got := s.AddNoise(orig, noise, p, 3)
		for i := range got.Data {
			var want float64
			switch k {
			case DDIM, PNDM:
				a := float64(s.alphasCumprod[int(p.Timesteps[3])])
				want = math.Sqrt(a)*float64(orig.Data[i]) + math.Sqrt(1-a)*float64(noise.Data[i])
			case DPMPP2M, DPMPP2MKarras:
				sg := p.Sigmas[3]
				a := 1 / math.Sqrt(sg*sg+1)
				want = a*float64(orig.Data[i]) + sg*a*float64(noise.Data[i])
			default:
				want = float64(orig.Data[i]) + p.Sigmas[3]*float64(noise.Data[i])
			}
			if math.Abs(float64(got.Data[i])-want) > 1e-5 {
				t.Errorf("%s: AddNoise[%d] = %v, want %v", k, i, got.Data[i], want)
			}
		}
	}
}

// The float32 log/exp mirror SLEEF's u10 routines: within 1 ulp of the
// correctly rounded value everywhere.
func TestLogExp32(t *testing.T) {
	ulps := func(got, want float32) float64 {
		return math.Abs(float64(got)-float64(want)) / float64(math.Nextafter32(want, float32(math.Inf(1)))-want)
	}
	worstLog, worstExp := 0.0, 0.0
	for i := 0; i < 200000; i++ {
		x := float32(math.Exp(float64(i)/200000*160 - 80)) // 1.8e-35 .. 5.5e34
		worstLog = math.Max(worstLog, ulps(log32(x), float32(math.Log(float64(x)))))
		y := float32(float64(i)/200000*200 - 100)
		worstExp = math.Max(worstExp, ulps(exp32(y), float32(math.Exp(float64(y)))))
	}
	if worstLog > 1 || worstExp > 1 {
		t.Errorf("worst error: log %.2f ulp, exp %.2f ulp", worstLog, worstExp)
	}
	if !math.IsInf(float64(log32(0)), -1) || !math.IsNaN(float64(log32(-1))) || exp32(-200) != 0 || !math.IsInf(float64(exp32(200)), 1) {
		t.Error("special values")
	}
	if log32(1) != 0 || exp32(0) != 1 {
		t.Errorf("log32(1) = %v, exp32(0) = %v", log32(1), exp32(0))
	}
}

// fmaf rounds a*b + c once, like C's fmaf, including where the float64
// sum lands on a float32 tie.
func TestFMAF(t *testing.T) {
	ref := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(300).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	a := float32(1 + 0x1p-12) // a*a = 1 + 2^-11 + 2^-24, a float32 tie
	cases := [][3]float32{{a, a, 0x1p-80}, {a, a, -0x1p-80}, {a, a, 0}, {-a, a, 0x1p-80}, {3, 1.0 / 3, -1}}
	src := &testNoise{}
	for i := 0; i < 10000; i++ {
		r := src.Randn(3).Data
		cases = append(cases, [3]float32{r[0], r[1] * 1e3, r[2] * 1e-3})
	}
	for _, c := range cases {
		if got, want := fmaf(c[0], c[1], c[2]), ref(c[0], c[1], c[2]); got != want {
			t.Errorf("fmaf(%g, %g, %g) = %.9g, want %.9g", c[0], c[1], c[2], got, want)
		}
	}
}

// The LMS coefficients integrate a degree ≤ 3 polynomial; the 21-point
// Kronrod rule is exact for such integrands (and up to degree 31).
func TestGaussKronrod21(t *testing.T) {
	for deg := 0; deg <= 31; deg++ {
		f := func(x float64) float64 { return math.Pow(x, float64(deg)) }
		for _, ab := range [][2]float64{{0, 1}, {14.6, 9.7}, {-1, 2}, {0.03, 0}} {
			a, b := ab[0], ab[1]
			want := (math.Pow(b, float64(deg+1)) - math.Pow(a, float64(deg+1))) / float64(deg+1)
			got := gaussKronrod21(f, a, b)
			if math.Abs(got-want) > 1e-10*math.Max(1, math.Abs(want)) {
				t.Errorf("∫x^%d over [%v, %v] = %v, want %v", deg, a, b, got, want)
			}
		}
	}
}
