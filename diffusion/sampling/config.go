package sampling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
)

// Config is a diffusers scheduler_config.json (scheduler/ folder of a
// model), remembering which keys the file had.
//
// Presence matters: diffusers' Class.from_config(cfg) passes on only the
// keys present in the file, so every key the file lacks takes the default
// of the class being built (from the SD1.5 PNDM config, DDIM gets
// timestep_spacing "leading" while Euler gets "linspace"). New resolves a
// Config that way into Scheduler.Effective.
//
// A field's value is used only if its key is present: build a Config with
// ParseConfig or Set, not as a struct literal. Each field's tag is its
// JSON key; nullable keys (trained_betas, sigma_min, sigma_max,
// variance_type) use nil or "" for JSON null.
type Config struct {
	ClassName string `json:"_class_name"`

	NumTrainTimesteps   int       `json:"num_train_timesteps"`
	BetaStart           float64   `json:"beta_start"`
	BetaEnd             float64   `json:"beta_end"`
	BetaSchedule        string    `json:"beta_schedule"` // linear, scaled_linear, squaredcos_cap_v2
	TrainedBetas        []float64 `json:"trained_betas"`
	PredictionType      string    `json:"prediction_type"`  // epsilon, v_prediction, sample
	TimestepSpacing     string    `json:"timestep_spacing"` // leading, trailing, linspace
	StepsOffset         int       `json:"steps_offset"`
	RescaleBetasZeroSNR bool      `json:"rescale_betas_zero_snr"`

	// DDIM and PNDM.
	SetAlphaToOne            bool    `json:"set_alpha_to_one"`
	ClipSample               bool    `json:"clip_sample"`
	ClipSampleRange          float64 `json:"clip_sample_range"`
	SkipPrkSteps             bool    `json:"skip_prk_steps"`
	Thresholding             bool    `json:"thresholding"`
	DynamicThresholdingRatio float64 `json:"dynamic_thresholding_ratio"`
	SampleMaxValue           float64 `json:"sample_max_value"`

	// Euler and LMS.
	InterpolationType string   `json:"interpolation_type"` // linear
	UseKarrasSigmas   bool     `json:"use_karras_sigmas"`
	SigmaMin          *float64 `json:"sigma_min"`
	SigmaMax          *float64 `json:"sigma_max"`
	TimestepType      string   `json:"timestep_type"` // discrete, continuous

	// DPM-Solver.
	SolverOrder      int     `json:"solver_order"`
	AlgorithmType    string  `json:"algorithm_type"`
	SolverType       string  `json:"solver_type"` // midpoint, heun
	LowerOrderFinal  bool    `json:"lower_order_final"`
	EulerAtFinal     bool    `json:"euler_at_final"`
	UseLuLambdas     bool    `json:"use_lu_lambdas"`
	FinalSigmasType  string  `json:"final_sigmas_type"` // zero, sigma_min
	LambdaMinClipped float64 `json:"lambda_min_clipped"`
	VarianceType     string  `json:"variance_type"`

	present map[string]bool
}

// nullable are the keys whose JSON null is a value (Python None), not an
// absent key.
var nullable = map[string]bool{"trained_betas": true, "sigma_min": true, "sigma_max": true, "variance_type": true}

// configFields maps each JSON key to its field index in Config.
var configFields = func() map[string]int {
	m := make(map[string]int)
	t := reflect.TypeFor[Config]()
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("json"); tag != "" {
			m[tag] = i
		}
	}
	return m
}()

// ParseConfig parses a scheduler_config.json. Keys it does not model (such
// as _diffusers_version) are ignored; a known key with a value of the
// wrong type is an error. Python's bare NaN, Infinity and -Infinity (which
// diffusers writes for lambda_min_clipped) are accepted.
func ParseConfig(b []byte) (Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(quoteNonFinite(b), &raw); err != nil {
		return Config{}, fmt.Errorf("sampling: scheduler config: %w", err)
	}
	var c Config
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := configFields[k]; !ok {
			continue
		}
		if err := c.setRaw(k, raw[k]); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// Set sets key (a scheduler_config.json key, e.g. "prediction_type") to
// value, as if the file had it, and marks it present. value is any Go
// value that encodes to the key's JSON type; nil is JSON null.
func (c *Config) Set(key string, value any) error {
	if _, ok := configFields[key]; !ok {
		return fmt.Errorf("sampling: unknown scheduler config key %q", key)
	}
	var raw []byte
	if f, ok := value.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
		raw = []byte(`"` + nonFiniteName(f) + `"`)
	} else {
		var err error
		if raw, err = json.Marshal(value); err != nil {
			return fmt.Errorf("sampling: scheduler config %s: %w", key, err)
		}
	}
	return c.setRaw(key, raw)
}

