package assets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ObjectStore is a Store on a JetStream object store (broker.Broker's
// Images, the bucket "images"). Each image is one object named by its id,
// with a Content-Type header sniffed from the data ("image/png" for a
// PNG) and the metadata as the object's metadata.
type ObjectStore struct {
	os jetstream.ObjectStore
}

// NewObjectStore returns a Store on os.
func NewObjectStore(os jetstream.ObjectStore) Store { return &ObjectStore{os: os} }

var _ Store = (*ObjectStore)(nil)

// Put implements Store. The object store keeps one object per name: a Put
// replaces the object's data (its old chunks are purged) and metadata. A
// Put of exactly what is already stored (same data, content type and
// metadata) writes nothing, so a redelivered job storing its images again
// costs one lookup per image.
func (s *ObjectStore) Put(ctx context.Context, id string, png []byte, meta map[string]string) error {
	if id == "" {
		return ErrInvalidID
	}
	contentType := http.DetectContentType(png)
	if info, err := s.os.GetInfo(ctx, id); err == nil {
		h := sha256.New()
		h.Write(png)
		if info.Digest == jetstream.GetObjectDigestValue(h) &&
			info.Size == uint64(len(png)) &&
			info.Headers.Get("Content-Type") == contentType &&
			maps.Equal(info.Metadata, meta) { // nil and empty are equal
			return nil
		}
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("assets: put %q: %w", id, err)
	}
	obj := jetstream.ObjectMeta{
		Name:     id,
		Headers:  nats.Header{"Content-Type": []string{contentType}},
		Metadata: maps.Clone(meta),
	}
	if _, err := s.os.Put(ctx, obj, bytes.NewReader(png)); err != nil {
		return fmt.Errorf("assets: put %q: %w", id, err)
	}
	return nil
}

// Get implements Store.
func (s *ObjectStore) Get(ctx context.Context, id string) ([]byte, map[string]string, error) {
	res, err := s.os.Get(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("assets: get %q: %w", id, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, nil, fmt.Errorf("assets: get %q: %w", id, err)
	}
	// The reader checks the object's SHA-256 digest at the end.
	data, err := io.ReadAll(res)
	if err != nil {
		return nil, nil, fmt.Errorf("assets: get %q: %w", id, err)
	}
	var meta map[string]string
	if len(info.Metadata) > 0 {
		meta = info.Metadata
	}
	return data, meta, nil
}

// Delete implements Store. The object's chunks are purged.
func (s *ObjectStore) Delete(ctx context.Context, id string) error {
	// The object store's Delete succeeds on an already deleted object;
	// look first so that Delete answers ErrNotFound as MemStore does.
	if _, err := s.os.GetInfo(ctx, id); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		return fmt.Errorf("assets: delete %q: %w", id, err)
	}
	if err := s.os.Delete(ctx, id); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		return fmt.Errorf("assets: delete %q: %w", id, err)
	}
	return nil
}
