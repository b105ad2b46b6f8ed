package gateway

// POST /v1/images/generations: OpenAI's Images API, synchronously, so that
// OpenAI clients and SDKs work against Pigment unchanged. It submits a job
// like POST /v1/jobs and waits for it. Its errors take OpenAI's shape,
// {"error": {"message", "type", "param", "code"}}, not the contract's.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/assets"
)

// MaxOpenAIImages is OpenAI's bound on n.
const MaxOpenAIImages = 10

// openAIRequest is the body of POST /v1/images/generations. Other OpenAI
// fields (quality, style, user, background, moderation, …) are accepted
// and ignored. negative_prompt, seed, steps, guidance_scale and sampler
// are Pigment extensions with their POST /v1/jobs meaning.
type openAIRequest struct {
	Prompt            *string `json:"prompt"`
	N                 *int    `json:"n"`
	Size              *string `json:"size"`
	ResponseFormat    *string `json:"response_format"`
	Model             *string `json:"model"`
	OutputFormat      *string `json:"output_format"`
	OutputCompression *int    `json:"output_compression"`

	NegativePrompt *string  `json:"negative_prompt"`
	Seed           *int64   `json:"seed"`
	Steps          *int     `json:"steps"`
	GuidanceScale  *float64 `json:"guidance_scale"`
	Sampler        *string  `json:"sampler"`
}

type openAIResponse struct {
	Created int64         `json:"created"`
	Data    []openAIImage `json:"data"`
}

