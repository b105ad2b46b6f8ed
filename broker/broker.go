// Package broker is Pigment's NATS JetStream layout and the operations the
// gateway and the workers share on it:
//
//	stream   JOBS        subjects jobs.high, jobs.normal, jobs.low (work queue, file storage)
//	consumer workers-<p> one durable pull consumer per priority, explicit acks
//	KV       jobs        job records (pigment.Job) by job id, updated by compare-and-set
//	KV       models      models the workers serve (pigment.ModelInfo) by name
//	KV       idempotency Idempotency-Key hash → job id, for the dedup window
//	objects  images      result PNGs by image id, and init images of img2img jobs
//
// NATS is the distributed engine: any number of gateways and workers on any
// machines share one cluster, and nothing here is a queue of our own.
package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pigment-ai/pigment"
)

// Names of the JetStream resources.
const (
	StreamName        = "JOBS"
	JobsBucket        = "jobs"
	ModelsBucket      = "models"
	IdempotencyBucket = "idempotency"
	ImagesBucket      = "images"
)

// Subject returns the JOBS subject of a priority ("jobs.normal").
func Subject(priority string) string { return "jobs." + priority }

// ConsumerName returns the durable consumer of a priority.
func ConsumerName(priority string) string { return "workers-" + priority }

// ProgressSubject is the core NATS subject progress events of a job are
// published on as they happen.
func ProgressSubject(jobID string) string { return "progress." + jobID }

// Config sizes the JetStream resources. Zero values take the defaults.
type Config struct {
	Replicas    int                   // 1 (embedded) or 3 (cluster)
	Storage     jetstream.StorageType // FileStorage by default
	AckWait     time.Duration         // redelivery delay of an unacked job (30s)
	DedupWindow time.Duration         // how long an Idempotency-Key is remembered (24h)
	JobTTL      time.Duration         // how long job records are kept (7 days; 0 = default)
}

func (c *Config) defaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = 24 * time.Hour
	}
	if c.JobTTL == 0 {
		c.JobTTL = 7 * 24 * time.Hour
	}
}

// Broker is a connection to Pigment's JetStream resources.
type Broker struct {
	NC          *nats.Conn
	JS          jetstream.JetStream
	Stream      jetstream.Stream
	Jobs        jetstream.KeyValue
	Models      jetstream.KeyValue
	Idempotency jetstream.KeyValue
	Images      jetstream.ObjectStore
	Config      Config
}

// Open creates (or updates to this configuration) the stream, consumers,
// buckets and object store, and returns a Broker using nc. It is safe to
// call from every process at start-up.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Broker, error) {
	cfg.defaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	b := &Broker{NC: nc, JS: js, Config: cfg}
	subjects := make([]string, len(pigment.Priorities))
	for i, p := range pigment.Priorities {
		subjects[i] = Subject(p)
	}
	b.Stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Pigment generation jobs",
		Subjects:    subjects,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	for _, p := range pigment.Priorities {
		_, err := b.Stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       ConsumerName(p),
			FilterSubject: Subject(p),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    -1, // workers count attempts themselves (max_attempts)
			MaxAckPending: 10000,
			Replicas:      cfg.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", ConsumerName(p), err)
		}
	}
	kv := func(name, desc string, ttl time.Duration) (jetstream.KeyValue, error) {
		s, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: desc, TTL: ttl, Storage: cfg.Storage, Replicas: cfg.Replicas, History: 1,
		})
		if err != nil {
			return nil, fmt.Errorf("kv %s: %w", name, err)
		}
		return s, nil
	}
	if b.Jobs, err = kv(JobsBucket, "Pigment job records", cfg.JobTTL); err != nil {
		return nil, err
	}
	if b.Models, err = kv(ModelsBucket, "models served by workers", 0); err != nil {
		return nil, err
	}
	if b.Idempotency, err = kv(IdempotencyBucket, "Idempotency-Key → job id", cfg.DedupWindow); err != nil {
		return nil, err
	}
	b.Images, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: ImagesBucket, Description: "Pigment images", Storage: cfg.Storage, Replicas: cfg.Replicas, TTL: cfg.JobTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", ImagesBucket, err)
	}
	return b, nil
}

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("job not found")