// Has reports whether the config file had key.
func (c Config) Has(key string) bool { return c.present[key] }

// Keys returns the present keys, sorted.
func (c Config) Keys() []string {
	ks := make([]string, 0, len(c.present))
	for k := range c.present {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Value returns the value of key as a Go value (int, float64, string,
// bool, []float64, or nil for null) whether or not it is present, and
// false if key is unknown.
func (c Config) Value(key string) (any, bool) {
	i, ok := configFields[key]
	if !ok {
		return nil, false
	}
	v := reflect.ValueOf(c).Field(i)
	switch {
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return nil, true
		}
		return v.Elem().Interface(), true
	case v.Kind() == reflect.Slice && v.IsNil():
		return nil, true
	case nullable[key] && v.Kind() == reflect.String && v.String() == "":
		return nil, true
	}
	return v.Interface(), true
}

func (c *Config) setRaw(key string, raw json.RawMessage) error {
	i := configFields[key]
	f := reflect.ValueOf(c).Elem().Field(i)
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		if !nullable[key] {
			return nil // None for a non-optional key: treat as absent.
		}
		f.SetZero()
		c.mark(key)
		return nil
	}
	bad := func(err error) error {
		return fmt.Errorf("sampling: scheduler config %s = %s: %w", key, raw, err)
	}
	switch f.Kind() {
	case reflect.Float64:
		v, err := decodeFloat(raw)
		if err != nil {
			return bad(err)
		}
		f.SetFloat(v)
	case reflect.Int:
		v, err := decodeFloat(raw)
		if err != nil {
			return bad(err)
		}
		if v != math.Trunc(v) || math.Abs(v) > 1<<31 {
			return bad(fmt.Errorf("not an integer"))
		}
		f.SetInt(int64(v))
	case reflect.Pointer: // *float64
		v, err := decodeFloat(raw)
		if err != nil {
			return bad(err)
		}
		f.Set(reflect.ValueOf(&v))
	case reflect.Slice: // []float64
		var vs []json.RawMessage
		if err := json.Unmarshal(raw, &vs); err != nil {
			return bad(err)
		}
		out := make([]float64, len(vs))
		for j, r := range vs {
			v, err := decodeFloat(r)
			if err != nil {
				return bad(err)
			}
			out[j] = v
		}
		f.Set(reflect.ValueOf(out))
	default:
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return bad(err)
		}
	}
	c.mark(key)
	return nil
}

// copyField copies key's value (and presence) from src to dst.
func copyField(dst *Config, src Config, key string) {
	i := configFields[key]
	reflect.ValueOf(dst).Elem().Field(i).Set(reflect.ValueOf(src).Field(i))
	dst.mark(key)
}

func (c *Config) mark(key string) {
	if c.present == nil {
		c.present = make(map[string]bool)
	}
	c.present[key] = true
}

// decodeFloat decodes a JSON number or one of the strings "NaN",
// "Infinity", "-Infinity".
func decodeFloat(raw []byte) (float64, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return 0, fmt.Errorf("want a number")
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("want a number")
	}
	return v, nil
}

func nonFiniteName(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case f > 0:
		return "Infinity"
	}
	return "-Infinity"
}

// quoteNonFinite returns b with Python's bare NaN, Infinity and -Infinity
// outside strings turned into JSON strings, which decodeFloat accepts.
func quoteNonFinite(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
		return b
	}
	var out bytes.Buffer
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out.WriteByte(c)
			if c == '\\' && i+1 < len(b) {
				i++
				out.WriteByte(b[i])
			} else if c == '"' {
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			out.WriteByte(c)
			continue
		}
		word := ""
		for _, w := range []string{"-Infinity", "Infinity", "NaN"} {
			if bytes.HasPrefix(b[i:], []byte(w)) {
				word = w
				break
			}
		}
		if word == "" {
			out.WriteByte(c)
			continue
		}
		out.WriteString(`"` + word + `"`)
		i += len(word) - 1
	}
	return out.Bytes()
}