type openAIImage struct {
	URL           string `json:"url,omitempty"`
	B64JSON       string `json:"b64_json,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

// openAIError is OpenAI's error body.
type openAIError struct {
	Error openAIErrorDetail `json:"error"`
}

type openAIErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func openAIErrorBody(status int, d errorDetail) openAIError {
	e := openAIErrorDetail{Message: d.Message, Type: "invalid_request_error"}
	if status >= 500 {
		e.Type = "server_error"
	}
	if d.Field != "" {
		e.Param = &d.Field
	}
	if d.Code != "" {
		e.Code = &d.Code
	}
	return openAIError{Error: e}
}

// openAIGenerate handles POST /v1/images/generations.
func (s *Server) openAIGenerate(c echo.Context) error {
	job, format, err := s.openAISubmit(c)
	if err != nil {
		return openAIField(err)
	}
	c.Response().Header().Set("X-Pigment-Job-ID", job.ID)

	ctx := c.Request().Context()
	wctx, cancel := context.WithTimeout(ctx, s.cfg.SyncTimeout)
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	updates, err := s.b.WatchJob(wctx, job.ID)
	if err != nil {
		return err
	}
	for j := range updates {
		job = j
	}
	switch {
	case job.Status == pigment.StatusSucceeded:
	case job.Status == pigment.StatusFailed:
		return errorf(ErrFailed, "", "job %s failed: %s", job.ID, job.Error)
	case job.Status == pigment.StatusCanceled:
		return errorf(ErrConflict, "", "job %s was canceled", job.ID)
	case ctx.Err() != nil:
		return ctx.Err() // the client went away; the job goes on
	case s.streams.Err() != nil:
		return errorf(ErrUnavailable, "", "the gateway is shutting down; job %s goes on: GET /v1/jobs/%s", job.ID, job.ID)
	default:
		return errorf(ErrTimeout, "", "job %s did not finish within %s; it goes on: GET /v1/jobs/%s", job.ID, s.cfg.SyncTimeout, job.ID)
	}

	resp := openAIResponse{Created: job.CreatedAt.Unix(), Data: make([]openAIImage, 0, len(job.Images))}
	if format == "b64_json" {
		opts, err := assets.FromOutput(job.Request.Output)
		if err != nil {
			return fmt.Errorf("job %s: output options: %w", job.ID, err)
		}
		for _, img := range job.Images {
			data, _, err := s.images.Get(ctx, img.ID)
			if err != nil {
				return fmt.Errorf("job %s: image %s: %w", job.ID, img.ID, err)
			}
			if data, _, err = assets.Process(data, opts); err != nil {
				return fmt.Errorf("job %s: image %s: %w", job.ID, img.ID, err)
			}
			resp.Data = append(resp.Data, openAIImage{B64JSON: base64.StdEncoding.EncodeToString(data)})
		}
	} else {
		base := s.cfg.PublicURL
		if base == "" {
			base = c.Scheme() + "://" + c.Request().Host
		}
		query := imageQuery(job.Request.Output)
		for _, img := range job.Images {
			resp.Data = append(resp.Data, openAIImage{URL: imageURL(base, img.ID, query)})
		}
	}
	return c.JSON(http.StatusOK, resp)
}

// openAISubmit validates the request and submits its job. It returns the
// job and the response format.
func (s *Server) openAISubmit(c echo.Context) (*pigment.Job, string, error) {
	key := c.Request().Header.Get("Idempotency-Key")
	if len(key) > MaxIdempotencyKeyLen {
		return nil, "", invalidf("Idempotency-Key", "is %d characters long; the limit is %d", len(key), MaxIdempotencyKeyLen)
	}
	data, err := s.readBody(c)
	if err != nil {
		return nil, "", err
	}
	var req openAIRequest
	if err := decodeObject(data, &req, "", false); err != nil {
		return nil, "", err
	}
	body := jobBody{
		Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Seed: req.Seed,
		Steps: req.Steps, GuidanceScale: req.GuidanceScale, Sampler: req.Sampler, N: req.N,
	}
	if req.N != nil && (*req.N < 1 || *req.N > MaxOpenAIImages) {
		return nil, "", invalidf("n", "must be from 1 to %d, got %d", MaxOpenAIImages, *req.N)
	}
	if req.Size != nil && *req.Size != "" && *req.Size != "auto" {
		ws, hs, ok := strings.Cut(strings.ToLower(*req.Size), "x")
		w, werr := strconv.Atoi(ws)
		h, herr := strconv.Atoi(hs)
		if !ok || werr != nil || herr != nil {
			return nil, "", invalidf("size", "must be WIDTHxHEIGHT such as 512x512, or auto; got %q", *req.Size)
		}
		body.Width, body.Height = &w, &h
	}
	format := "url"
	if req.ResponseFormat != nil && *req.ResponseFormat != "" {
		format = *req.ResponseFormat
		if format != "url" && format != "b64_json" {
			return nil, "", invalidf("response_format", "must be url or b64_json, got %q", format)
		}
	}
	if req.Model != nil && !isOpenAIModel(*req.Model) {
		body.Model = req.Model
	}
	if req.OutputFormat != nil || req.OutputCompression != nil {
		o := map[string]any{}
		if req.OutputFormat != nil {
			o["format"] = *req.OutputFormat
		}
		if req.OutputCompression != nil {
			o["quality"] = *req.OutputCompression
		}
		// Through the same validation as a job's output object.
		body.Output, _ = json.Marshal(o) // strings and ints: cannot fail
	}
	r, err := s.resolve(c.Request().Context(), &body)
	if err != nil {
		return nil, "", err
	}
	job, _, err := s.submit(c.Request().Context(), r, key)
	return job, format, err
}

// isOpenAIModel reports whether name is one of OpenAI's image models, which
// clients send by default; they mean the default model.
func isOpenAIModel(name string) bool {
	n := strings.ToLower(name)
	return n == "" || strings.HasPrefix(n, "dall-e") || strings.HasPrefix(n, "gpt-image")
}

// openAIField renames the fields of errors to this endpoint's parameters.
func openAIField(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	out := *e
	switch e.Field {
	case "width", "height":
		out.Field = "size"
	case "output.format":
		out.Field = "output_format"
	case "output.quality":
		out.Field = "output_compression"
	}
	return &out
}
