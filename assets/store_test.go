package assets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pigment-ai/pigment/internal/natstest"
)

// newObjectStore returns an ObjectStore on a fresh bucket "images" of an
// embedded JetStream server, and the bucket's backing stream.
func newObjectStore(t *testing.T) (Store, jetstream.Stream) {
	t.Helper()
	nc := natstest.Connect(t, natstest.Start(t, natstest.Options{}))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	os, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "images"})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "OBJ_images")
	if err != nil {
		t.Fatal(err)
	}
	return NewObjectStore(os), stream
}

// stores are the Store implementations every conformance test runs on.
var stores = []struct {
	name string
	new  func(t *testing.T) Store
}{
	{"mem", func(*testing.T) Store { return NewMemStore() }},
	{"objectstore", func(t *testing.T) Store { s, _ := newObjectStore(t); return s }},
}

// pngBytes returns a small PNG (w×h, a gradient) with a parameters chunk.
func pngBytes(t testing.TB, w, h int, params string) []byte {
	t.Helper()
	return encode(t, gradient(w, h), map[string]string{"parameters": params})
}

func TestStore(t *testing.T) {
	a := pngBytes(t, 8, 4, "a cat")
	b := pngBytes(t, 4, 8, "a dog")
	big := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16) // 300 KiB: several object chunks

	type op struct {
		do       string // put | get | delete
		id       string
		data     []byte
		meta     map[string]string
		wantErr  error // errors.Is
		wantData []byte
		wantMeta map[string]string
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"put_get", []op{
			{do: "put", id: "job1-0", data: a, meta: map[string]string{"seed": "42", "job": "job1"}},
			{do: "get", id: "job1-0", wantData: a, wantMeta: map[string]string{"seed": "42", "job": "job1"}},
		}},
		{"no_meta", []op{
			{do: "put", id: "x", data: a},
			{do: "get", id: "x", wantData: a},
		}},
		{"large", []op{
			{do: "put", id: "big", data: big},
			{do: "get", id: "big", wantData: big},
		}},
		{"put_twice_same", []op{
			{do: "put", id: "job1-0", data: a, meta: map[string]string{"seed": "1"}},
			{do: "put", id: "job1-0", data: a, meta: map[string]string{"seed": "1"}},
			{do: "get", id: "job1-0", wantData: a, wantMeta: map[string]string{"seed": "1"}},
		}},
		{"overwrite_data", []op{
			{do: "put", id: "job1-0", data: a, meta: map[string]string{"seed": "1"}},
			{do: "put", id: "job1-0", data: b, meta: map[string]string{"seed": "1"}},
			{do: "get", id: "job1-0", wantData: b, wantMeta: map[string]string{"seed": "1"}},
		}},
		{"overwrite_meta", []op{
			{do: "put", id: "job1-0", data: a, meta: map[string]string{"seed": "1"}},
			{do: "put", id: "job1-0", data: a, meta: map[string]string{"seed": "2"}},
			{do: "get", id: "job1-0", wantData: a, wantMeta: map[string]string{"seed": "2"}},
		}},
		{"overwrite_large_with_small", []op{
			{do: "put", id: "v", data: big},
			{do: "put", id: "v", data: a},
			{do: "get", id: "v", wantData: a},
		}},
		{"ids_independent", []op{
			{do: "put", id: "j-0", data: a},
			{do: "put", id: "j-1", data: b},
			{do: "get", id: "j-0", wantData: a},
			{do: "get", id: "j-1", wantData: b},
		}},
		{"get_not_found", []op{
			{do: "get", id: "nope", wantErr: ErrNotFound},
		}},
		{"delete", []op{
			{do: "put", id: "d", data: a, meta: map[string]string{"k": "v"}},
			{do: "delete", id: "d"},
			{do: "get", id: "d", wantErr: ErrNotFound},
			{do: "delete", id: "d", wantErr: ErrNotFound},
		}},
		{"delete_not_found", []op{
			{do: "delete", id: "nope", wantErr: ErrNotFound},
		}},
		{"put_after_delete", []op{
			{do: "put", id: "d", data: a},
			{do: "delete", id: "d"},
			{do: "put", id: "d", data: b},
			{do: "get", id: "d", wantData: b},
		}},
		{"empty_id", []op{
			{do: "put", id: "", data: a, wantErr: ErrInvalidID},
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t) // one server per implementation; cases use their own ids
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx := t.Context()
					prefix := tt.name + "."
					for i, o := range tt.ops {
						id := o.id
						if id != "" {
							id = prefix + id
						}
						var (
							err  error
							data []byte
							meta map[string]string
						)
						switch o.do {
						case "put":
							err = s.Put(ctx, id, o.data, o.meta)
						case "get":
							data, meta, err = s.Get(ctx, id)
						case "delete":
							err = s.Delete(ctx, id)
						}
						where := fmt.Sprintf("op %d (%s %q)", i, o.do, id)
						if o.wantErr != nil {
							if !errors.Is(err, o.wantErr) {
								t.Fatalf("%s: err = %v, want %v", where, err, o.wantErr)
							}
							continue
						}
						if err != nil {
							t.Fatalf("%s: %v", where, err)
						}
						if o.do != "get" {
							continue
						}
						if !bytes.Equal(data, o.wantData) {
							t.Errorf("%s: got %d bytes, want %d bytes (%q…)", where, len(data), len(o.wantData), head(data))
						}
						if !maps.Equal(meta, o.wantMeta) {
							t.Errorf("%s: meta = %v, want %v", where, meta, o.wantMeta)
						}
					}
				})
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// TestStoreCopies checks that a Store does not share the caller's slices
// and maps.
func TestStoreCopies(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			s := st.new(t)
			data := pngBytes(t, 4, 4, "p")
			want := bytes.Clone(data)
			meta := map[string]string{"k": "v"}
			if err := s.Put(ctx, "c", data, meta); err != nil {
				t.Fatal(err)
			}
			data[20] ^= 0xFF
			meta["k"] = "changed"
			got, gotMeta, err := s.Get(ctx, "c")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || gotMeta["k"] != "v" {
				t.Fatalf("stored image changed with the caller's slice or map: meta %v", gotMeta)
			}
			got[0], gotMeta["k"] = 0, "x"
			again, againMeta, _ := s.Get(ctx, "c")
			if !bytes.Equal(again, want) || againMeta["k"] != "v" {
				t.Fatal("stored image changed with a returned slice or map")
			}
		})
	}
}

