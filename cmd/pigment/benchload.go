package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pigment-ai/pigment"
)

// loadResult is what `pigment bench load` reports.
type loadResult struct {
	Jobs             int     `json:"jobs"`
	SubmitPerSecond  float64 `json:"submit_jobs_per_second"`
	QueueWaitP50Ms   float64 `json:"queue_wait_p50_ms"` // burst: created → started
	QueueWaitP99Ms   float64 `json:"queue_wait_p99_ms"`
	EndToEndPerSec   float64 `json:"end_to_end_jobs_per_second"` // first created → last finished
	OverheadP50Ms    float64 `json:"overhead_p50_ms"`            // one job at a time: created → started
	OverheadP99Ms    float64 `json:"overhead_p99_ms"`
	RunP50Ms         float64 `json:"run_p50_ms"` // started → finished
	Failed           int     `json:"failed"`
	SerialJobsProbed int     `json:"serial_jobs"`
}

// benchLoad submits jobs to a running gateway: first a burst of n jobs from
// concurrency clients (submit throughput, queue wait, end-to-end
// throughput), then serial jobs one at a time (the queue's own overhead per
// job: submit-to-start latency with idle workers).
func benchLoad(ctx context.Context, base, body string, n, concurrency, serial int, log io.Writer) (loadResult, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	submit := func() (string, error) {
		resp, err := client.Post(base+"/v1/jobs", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var j pigment.Job
		if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusAccepted {
			return "", fmt.Errorf("POST /v1/jobs: %d %v", resp.StatusCode, err)
		}
		return j.ID, nil
	}
	get := func(id string) (pigment.Job, error) {
		resp, err := client.Get(base + "/v1/jobs/" + id)
		if err != nil {
			return pigment.Job{}, err
		}
		defer resp.Body.Close()
		var j pigment.Job
		return j, json.NewDecoder(resp.Body).Decode(&j)
	}
	waitAll := func(ids []string) ([]pigment.Job, error) {
		jobs := make([]pigment.Job, len(ids))
		for i, id := range ids {
			for {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				j, err := get(id)
				if err != nil {
					return nil, err
				}
				if j.Status.Terminal() {
					jobs[i] = j
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return jobs, nil
	}

	// Burst.
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				id, err := submit()
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return loadResult{}, firstErr
	}
	submitDur := time.Since(start)
	fmt.Fprintf(log, "submitted %d jobs in %.2fs\n", n, submitDur.Seconds())
	jobs, err := waitAll(ids)
	if err != nil {
		return loadResult{}, err
	}
	res := loadResult{Jobs: n, SubmitPerSecond: float64(n) / submitDur.Seconds(), SerialJobsProbed: serial}
	var waits, runs []float64
	first, last := jobs[0].CreatedAt, time.Time{}
	for _, j := range jobs {
		if j.Status != pigment.StatusSucceeded || j.StartedAt == nil || j.FinishedAt == nil {
			res.Failed++
			continue
		}
		waits = append(waits, ms(j.StartedAt.Sub(j.CreatedAt)))
		runs = append(runs, ms(j.FinishedAt.Sub(*j.StartedAt)))
		if j.CreatedAt.Before(first) {
			first = j.CreatedAt
		}
		if j.FinishedAt.After(last) {
			last = *j.FinishedAt
		}
	}
	res.QueueWaitP50Ms, res.QueueWaitP99Ms = percentile(waits, 50), percentile(waits, 99)
	res.RunP50Ms = percentile(runs, 50)
	res.EndToEndPerSec = float64(n-res.Failed) / last.Sub(first).Seconds()
	fmt.Fprintf(log, "burst finished: %.1f jobs/s end to end\n", res.EndToEndPerSec)

	// Serial: one job at a time, so workers are idle when it arrives.
	var overheads []float64
	for i := 0; i < serial; i++ {
		id, err := submit()
		if err != nil {
			return res, err
		}
		js, err := waitAll([]string{id})
		if err != nil {
			return res, err
		}
		if j := js[0]; j.StartedAt != nil {
			overheads = append(overheads, ms(j.StartedAt.Sub(j.CreatedAt)))
		}
	}
	res.OverheadP50Ms, res.OverheadP99Ms = percentile(overheads, 50), percentile(overheads, 99)
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the p-th percentile (nearest rank) of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
