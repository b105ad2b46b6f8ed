package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/broker"
)

type openAITestResponse struct {
	Created int64 `json:"created"`
	Data    []struct {
		URL     string `json:"url"`
		B64JSON string `json:"b64_json"`
	} `json:"data"`
}

// openAIDo posts body to the OpenAI endpoint while a fake worker with the
// given failure runs the job.
func openAIDo(t *testing.T, e *env, body, failure string) *httptest.ResponseRecorder {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.fakeWorker(t, "normal", failure)
	}()
	rec := e.do(t, http.MethodPost, "/v1/images/generations", body)
	<-done
	return rec
}

func TestOpenAIGenerate(t *testing.T) {
	e := newEnv(t, Config{})

	t.Run("b64_json", func(t *testing.T) {
		start := time.Now().Unix()
		rec := openAIDo(t, e, `{"prompt": "a cat", "n": 2, "size": "24x8", "response_format": "b64_json", "model": "dall-e-3", "quality": "hd", "style": "vivid", "user": "u1"}`, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		resp := decode[openAITestResponse](t, rec)
		if resp.Created < start || len(resp.Data) != 2 {
			t.Fatalf("created %d, %d images; want ≥ %d and 2", resp.Created, len(resp.Data), start)
		}
		for _, d := range resp.Data {
			data, err := base64.StdEncoding.DecodeString(d.B64JSON)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil || img.Bounds().Dx() != 24 || img.Bounds().Dy() != 8 {
				t.Errorf("image: %v %v, want a 24x8 PNG", err, img)
			}
		}
		id := rec.Header().Get("X-Pigment-Job-ID")
		if job := decode[pigment.Job](t, e.do(t, http.MethodGet, "/v1/jobs/"+id, "")); job.Status != pigment.StatusSucceeded {
			t.Errorf("job %s: %s", id, job.Status)
		}
	})

	t.Run("url", func(t *testing.T) {
		rec := openAIDo(t, e, `{"prompt": "a cat", "output_format": "jpeg", "output_compression": 60}`, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		resp := decode[openAITestResponse](t, rec)
		id := rec.Header().Get("X-Pigment-Job-ID")
		want := "http://example.com/v1/images/" + broker.ImageID(id, 0) + "?format=jpeg&quality=60"
		if len(resp.Data) != 1 || resp.Data[0].URL != want {
			t.Fatalf("data %+v, want one url %s", resp.Data, want)
		}
		img := e.do(t, http.MethodGet, strings.TrimPrefix(want, "http://example.com"), "")
		if img.Code != http.StatusOK || img.Header().Get("Content-Type") != "image/jpeg" {
			t.Errorf("fetching the url: %d %s", img.Code, img.Header().Get("Content-Type"))
		}
	})

	t.Run("failed job", func(t *testing.T) {
		rec := openAIDo(t, e, `{"prompt": "a cat"}`, "out of memory")
		d := checkOpenAIError(t, rec, http.StatusInternalServerError, "server_error", "")
		if !strings.Contains(d.Message, "out of memory") {
			t.Errorf("message %q does not say why", d.Message)
		}
	})

	for _, tc := range []struct{ name, body, param string }{
		{"no prompt", `{"n": 1}`, "prompt"},
		{"n too many", `{"prompt": "a", "n": 11}`, "n"},
		{"n zero", `{"prompt": "a", "n": 0}`, "n"},
		{"n string", `{"prompt": "a", "n": "2"}`, "n"},
		{"size malformed", `{"prompt": "a", "size": "big"}`, "size"},
		{"size odd", `{"prompt": "a", "size": "15x16"}`, "size"},
		{"size too large", `{"prompt": "a", "size": "4096x4096"}`, "size"},
		{"response_format", `{"prompt": "a", "response_format": "binary"}`, "response_format"},
		{"unknown model", `{"prompt": "a", "model": "midjourney"}`, "model"},
		{"output_format webp", `{"prompt": "a", "output_format": "webp"}`, "output_format"},
		{"not an object", `[1]`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, http.MethodPost, "/v1/images/generations", tc.body)
			checkOpenAIError(t, rec, http.StatusBadRequest, "invalid_request_error", tc.param)
		})
	}
}

func TestOpenAITimeout(t *testing.T) {
	e := newEnv(t, Config{SyncTimeout: 200 * time.Millisecond})
	rec := e.do(t, http.MethodPost, "/v1/images/generations", `{"prompt": "a"}`)
	d := checkOpenAIError(t, rec, http.StatusGatewayTimeout, "server_error", "")
	if id := rec.Header().Get("X-Pigment-Job-ID"); id == "" || !strings.Contains(d.Message, id) {
		t.Errorf("message %q does not name the job %q", d.Message, id)
	}
}

type openAITestError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// checkOpenAIError asserts an error in OpenAI's shape.
func checkOpenAIError(t *testing.T, rec *httptest.ResponseRecorder, status int, typ, param string) openAITestError {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	var d openAITestError
	if err := json.Unmarshal(body["error"], &d); err != nil {
		t.Fatal(err)
	}
	gotParam := ""
	if d.Param != nil {
		gotParam = *d.Param
	}
	if d.Type != typ || gotParam != param || d.Message == "" || d.Code == nil {
		t.Errorf("error %s, want type %q param %q", body["error"], typ, param)
	}
	if param == "" && !bytes.Contains(body["error"], []byte(`"param":null`)) {
		t.Errorf("param missing, want null: %s", body["error"])
	}
	return d
}
