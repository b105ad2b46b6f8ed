package gateway

// Decoding and validation of job requests: the body of POST /v1/jobs (and,
// through the same resolve, the OpenAI-compatible endpoint). Every problem
// with a request is an *Error naming the field at fault; nothing a client
// sends can cause a 500.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/diffusion"
	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/diffusion/sampling"
)

// Limits of job request fields beyond the engine's (diffusion.MaxSteps,
// MaxImagesPerBatch, MaxSide).
const (
	MaxPromptLength      = 10000 // characters, for prompt and negative_prompt
	MaxMetadataBytes     = 16 << 10
	MaxWebhookURLLength  = 2048
	MaxIdempotencyKeyLen = 255
	MaxOutputSide        = assets.MaxSide

	DefaultSteps         = 20
	DefaultGuidanceScale = 7.5
	DefaultStrength      = 0.8
	DefaultPriority      = "normal"
)

// jobBody is the wire form of a job request. Pointers tell an omitted field
// from an explicit zero, which is invalid for some fields (steps: 0).
type jobBody struct {
	Prompt          *string         `json:"prompt"`
	NegativePrompt  *string         `json:"negative_prompt"`
	Model           *string         `json:"model"`
	Width           *int            `json:"width"`
	Height          *int            `json:"height"`
	Steps           *int            `json:"steps"`
	GuidanceScale   *float64        `json:"guidance_scale"`
	CFGScale        *float64        `json:"cfg_scale"` // alias of guidance_scale, at the edge only
	Sampler         *string         `json:"sampler"`
	Seed            *int64          `json:"seed"`
	N               *int            `json:"n"`
	ClipSkip        *int            `json:"clip_skip"`
	Eta             *float64        `json:"eta"`
	GuidanceRescale *float64        `json:"guidance_rescale"`
	RNG             *string         `json:"rng"`
	InitImage       *string         `json:"init_image"`
	Strength        *float64        `json:"strength"`
	Output          json.RawMessage `json:"output"`
	Priority        *string         `json:"priority"`
	WebhookURL      *string         `json:"webhook_url"`
	Metadata        json.RawMessage `json:"metadata"`
}

// outputBody is the wire form of the request's output object.
type outputBody struct {
	Format  *string `json:"format"`
	Quality *int    `json:"quality"`
	Width   *int    `json:"width"`
	Height  *int    `json:"height"`
	Fit     *string `json:"fit"`
}

// resolved is a valid job request with every default filled in.
type resolved struct {
	req pigment.JobRequest // InitImage is empty; see initImage
	// seed is the seed of the first image (the request's, or drawn).
	seed uint64
	// initImage is the init image as sent (decoded from base64), stored
	// beside the record under broker.InitImageName.
	initImage []byte
}

// readBody reads the request body, at most Config.MaxBodyBytes of it.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, errorf(ErrTooLarge, "", "the request body is %d bytes; the limit is %d", r.ContentLength, s.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errorf(ErrTooLarge, "", "the request body exceeds %d bytes", s.cfg.MaxBodyBytes)
	}
	if err != nil {
		return nil, invalidf("", "reading the request body: %v", err)
	}
	return body, nil
}

// decodeObject decodes the JSON object data into v, which must be a
// pointer to a struct. Errors name the field at fault, prefixed by prefix
// (the path of the object in the body, "" for the body itself); strict
// rejects unknown fields.
func decodeObject(data []byte, v any, prefix string, strict bool) error {
	what := "the request body"
	if prefix != "" {
		what = "the value" // the message follows the field's name
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return invalidf(prefix, "%s is empty; expected a JSON object", what)
	}
	if trimmed[0] != '{' {
		return invalidf(prefix, "%s must be a JSON object", what)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err, prefix, what)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf(prefix, "%s must hold a single JSON object; found more data after it", what)
	}
	return nil
}