// TestStoreConcurrent runs puts and gets from several goroutines (run it
// with -race).
func TestStoreConcurrent(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			s := st.new(t)
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 4 {
				wg.Go(func() {
					for i := range 4 {
						id := fmt.Sprintf("job%d-%d", g, i)
						data := pngBytes(t, 4+g, 4+i, id)
						if err := s.Put(ctx, id, data, map[string]string{"id": id}); err != nil {
							errs <- err
							return
						}
						got, meta, err := s.Get(ctx, id)
						if err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(got, data) || meta["id"] != id {
							errs <- fmt.Errorf("%s: read back something else", id)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestObjectStoreRedelivery checks what a redelivered job relies on: storing
// the same images again leaves one object per id and no extra messages,
// and overwriting one leaves only the new chunks.
func TestObjectStoreRedelivery(t *testing.T) {
	ctx := t.Context()
	s, stream := newObjectStore(t)
	msgs := func() uint64 {
		t.Helper()
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	big := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 40<<10) // 320 KiB: 3 chunks of 128 KiB
	small := pngBytes(t, 8, 8, "x")
	meta := map[string]string{"seed": "7"}

	for range 3 {
		if err := s.Put(ctx, "job-0", big, meta); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := msgs(), uint64(3+1); got != want {
		t.Errorf("after 3 identical puts: %d messages in the bucket, want %d (3 chunks + 1 meta)", got, want)
	}
	if err := s.Put(ctx, "job-0", small, meta); err != nil {
		t.Fatal(err)
	}
	if got, want := msgs(), uint64(1+1); got != want {
		t.Errorf("after overwrite: %d messages, want %d (1 chunk + 1 meta)", got, want)
	}

	os := s.(*ObjectStore).os
	lister, err := os.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lister) != 1 || lister[0].Name != "job-0" {
		t.Errorf("objects = %v, want just job-0", lister)
	}
	info, err := os.GetInfo(ctx, "job-0")
	if err != nil {
		t.Fatal(err)
	}
	if ct := info.Headers.Get("Content-Type"); ct != "image/png" {
		t.Errorf("Content-Type header = %q, want image/png", ct)
	}
	if info.Metadata["seed"] != "7" {
		t.Errorf("metadata = %v", info.Metadata)
	}
}

// TestObjectStoreContext checks that a canceled context fails a call
// rather than hanging.
func TestObjectStoreContext(t *testing.T) {
	s, _ := newObjectStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	done := make(chan error, 1)
	go func() { _, _, err := s.Get(ctx, "x"); done <- err }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("Get with a canceled context: err = %v, want the context's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get with a canceled context hung")
	}
}
