package gateway

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"net/http"
	"strings"
	"testing"

	"github.com/pigment-ai/pigment"
)

func TestGetImage(t *testing.T) {
	e := newEnv(t, Config{})
	src := testPNG(t, 32, 16)
	if err := e.images.Put(context.Background(), "job1-0", src, map[string]string{"seed": "1"}); err != nil {
		t.Fatal(err)
	}

	t.Run("as stored", func(t *testing.T) {
		rec := e.do(t, http.MethodGet, "/v1/images/job1-0", "")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/png" || !bytes.Equal(rec.Body.Bytes(), src) {
			t.Fatalf("%d %s, %d bytes; want the stored PNG", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
		if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("Cache-Control %q, want immutable", cc)
		}
		etag := rec.Header().Get("ETag")
		again := e.do(t, http.MethodGet, "/v1/images/job1-0", "", "If-None-Match", etag)
		if etag == "" || again.Code != http.StatusNotModified {
			t.Errorf("If-None-Match %s: %d, want 304", etag, again.Code)
		}
		if other := e.do(t, http.MethodGet, "/v1/images/job1-0?w=8", ""); other.Header().Get("ETag") == etag {
			t.Error("a resized image has the ETag of the original")
		}
	})

	t.Run("post-processed", func(t *testing.T) {
		rec := e.do(t, http.MethodGet, "/v1/images/job1-0?format=jpeg&quality=70&w=8&h=8&fit=fill", "")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/jpeg" {
			t.Fatalf("%d %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		img, err := jpeg.Decode(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds() != image.Rect(0, 0, 8, 8) {
			t.Errorf("bounds %v, want 8x8", img.Bounds())
		}
	})

	for _, tc := range []struct{ query, field string }{
		{"fit=bogus&w=8", "fit"},
		{"w=abc", "w"},
		{"h=0", "h"},
		{"w=5000", "w"},
		{"format=gif", "format"},
		{"quality=50", "quality"},
		{"w=8&w=9", "w"},
		{"h=4096", "h"}, // 32x16 scaled to height 4096 is 8192 wide
	} {
		t.Run("bad query "+tc.query, func(t *testing.T) {
			rec := e.do(t, http.MethodGet, "/v1/images/job1-0?"+tc.query, "")
			checkError(t, rec, http.StatusBadRequest, pigment.CodeInvalid, tc.field)
			if rec.Header().Get("Cache-Control") != "" {
				t.Error("an error is cacheable")
			}
		})
	}

	for _, id := range []string{"nope-0", "a.b", "%2e%2e"} {
		t.Run("missing "+id, func(t *testing.T) {
			checkError(t, e.do(t, http.MethodGet, "/v1/images/"+id, ""), http.StatusNotFound, pigment.CodeNotFound, "")
		})
	}
}
