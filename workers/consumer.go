package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/broker"
)

// consumers returns the durable consumers of the priorities, highest
// first (pigment.Priorities order).
func (w *Worker) consumers(ctx context.Context) ([]jetstream.Consumer, error) {
	cons := make([]jetstream.Consumer, len(pigment.Priorities))
	for i, p := range pigment.Priorities {
		c, err := w.b.Stream.Consumer(ctx, broker.ConsumerName(p))
		if err != nil {
			return nil, fmt.Errorf("workers: consumer %s: %w", broker.ConsumerName(p), err)
		}
		cons[i] = c
	}
	return cons, nil
}

// next returns the next job message, or nil when none came within about
// PollWait.
//
// It asks each queue in priority order for a message that is already
// waiting (FetchNoWait), so a queued high-priority job always goes before
// normal and low ones. When all are empty it waits for a wake-up: a plain
// NATS subscription on jobs.* (see wakeups) sees every job the moment it is
// published, so an idle worker starts a new job with no polling delay. The
// wait also ends after PollWait, so redelivered jobs (an expired ack wait
// publishes nothing) are picked up within PollWait. JetStream has no pull
// request spanning consumers, and waiting on all three with blocking pulls
// could deliver three jobs to a worker that can run one, the extra ones
// sitting unacked while it is busy; a busy worker fetches nothing and
// never holds more than the one message it is running.
func (w *Worker) next(ctx context.Context, cons []jetstream.Consumer, wake <-chan struct{}) (jetstream.Msg, error) {
	for _, c := range cons {
		msg, err := fetchOne(c, 0)
		if msg != nil || err != nil {
			return msg, err
		}
		if ctx.Err() != nil {
			return nil, nil
		}
	}
	t := time.NewTimer(w.cfg.PollWait)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, nil
}

// wakeups subscribes to every JOBS subject with a core NATS subscription
// (published jobs reach core subscribers as well as the stream) and signals
// the returned channel, coalescing bursts, whenever one is published.
func (w *Worker) wakeups() (<-chan struct{}, func(), error) {
	wake := make(chan struct{}, 1)
	sub, err := w.b.NC.Subscribe("jobs.*", func(*nats.Msg) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("workers: subscribe jobs.*: %w", err)
	}
	return wake, func() { _ = sub.Unsubscribe() }, nil
}

// fetchOne pulls at most one message from c: one already waiting when
// wait is 0, else the first within wait.
func fetchOne(c jetstream.Consumer, wait time.Duration) (jetstream.Msg, error) {
	var batch jetstream.MessageBatch
	var err error
	if wait <= 0 {
		batch, err = c.FetchNoWait(1)
	} else {
		batch, err = c.Fetch(1, jetstream.FetchMaxWait(wait))
	}
	if err != nil {
		return nil, err
	}
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	if msg != nil {
		return msg, nil
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, err
	}
	return nil, nil
}