// jsonError turns an encoding/json error into an *Error naming the field.
func jsonError(err error, prefix, what string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return invalidf(prefix, "%s is not valid JSON: %s (at byte %d)", what, strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	case errors.As(err, &te):
		return invalidf(joinField(prefix, te.Field), "must be %s, got %s", describeType(te.Type), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalidf(prefix, "%s is not valid JSON: it ends early", what)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, qerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if qerr != nil {
			name = strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		return invalidf(joinField(prefix, name), "unknown field")
	}
	var ie *json.InvalidUnmarshalError
	if errors.As(err, &ie) {
		return err // a bug: internal
	}
	return invalidf(prefix, "%s is not valid JSON: %s", what, strings.TrimPrefix(err.Error(), "json: "))
}

func joinField(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

// describeType names a Go type in JSON's terms, for "must be …" messages.
func describeType(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a " + t.String()
}

// resolve validates a job request and fills in its defaults; errors are
// *Error values naming the field (or infrastructure errors).
func (s *Server) resolve(ctx context.Context, body *jobBody) (*resolved, error) {
	var r resolved
	req := &r.req

	// Prompts.
	if body.Prompt == nil || strings.TrimSpace(*body.Prompt) == "" {
		return nil, invalidf("prompt", "is required: describe the image to generate")
	}
	req.Prompt = *body.Prompt
	if n := utf8.RuneCountInString(req.Prompt); n > MaxPromptLength {
		return nil, invalidf("prompt", "is %d characters long; the limit is %d", n, MaxPromptLength)
	}
	if body.NegativePrompt != nil {
		req.NegativePrompt = *body.NegativePrompt
		if n := utf8.RuneCountInString(req.NegativePrompt); n > MaxPromptLength {
			return nil, invalidf("negative_prompt", "is %d characters long; the limit is %d", n, MaxPromptLength)
		}
	}

	// Model, and what depends on it.
	model, err := s.model(ctx, deref(body.Model))
	if err != nil {
		return nil, err
	}
	req.Model = model.Name
	f := max(model.VAEScaleFactor, 1)
	maxSide, maxPixels := diffusion.SizeLimits(model.DefaultSize)

	// The init image comes first among the model-dependent fields: its
	// size is the default output size, as in diffusers' img2img.
	defaultW, defaultH := model.DefaultSize, model.DefaultSize
	if body.InitImage != nil && *body.InitImage != "" {
		data, w, h, err := s.decodeInitImage(*body.InitImage)
		if err != nil {
			return nil, err
		}
		fw, fh := imageio.FitSize(w, h, f)
		if fw == 0 || fh == 0 {
			return nil, invalidf("init_image", "is %dx%d pixels; both sides must be at least %d (the model's VAE scale factor)", w, h, f)
		}
		if (body.Width == nil || body.Height == nil) && (fw > maxSide || fh > maxSide || fw*fh > maxPixels) {
			return nil, invalidf("init_image", "is %dx%d pixels; the output takes its size unless width and height are given, and this model is limited to sides of %d and %d pixels in all: give width and height, or a smaller image", w, h, maxSide, maxPixels)
		}
		r.initImage, defaultW, defaultH = data, fw, fh
	}
	if req.Width, err = side("width", body.Width, defaultW, f, maxSide); err != nil {
		return nil, err
	}
	if req.Height, err = side("height", body.Height, defaultH, f, maxSide); err != nil {
		return nil, err
	}
	if req.Width*req.Height > maxPixels {
		return nil, invalidf("width", "%dx%d is more than this model's limit of %d pixels (8x its default area)", req.Width, req.Height, maxPixels)
	}

	req.Steps = DefaultSteps
	if body.Steps != nil {
		req.Steps = *body.Steps
	}
	if req.Steps < 1 || req.Steps > diffusion.MaxSteps {
		return nil, invalidf("steps", "must be from 1 to %d, got %d", diffusion.MaxSteps, req.Steps)
	}

	guidance := DefaultGuidanceScale
	switch {
	case body.GuidanceScale != nil && body.CFGScale != nil && *body.GuidanceScale != *body.CFGScale:
		return nil, invalidf("cfg_scale", "is an alias of guidance_scale; give one of them")
	case body.GuidanceScale != nil:
		guidance = *body.GuidanceScale
	case body.CFGScale != nil:
		guidance = *body.CFGScale
	}
	if guidance < 0 || guidance > 100 {
		field := "guidance_scale"
		if body.GuidanceScale == nil {
			field = "cfg_scale"
		}
		return nil, invalidf(field, "must be from 0 to 100, got %g", guidance)
	}
	req.GuidanceScale = &guidance

	if body.Sampler != nil {
		k, err := sampling.ParseKind(*body.Sampler)
		if err != nil {
			return nil, invalidf("sampler", "%s", strings.TrimPrefix(err.Error(), "sampling: "))
		}
		req.Sampler = string(k)
	} else if k, err := sampling.ParseKind(model.Sampler); err == nil {
		req.Sampler = string(k)
	} else {
		req.Sampler = model.Sampler // the worker's own name; it knows it
	}

	switch {
	case body.Seed == nil || *body.Seed == -1:
		r.seed = uint64(rand.Uint32())
	case *body.Seed < 0:
		return nil, invalidf("seed", "must be from 0 to %d, or -1 (or omitted) for a random seed; got %d", int64(1<<63-1), *body.Seed)
	default:
		r.seed = uint64(*body.Seed)
	}
	seed := int64(r.seed)
	req.Seed = &seed

	req.N = 1
	if body.N != nil {
		req.N = *body.N
	}
	if req.N < 1 || req.N > diffusion.MaxImagesPerBatch {
		return nil, invalidf("n", "must be from 1 to %d, got %d", diffusion.MaxImagesPerBatch, req.N)
	}

	if body.ClipSkip != nil {
		req.ClipSkip = *body.ClipSkip
		if req.ClipSkip < 0 || (model.ClipLayers > 0 && req.ClipSkip > model.ClipLayers) {
			if model.ClipLayers > 0 {
				return nil, invalidf("clip_skip", "must be from 1 to %d (the text encoder's layers; 0 means 1), got %d", model.ClipLayers, req.ClipSkip)
			}
			return nil, invalidf("clip_skip", "must not be negative, got %d", req.ClipSkip)
		}
	}
	req.ClipSkip = max(req.ClipSkip, 1) // AUTOMATIC1111's default: the last layer

	if req.Eta, err = number("eta", body.Eta, 0, 0, 10); err != nil {
		return nil, err
	}
	if req.GuidanceRescale, err = number("guidance_rescale", body.GuidanceRescale, 0, 0, 1); err != nil {
		return nil, err
	}

	req.RNG = "cpu"
	if body.RNG != nil {
		req.RNG = strings.ToLower(strings.TrimSpace(*body.RNG))
		if req.RNG != "cpu" && req.RNG != "cuda" {
			return nil, invalidf("rng", "must be cpu or cuda, got %q", *body.RNG)
		}
	}

	if r.initImage != nil {
		strength := DefaultStrength
		if body.Strength != nil {
			strength = *body.Strength
		}
		if strength <= 0 || strength > 1 {
			return nil, invalidf("strength", "must be greater than 0 and at most 1, got %g", strength)
		}
		if int(float64(req.Steps)*strength) < 1 {
			return nil, invalidf("strength", "%g of %d steps leaves no denoising step: raise strength or steps", strength, req.Steps)
		}
		req.Strength = &strength
	} else if body.Strength != nil {
		return nil, invalidf("strength", "applies only to image-to-image jobs; give init_image too")
	}

	if req.Output, err = output(body.Output); err != nil {
		return nil, err
	}

	req.Priority = DefaultPriority
	if body.Priority != nil {
		req.Priority = strings.ToLower(strings.TrimSpace(*body.Priority))
		if !slices.Contains(pigment.Priorities, req.Priority) {
			return nil, invalidf("priority", "must be one of %s, got %q", strings.Join(pigment.Priorities, ", "), *body.Priority)
		}
	}

	if body.WebhookURL != nil && *body.WebhookURL != "" {
		if err := checkWebhookURL(*body.WebhookURL); err != nil {
			return nil, err
		}
		req.WebhookURL = *body.WebhookURL
	}

	if len(body.Metadata) > 0 && !bytes.Equal(body.Metadata, []byte("null")) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, body.Metadata); err != nil {
			return nil, invalidf("metadata", "is not valid JSON: %v", err)
		}
		if buf.Len() > MaxMetadataBytes {
			return nil, errorf(ErrTooLarge, "metadata", "is %d bytes of JSON; the limit is %d", buf.Len(), MaxMetadataBytes)
		}
		req.Metadata = json.RawMessage(buf.Bytes())
	}
	return &r, nil
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// side resolves width or height: a positive multiple of the VAE scale
// factor f, at most maxSide (diffusion.SizeLimits).
func side(field string, v *int, def, f, maxSide int) (int, error) {
	x := def
	if v != nil {
		x = *v
	}
	if x <= 0 || x%f != 0 || x > maxSide {
		return 0, invalidf(field, "must be a positive multiple of %d (the model's VAE scale factor) up to %d, got %d", f, maxSide, x)
	}
	return x, nil
}

// number resolves a float field with a default and an inclusive range.
func number(field string, v *float64, def, lo, hi float64) (float64, error) {
	x := def
	if v != nil {
		x = *v
	}
	if x < lo || x > hi {
		return 0, invalidf(field, "must be from %g to %g, got %g", lo, hi, x)
	}
	return x, nil
}

// model returns the model a request names, or the default one.
func (s *Server) model(ctx context.Context, name string) (pigment.ModelInfo, error) {
	wanted := name
	if wanted == "" {
		wanted = s.cfg.DefaultModel
	}
	if wanted != "" {
		e, err := s.b.Models.Get(ctx, wanted)
		switch {
		case err == nil:
			var m pigment.ModelInfo
			if err := json.Unmarshal(e.Value(), &m); err != nil {
				return m, fmt.Errorf("model %q: corrupt record: %w", wanted, err)
			}
			m.Name = wanted
			return m, nil
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
			// Unknown: list the models for the error message.
		default:
			return pigment.ModelInfo{}, fmt.Errorf("model %q: %w", wanted, err)
		}
	}
	models, err := s.b.ListModels(ctx)
	if err != nil {
		return pigment.ModelInfo{}, fmt.Errorf("listing models: %w", err)
	}
	if len(models) == 0 {
		return pigment.ModelInfo{}, errorf(ErrUnavailable, "model", "no worker serves a model yet; try again when a worker has started")
	}
	served := slices.Sorted(func(yield func(string) bool) {
		for k := range models {
			if !yield(k) {
				return
			}
		}
	})
	switch {
	case name != "":
		return pigment.ModelInfo{}, invalidf("model", "unknown model %q (served: %s)", name, strings.Join(served, ", "))
	case wanted != "":
		return pigment.ModelInfo{}, errorf(ErrUnavailable, "model", "the default model %q is not served by any worker (served: %s); name a model", wanted, strings.Join(served, ", "))
	case len(served) > 1:
		return pigment.ModelInfo{}, invalidf("model", "is required when several models are served (%s)", strings.Join(served, ", "))
	}
	m := models[served[0]]
	m.Name = served[0]
	return m, nil
}

// decodeInitImage decodes an init image given as base64 or as a data URI
// (data:image/png;base64,…) and checks that imageio.Decode reads it within
// the pixel limit. It returns the image file's bytes and its size.
func (s *Server) decodeInitImage(v string) (data []byte, w, h int, err error) {
	payload := v
	if len(v) >= 5 && strings.EqualFold(v[:5], "data:") {
		header, rest, ok := strings.Cut(v[5:], ",")
		if !ok {
			return nil, 0, 0, invalidf("init_image", "malformed data URI: no comma before the data")
		}
		mediaType, isBase64 := strings.CutSuffix(strings.ToLower(header), ";base64")
		if !isBase64 {
			return nil, 0, 0, invalidf("init_image", "data URI must be base64-encoded (data:image/png;base64,…)")
		}
		if mt, _, _ := strings.Cut(mediaType, ";"); mt != "" && !strings.HasPrefix(mt, "image/") {
			return nil, 0, 0, invalidf("init_image", "data URI has media type %q, not an image", mt)
		}
		payload = rest
	}
	payload = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, payload)
	data, err = decodeBase64(payload)
	if err != nil {
		return nil, 0, 0, invalidf("init_image", "is not valid base64 (%v)", err)
	}
	if len(data) == 0 {
		return nil, 0, 0, invalidf("init_image", "is empty")
	}
	img, _, err := imageio.Decode(bytes.NewReader(data), s.cfg.MaxInitPixels)
	switch {
	case errors.Is(err, imageio.ErrTooLarge):
		return nil, 0, 0, errorf(ErrTooLarge, "init_image", "%s", strings.TrimPrefix(err.Error(), "imageio: "))
	case err != nil:
		return nil, 0, 0, invalidf("init_image", "cannot be decoded: %s", strings.TrimPrefix(err.Error(), "imageio: "))
	}
	b := img.Bounds()
	return data, b.Dx(), b.Dy(), nil
}

// decodeBase64 accepts standard and URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") {
		enc = enc.WithPadding(base64.NoPadding)
	}
	return enc.DecodeString(s)
}

