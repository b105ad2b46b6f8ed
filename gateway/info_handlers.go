package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/pigment-ai/pigment/diffusion/sampling"
)

// modelView is one entry of GET /v1/models: OpenAI's model object (id,
// object, created, owned_by) plus what a Pigment client needs to fill a
// request.
type modelView struct {
	ID             string    `json:"id"`
	Object         string    `json:"object"`
	Created        int64     `json:"created"`
	OwnedBy        string    `json:"owned_by"`
	Name           string    `json:"name"`
	DefaultSize    int       `json:"default_size"`
	VAEScaleFactor int       `json:"vae_scale_factor"`
	DefaultSampler string    `json:"default_sampler"`
	ClipLayers     int       `json:"clip_layers"`
	Default        bool      `json:"default"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// listResponse is the list shape of /v1/models and /v1/samplers
// ({"object": "list", "data": […]}, as OpenAI's /v1/models).
type listResponse[T any] struct {
	Object string `json:"object"`
	Data   []T    `json:"data"`
}

// listModels handles GET /v1/models: the models the workers serve.
func (s *Server) listModels(c echo.Context) error {
	models, err := s.b.ListModels(c.Request().Context())
	if err != nil {
		return err
	}
	out := listResponse[modelView]{Object: "list", Data: []modelView{}}
	for name, m := range models {
		sampler := m.Sampler
		if k, err := sampling.ParseKind(m.Sampler); err == nil {
			sampler = string(k)
		}
		out.Data = append(out.Data, modelView{
			ID: name, Object: "model", Created: m.UpdatedAt.Unix(), OwnedBy: "pigment",
			Name: name, DefaultSize: m.DefaultSize, VAEScaleFactor: m.VAEScaleFactor,
			DefaultSampler: sampler, ClipLayers: m.ClipLayers, UpdatedAt: m.UpdatedAt,
			Default: name == s.cfg.DefaultModel || (s.cfg.DefaultModel == "" && len(models) == 1),
		})
	}
	slices.SortFunc(out.Data, func(a, b modelView) int { return strings.Compare(a.Name, b.Name) })
	return c.JSON(http.StatusOK, out)
}

// samplerView is one entry of GET /v1/samplers.
type samplerView struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name"`
	Aliases     []string `json:"aliases"`
}

// aliasCandidates are names clients use for samplers; each is listed for
// the kind sampling.ParseKind resolves it to, so the list cannot lie.
var aliasCandidates = []string{
	"euler_ancestral", "k_euler_a", "k_euler", "k_lms", "k_ddim",
	"dpm++_2m", "dpm++_2m_karras", "k_dpmpp_2m", "k_dpmpp_2m_karras", "plms",
}

// listSamplers handles GET /v1/samplers: every sampler with its
// AUTOMATIC1111 display name and the other names the API accepts.
func (s *Server) listSamplers(c echo.Context) error {
	out := listResponse[samplerView]{Object: "list"}
	for _, k := range sampling.Kinds() {
		v := samplerView{Name: string(k), DisplayName: k.DisplayName(), Aliases: []string{}}
		for _, a := range append([]string{k.DisplayName(), k.ClassName()}, aliasCandidates...) {
			if strings.EqualFold(a, string(k)) || slices.ContainsFunc(v.Aliases, func(b string) bool { return strings.EqualFold(a, b) }) {
				continue
			}
			if got, err := sampling.ParseKind(a); err == nil && got == k {
				v.Aliases = append(v.Aliases, a)
			}
		}
		out.Data = append(out.Data, v)
	}
	return c.JSON(http.StatusOK, out)
}

type statusBody struct {
	Status string `json:"status"`
}

// healthz handles GET /healthz: the process is alive.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusBody{"ok"})
}

// readyz handles GET /readyz: 200 when NATS is connected and JetStream
// answers, else 503.
func (s *Server) readyz(c echo.Context) error {
	if st := s.b.NC.Status(); st != nats.CONNECTED {
		return errorf(ErrUnavailable, "", "not connected to NATS (%s)", strings.ToLower(st.String()))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if _, err := s.b.JS.AccountInfo(ctx); err != nil {
		s.log.Warn("readyz: JetStream unreachable", "err", err)
		return errorf(ErrUnavailable, "", "JetStream does not answer")
	}
	return c.JSON(http.StatusOK, statusBody{"ready"})
}
