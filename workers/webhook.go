package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/pigment-ai/pigment"
)

// Webhook delivery: after a job succeeds or fails, its record is POSTed as
// JSON to the request's webhook_url, with up to webhookRetries retries
// (backoff doubling from webhookBackoff) on network errors, 429 and 5xx.
// A failed delivery is logged; it never changes the job.
const (
	webhookRetries = 3
	webhookBackoff = time.Second
)

// notify delivers job's webhook, if it has one, in the background.
func (w *Worker) notify(job *pigment.Job) {
	url := job.Request.WebhookURL
	if url == "" {
		return
	}
	body, err := json.Marshal(job)
	if err != nil {
		w.log.Error("webhook body", "job", job.ID, "err", err)
		return
	}
	w.hooks.Go(func() { w.deliver(url, job.ID, body) })
}

func (w *Worker) deliver(url, id string, body []byte) {
	delay := w.webhookBackoff()
	var err error
	for try := 0; try <= webhookRetries; try++ {
		if try > 0 {
			time.Sleep(delay)
			delay *= 2
		}
		var retry bool
		retry, err = w.post(url, id, body)
		if err == nil {
			return
		}
		if !retry {
			break
		}
	}
	w.log.Warn("webhook not delivered", "job", id, "url", url, "err", err)
}

func (w *Worker) webhookBackoff() time.Duration {
	if w.testWebhookBackoff > 0 {
		return w.testWebhookBackoff
	}
	return webhookBackoff
}

// post makes one delivery; retry says whether another try may succeed.
func (w *Worker) post(url, id string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pigment-worker")
	req.Header.Set("X-Pigment-Job-ID", id)
	resp, err := w.cfg.HTTPClient.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return false, fmt.Errorf("webhook answered %s", resp.Status)
}

// waitWebhooks waits up to d for deliveries in flight.
func (w *Worker) waitWebhooks(d time.Duration) {
	done := make(chan struct{})
	go func() {
		w.hooks.Wait()
		close(done)
	}()
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Warn("webhook deliveries still in flight at shutdown")
	}
}

// webhookClient returns the default webhook client. Unless allowPrivate,
// its dialer refuses every address that is not a public unicast one, so a
// client's webhook_url cannot make workers call services on their own
// network (cloud metadata endpoints, localhost admin ports).
func webhookClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: webhookTimeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return err
			}
			if !publicAddr(ip.Unmap()) {
				return fmt.Errorf("webhook address %s is not public", ip)
			}
			return nil
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	return &http.Client{Timeout: webhookTimeout, Transport: t}
}

// publicAddr reports whether ip is a public unicast address.
func publicAddr(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) && // carrier-grade NAT
		!netip.MustParsePrefix("fc00::/7").Contains(ip)
}