// Submit stores job (status queued) and publishes it on its priority's
// subject. With a non-empty idempotencyKey, a key seen within the dedup
// window returns the job first submitted with it and created=false,
// publishing nothing.
func (b *Broker) Submit(ctx context.Context, job *pigment.Job, priority, idempotencyKey string) (_ *pigment.Job, created bool, err error) {
	if idempotencyKey != "" {
		sum := sha256.Sum256([]byte(idempotencyKey))
		key := hex.EncodeToString(sum[:])
		if _, err := b.Idempotency.Create(ctx, key, []byte(job.ID)); err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return nil, false, err
			}
			e, err := b.Idempotency.Get(ctx, key)
			if err != nil {
				return nil, false, err
			}
			first, _, err := b.GetJob(ctx, string(e.Value()))
			if err != nil {
				return nil, false, err
			}
			return first, false, nil
		}
	}
	data, err := json.Marshal(job)
	if err != nil {
		return nil, false, err
	}
	if _, err := b.Jobs.Create(ctx, job.ID, data); err != nil {
		return nil, false, fmt.Errorf("store job record: %w", err)
	}
	msg := &nats.Msg{Subject: Subject(priority), Data: []byte(job.ID), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, job.ID)
	if _, err := b.JS.PublishMsg(ctx, msg); err != nil {
		// The record exists but nothing will run it: say so in the record.
		_, _ = b.UpdateJob(context.WithoutCancel(ctx), job.ID, func(j *pigment.Job) error {
			j.Status, j.Error = pigment.StatusFailed, "could not be queued: "+err.Error()
			return nil
		})
		return nil, false, fmt.Errorf("publish job: %w", err)
	}
	return job, true, nil
}

// GetJob returns the record of job id and its KV revision.
func (b *Broker) GetJob(ctx context.Context, id string) (*pigment.Job, uint64, error) {
	e, err := b.Jobs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	var j pigment.Job
	if err := json.Unmarshal(e.Value(), &j); err != nil {
		return nil, 0, fmt.Errorf("job %s: corrupt record: %w", id, err)
	}
	return &j, e.Revision(), nil
}

// ErrNoChange may be returned by an UpdateJob function to leave the record
// as it is; UpdateJob then returns the current record and no error.
var ErrNoChange = errors.New("no change")

// UpdateJob applies fn to the current record of job id and stores the
// result with compare-and-set on the KV revision, retrying when another
// process wrote in between, so concurrent updates (progress from a worker,
// cancel from a gateway) never overwrite each other.
func (b *Broker) UpdateJob(ctx context.Context, id string, fn func(*pigment.Job) error) (*pigment.Job, error) {
	for attempt := 0; ; attempt++ {
		j, rev, err := b.GetJob(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(j); err != nil {
			if errors.Is(err, ErrNoChange) {
				return j, nil
			}
			return nil, err
		}
		data, err := json.Marshal(j)
		if err != nil {
			return nil, err
		}
		_, err = b.Jobs.Update(ctx, id, data, rev)
		if err == nil {
			return j, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) || attempt >= 100 {
			return nil, fmt.Errorf("update job %s: %w", id, err)
		}
	}
}

// WatchJob sends the record of job id on the returned channel now and after
// every change, until ctx is done or the job reaches a terminal status
// (which is sent, then the channel closes).
func (b *Broker) WatchJob(ctx context.Context, id string) (<-chan *pigment.Job, error) {
	w, err := b.Jobs.Watch(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make(chan *pigment.Job, 16)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue // nil marks the end of the initial values
				}
				var j pigment.Job
				if json.Unmarshal(e.Value(), &j) != nil {
					continue
				}
				select {
				case out <- &j:
				case <-ctx.Done():
					return
				}
				if j.Status.Terminal() {
					return
				}
			}
		}
	}()
	return out, nil
}

// QueueDepth returns the number of jobs waiting per priority (messages not
// yet delivered to any worker).
func (b *Broker) QueueDepth(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, p := range pigment.Priorities {
		c, err := b.Stream.Consumer(ctx, ConsumerName(p))
		if err != nil {
			return nil, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil, err
		}
		out[p] = info.NumPending
	}
	return out, nil
}

// PublishModel records that a worker serves m.
func (b *Broker) PublishModel(ctx context.Context, m pigment.ModelInfo) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = b.Models.Put(ctx, m.Name, data)
	return err
}

// ListModels returns every model some worker has published, by name.
func (b *Broker) ListModels(ctx context.Context) (map[string]pigment.ModelInfo, error) {
	out := map[string]pigment.ModelInfo{}
	lister, err := b.Models.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	for k := range lister.Keys() {
		e, err := b.Models.Get(ctx, k)
		if err != nil {
			continue
		}
		var m pigment.ModelInfo
		if json.Unmarshal(e.Value(), &m) == nil {
			out[k] = m
		}
	}
	return out, nil
}

// ImageID names image i of job jobID in the object store.
func ImageID(jobID string, i int) string { return fmt.Sprintf("%s-%d", jobID, i) }

// InitImageName names the stored init image of an img2img job.
func InitImageName(jobID string) string { return jobID + "-init" }
