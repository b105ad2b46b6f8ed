// Package assets keeps Pigment's result images and serves them
// post-processed.
//
// A worker stores each result PNG (with its generation parameters in a
// `parameters` text chunk) under its image id (broker.ImageID) in a Store;
// the gateway reads it back for GET /v1/images/{id} and runs it through
// Process with the Options parsed from the query (format, quality, w, h,
// fit; DESIGN.md, contract):
//
//	worker  ──Put(id, png, meta)──▶ Store (JetStream object store "images")
//	gateway ◀──Get(id)── Store ──Process(png, ParseOptions(query))──▶ PNG or JPEG
//
// NewObjectStore is the JetStream implementation; NewMemStore is an
// in-memory one for the unit tests of other packages.
package assets

import (
	"context"
	"errors"
)

// Store holds images by id. Implementations are safe for concurrent use.
type Store interface {
	// Put stores png under id with the metadata meta (may be nil),
	// replacing any image already stored under id. Repeating a Put with
	// the same id and data (a redelivered job storing its images again)
	// leaves one copy.
	Put(ctx context.Context, id string, png []byte, meta map[string]string) error
	// Get returns the image stored under id and its metadata (nil when it
	// has none). An unknown id fails with an error matching ErrNotFound.
	Get(ctx context.Context, id string) ([]byte, map[string]string, error)
	// Delete removes the image stored under id. An unknown id fails with an
	// error matching ErrNotFound.
	Delete(ctx context.Context, id string) error
}

// ErrNotFound: no image is stored under the id. Match it with errors.Is.
var ErrNotFound = errors.New("assets: image not found")

// ErrInvalidID: the id is empty.
var ErrInvalidID = errors.New("assets: empty image id")
