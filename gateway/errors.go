package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/assets"
	"github.com/pigment-ai/pigment/broker"
)

// The kinds of API error. Each has one HTTP status and one error code
// (the table codes); an *Error wraps one of them with a message for the
// client and, for a bad request field, the field's name.
var (
	// ErrInvalid: the request is malformed or a field is out of range (400).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such job, image or route (404).
	ErrNotFound = errors.New("not found")
	// ErrMethodNotAllowed: the route exists with other methods (405).
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrConflict: the job is in a state that forbids the operation, such
	// as canceling a finished job (409).
	ErrConflict = errors.New("conflict")
	// ErrTooLarge: the body, the init image or the metadata exceed their
	// limit (413).
	ErrTooLarge = errors.New("too large")
	// ErrUnavailable: no worker serves a model yet, or NATS cannot be
	// reached (503). Retrying later may succeed.
	ErrUnavailable = errors.New("unavailable")
	// ErrTimeout: a synchronous generation did not finish in time (504).
	// The job goes on; its id is in the message.
	ErrTimeout = errors.New("timeout")
	// ErrFailed: the job of a synchronous generation failed (500); the
	// message is the job's error, which workers write for users.
	ErrFailed = errors.New("generation failed")
)

// codes maps error kinds to HTTP statuses and API codes; the first entry
// that errors.Is matches wins (pkgsite's derrors.ToStatus). Errors that
// match none are internal: 500, "Internal error.", the detail only logged.
var codes = []struct {
	err    error
	status int
	code   string
}{
	{ErrInvalid, http.StatusBadRequest, pigment.CodeInvalid},
	{ErrNotFound, http.StatusNotFound, pigment.CodeNotFound},
	{broker.ErrNotFound, http.StatusNotFound, pigment.CodeNotFound},
	{assets.ErrNotFound, http.StatusNotFound, pigment.CodeNotFound},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed, pigment.CodeInvalid},
	{ErrConflict, http.StatusConflict, pigment.CodeConflict},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, pigment.CodeTooLarge},
	{ErrUnavailable, http.StatusServiceUnavailable, pigment.CodeUnavailable},
	{ErrTimeout, http.StatusGatewayTimeout, "timeout"},
	{ErrFailed, http.StatusInternalServerError, "failed"},
}

// ToStatus returns the HTTP status and API code of err.
func ToStatus(err error) (status int, code string) {
	if err == nil {
		return http.StatusOK, ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.status, c.code
		}
	}
	return http.StatusInternalServerError, pigment.CodeInternal
}

// Error is an error to show to the client: its Kind (one of the Err
// variables above) chooses the status and code, Message says what is wrong
// in the client's terms and Field names the request field at fault, if
// any ("prompt", "output.width", "Idempotency-Key"). The message the
// client gets is Error(): the field, a colon, the message.
type Error struct {
	Kind    error
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Kind }

// errorf returns an *Error of kind about field.
func errorf(kind error, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

func invalidf(field, format string, args ...any) *Error {
	return errorf(ErrInvalid, field, format, args...)
}

// errorBody is the contract's error body {"error": {"code", "message", "field"}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// describe turns any error into what the client sees: status, code,
// message and field. Errors that are not the client's (no *Error, no known
// kind) read "Internal error."; infrastructure failures read as
// unavailable, which a client may retry.
func describe(err error) (status int, d errorDetail) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		// The router's 404 and 405, and anything else echo raises.
		switch he.Code {
		case http.StatusNotFound:
			err = errorf(ErrNotFound, "", "no such route")
		case http.StatusMethodNotAllowed:
			err = errorf(ErrMethodNotAllowed, "", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			err = errorf(ErrTooLarge, "", "request body too large")
		}
	}
	if unavailable(err) {
		err = errorf(ErrUnavailable, "", "the job queue (NATS JetStream) is unavailable; try again later")
	}
	status, d.Code = ToStatus(err)
	var e *Error
	switch {
	case d.Code == pigment.CodeInternal:
		d.Message = "Internal error."
	case errors.As(err, &e):
		d.Message, d.Field = e.Error(), e.Field // "steps: must be from 1 to 150, got 0"
	default:
		// A kind without an *Error (broker.ErrNotFound, assets.ErrNotFound).
		d.Message = err.Error()
		if errors.Is(err, broker.ErrNotFound) {
			d.Message = "no such job"
		} else if errors.Is(err, assets.ErrNotFound) {
			d.Message = "no such image"
		}
	}
	return status, d
}

// unavailable reports whether err is a failure to reach NATS or
// JetStream, as opposed to a bug.
func unavailable(err error) bool {
	for _, target := range []error{
		nats.ErrConnectionClosed, nats.ErrConnectionDraining, nats.ErrConnectionReconnecting,
		nats.ErrNoServers, nats.ErrTimeout, nats.ErrNoResponders, nats.ErrDisconnected,
		jetstream.ErrJetStreamNotEnabled, jetstream.ErrJetStreamNotEnabledForAccount,
		jetstream.ErrNoHeartbeat, context.DeadlineExceeded,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// handleError is the echo HTTPErrorHandler: it writes err as the
// contract's error body, or in OpenAI's shape on the OpenAI-compatible
// route, and logs what the client is not told.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		// A stream that already started (SSE) cannot carry an error.
		if _, code := ToStatus(err); code == pigment.CodeInternal && !errors.Is(err, context.Canceled) {
			s.log.Error("internal error after the response started", "path", c.Path(), "err", err)
		}
		return
	}
	status, d := describe(err)
	r := c.Request()
	switch {
	case status >= 500 && errors.Is(r.Context().Err(), context.Canceled):
		// The client went away; nobody reads the answer.
		s.log.Debug("request canceled", "method", r.Method, "path", r.URL.Path, "err", err)
	case d.Code == pigment.CodeInternal:
		s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500:
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if c.Path() == openAIImagesPath {
		err = c.JSON(status, openAIErrorBody(status, d))
	} else {
		err = c.JSON(status, errorBody{Error: d})
	}
	if err != nil {
		s.log.Debug("writing error response", "err", err)
	}
}