// output validates the request's output object (assets.FromOutput's
// rules); nil or {} give nil.
func output(raw json.RawMessage) (*pigment.OutputOptions, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var ob outputBody
	if err := decodeObject(raw, &ob, "output", true); err != nil {
		return nil, err
	}
	for _, v := range []struct {
		field string
		p     *int
	}{{"output.quality", ob.Quality}, {"output.width", ob.Width}, {"output.height", ob.Height}} {
		if v.p != nil && *v.p < 1 {
			return nil, invalidf(v.field, "must be a positive integer, got %d", *v.p)
		}
	}
	o, err := assets.FromOutput(&pigment.OutputOptions{
		Format: deref(ob.Format), Quality: deref(ob.Quality),
		Width: deref(ob.Width), Height: deref(ob.Height), Fit: deref(ob.Fit),
	})
	var oe *assets.OptionError
	if errors.As(err, &oe) {
		return nil, invalidf(oe.Field, "%s", oe.Message)
	}
	if err != nil {
		return nil, err
	}
	if o.IsZero() {
		return nil, nil
	}
	return &pigment.OutputOptions{Format: o.Format, Quality: o.Quality, Width: o.Width, Height: o.Height, Fit: o.Fit}, nil
}

// checkWebhookURL accepts absolute http and https URLs.
func checkWebhookURL(v string) error {
	if len(v) > MaxWebhookURLLength {
		return invalidf("webhook_url", "is %d characters long; the limit is %d", len(v), MaxWebhookURLLength)
	}
	u, err := url.Parse(v)
	if err != nil {
		return invalidf("webhook_url", "is not a valid URL: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalidf("webhook_url", "must be an absolute http or https URL, got %q", v)
	}
	return nil
}

// imageQuery is the query of a job's image URLs: its output options, so
// that the default URL serves the image as the job asked.
func imageQuery(o *pigment.OutputOptions) string {
	if o == nil {
		return ""
	}
	q := url.Values{}
	if o.Format != "" {
		q.Set("format", o.Format)
	}
	if o.Quality != 0 {
		q.Set("quality", strconv.Itoa(o.Quality))
	}
	if o.Width != 0 {
		q.Set("w", strconv.Itoa(o.Width))
	}
	if o.Height != 0 {
		q.Set("h", strconv.Itoa(o.Height))
	}
	if o.Fit != "" {
		q.Set("fit", o.Fit)
	}
	return q.Encode()
}
