package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pigment-ai/pigment/assets"
)

// getImage handles GET /v1/images/:id: the stored image, post-processed as
// the query says (format, quality, w, h, fit; assets.ParseOptions). Image
// ids never name other data, so the answer is cacheable for good.
func (s *Server) getImage(c echo.Context) error {
	id := c.Param("id")
	if !validID(id) {
		return errorf(ErrNotFound, "", "no such image")
	}
	opts, err := assets.ParseOptions(c.QueryParams())
	if err != nil {
		return optionError(err)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%+v", id, opts))
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", etag)
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	data, _, err := s.images.Get(c.Request().Context(), id)
	if err != nil {
		h.Del("Cache-Control")
		h.Del("ETag")
		return err // assets.ErrNotFound: 404
	}
	out, contentType, err := assets.Process(data, opts)
	if err != nil {
		h.Del("Cache-Control")
		h.Del("ETag")
		return optionError(err)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, contentType, out)
}

// optionError turns an *assets.OptionError into a 400 naming the field;
// other errors pass unchanged.
func optionError(err error) error {
	var oe *assets.OptionError
	if errors.As(err, &oe) {
		return invalidf(oe.Field, "%s", oe.Message)
	}
	return err
}
