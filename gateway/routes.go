package gateway

import (
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// openAIImagesPath is the OpenAI-compatible route, whose errors take
// OpenAI's shape.
const openAIImagesPath = "/v1/images/generations"

// routes registers the API (DESIGN.md, contract).
func (s *Server) routes() {
	e := s.echo

	e.POST("/v1/jobs", s.createJob)
	e.GET("/v1/jobs/:id", s.getJob)
	e.DELETE("/v1/jobs/:id", s.cancelJob)
	e.GET("/v1/jobs/:id/events", s.jobEvents)

	e.GET("/v1/images/:id", s.getImage)
	e.HEAD("/v1/images/:id", s.getImage)
	e.POST(openAIImagesPath, s.openAIGenerate)

	e.GET("/v1/models", s.listModels)
	e.GET("/v1/samplers", s.listSamplers)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics.gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	})))
}
