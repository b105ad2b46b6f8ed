package assets

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// MemStore is a Store in memory, for tests. It copies the data and
// metadata it is given and returns copies, so callers may reuse their
// slices and maps. The zero value is ready to use.
type MemStore struct {
	mu     sync.Mutex
	images map[string]memImage
}

type memImage struct {
	data []byte
	meta map[string]string
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{} }

var _ Store = (*MemStore)(nil)

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, id string, png []byte, meta map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == "" {
		return ErrInvalidID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.images == nil {
		s.images = make(map[string]memImage)
	}
	s.images[id] = memImage{data: slices.Clone(png), meta: maps.Clone(meta)}
	return nil
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, id string) ([]byte, map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	im, ok := s.images[id]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return slices.Clone(im.data), maps.Clone(im.meta), nil
}

// Delete implements Store.
func (s *MemStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[id]; !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	delete(s.images, id)
	return nil
}

// IDs returns the ids of the stored images, sorted.
func (s *MemStore) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.images))
}
