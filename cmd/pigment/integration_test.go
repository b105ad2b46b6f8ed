package main

// Integration tests: a real NATS JetStream server and real pigment
// processes (gateway and workers started with os/exec), driven over HTTP.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pigment-ai/pigment"
	"github.com/pigment-ai/pigment/internal/natstest"
	"github.com/pigment-ai/pigment/internal/tinymodel"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// pigmentBin builds the pigment binary once per test run.
func pigmentBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pigment-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pigment")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// cluster is one NATS server, one gateway process and worker processes.
type cluster struct {
	t         *testing.T
	ns        *server.Server
	storeDir  string
	natsPort  int
	models    string
	base      string // gateway URL
	ackWait   string
	mu        sync.Mutex
	processes []*exec.Cmd
	exited    map[*exec.Cmd]chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newCluster(t *testing.T, workers int) *cluster {
	if testing.Short() {
		t.Skip("-short: integration test starts processes")
	}
	c := &cluster{t: t, storeDir: t.TempDir(), natsPort: freePort(t), models: t.TempDir(), ackWait: "3s", exited: map[*exec.Cmd]chan struct{}{}}
	if err := tinymodel.Write(filepath.Join(c.models, "tiny"), 1); err != nil {
		t.Fatal(err)
	}
	c.ns = natstest.Start(t, natstest.Options{StoreDir: c.storeDir, Port: c.natsPort})
	httpPort := freePort(t)
	c.base = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	c.start("gateway", "gateway", "--nats", c.natsURL(), "--addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--ack-wait", c.ackWait)
	first := c.startWorker()
	c.waitReady() // the worker has published its models
	if workers == 0 {
		c.stop(first)
	}
	for i := 1; i < workers; i++ {
		c.startWorker()
	}
	return c
}

// stop ends a process with SIGTERM (a graceful shutdown) and waits for it.
func (c *cluster) stop(cmd *exec.Cmd) {
	c.t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	c.mu.Lock()
	done := c.exited[cmd]
	c.mu.Unlock()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.t.Fatal("process did not stop within 30s of SIGTERM")
	}
}

func (c *cluster) natsURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", c.natsPort) }

func (c *cluster) startWorker() *exec.Cmd {
	return c.start("worker", "worker", "--nats", c.natsURL(), "--models-dir", c.models, "--ack-wait", c.ackWait)
}

// start runs pigment with args; its output is logged if the test fails.
func (c *cluster) start(name string, args ...string) *exec.Cmd {
	c.t.Helper()
	cmd := exec.Command(pigmentBin(c.t), args...)
	var out bytes.Buffer
	var outMu sync.Mutex
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			outMu.Lock()
			out.WriteString(s.Text() + "\n")
			outMu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.mu.Lock()
	c.processes = append(c.processes, cmd)
	c.exited[cmd] = done
	c.mu.Unlock()
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		pw.Close()
		if c.t.Failed() {
			outMu.Lock()
			c.t.Logf("--- %s output ---\n%s", name, out.String())
			outMu.Unlock()
		}
	})
	return cmd
}

func (c *cluster) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var models struct {
			Data []struct{ Name string } `json:"data"`
		}
		if code := c.getJSON("/v1/models", &models); code == 200 && len(models.Data) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("gateway and workers not ready after 60s")
}

func (c *cluster) getJSON(path string, v any) int {
	resp, err := http.Get(c.base + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

func (c *cluster) submit(body string, header ...string) (pigment.Job, int) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+"/v1/jobs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var j pigment.Job
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &j); err != nil || j.ID == "" {
		c.t.Fatalf("submit %s: %d %s", body, resp.StatusCode, b)
	}
	return j, resp.StatusCode
}

func (c *cluster) job(id string) pigment.Job {
	var j pigment.Job
	if code := c.getJSON("/v1/jobs/"+id, &j); code != 200 {
		c.t.Fatalf("GET job %s: %d", id, code)
	}
	return j
}

// waitFor polls job id until cond holds.
func (c *cluster) waitFor(id string, timeout time.Duration, cond func(pigment.Job) bool) pigment.Job {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var j pigment.Job
	for time.Now().Before(deadline) {
		j = c.job(id)
		if cond(j) {
			return j
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("job %s: condition not met after %s; last record %+v", id, timeout, j)
	return j
}

func terminal(j pigment.Job) bool { return j.Status.Terminal() }

// longJob is a job that runs for a few seconds on the tiny model.
const longJob = `{"prompt": "a red star", "width": 32, "height": 32, "steps": 100, "sampler": "euler", "seed": 5}`

func TestIntegrationSubmitPollFetch(t *testing.T) {
	c := newCluster(t, 1)
	j, code := c.submit(`{"prompt": "a red star on a blue background", "steps": 4, "n": 2, "seed": 42}`)
	if code != http.StatusAccepted || j.Status != pigment.StatusQueued {
		t.Fatalf("submit: %d %s", code, j.Status)
	}
	j = c.waitFor(j.ID, 60*time.Second, terminal)
	if j.Status != pigment.StatusSucceeded || len(j.Images) != 2 {
		t.Fatalf("job ended %s with %d images: %s", j.Status, len(j.Images), j.Error)
	}
	resp, err := http.Get(c.base + j.Images[1].URL + "?format=jpeg&w=32")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(b) < 100 {
		t.Fatalf("image: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
}

func TestIntegrationSSEOrder(t *testing.T) {
	c := newCluster(t, 1)
	j, _ := c.submit(`{"prompt": "a cat", "steps": 6, "sampler": "euler"}`)
	resp, err := http.Get(c.base + "/v1/jobs/" + j.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	s := bufio.NewScanner(resp.Body)
	var events []string
	lastStep := -1
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "event: ") {
			events = append(events, strings.TrimPrefix(line, "event: "))
		}
		if strings.HasPrefix(line, "data: ") && events[len(events)-1] == "progress" {
			var p struct{ Step int }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &p); err != nil {
				t.Fatal(err)
			}
			if p.Step < lastStep {
				t.Fatalf("progress went back from %d to %d", lastStep, p.Step)
			}
			lastStep = p.Step
		}
	}
	if len(events) < 2 || events[len(events)-1] != "status" || lastStep != 6 {
		t.Fatalf("events %v, last step %d", events, lastStep)
	}
}

func TestIntegrationCancelRunning(t *testing.T) {
	c := newCluster(t, 1)
	j, _ := c.submit(longJob)
	c.waitFor(j.ID, 60*time.Second, func(j pigment.Job) bool { return j.Status == pigment.StatusRunning && j.Progress.Step >= 2 })
	req, _ := http.NewRequest("DELETE", c.base+"/v1/jobs/"+j.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 202 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	j = c.waitFor(j.ID, 30*time.Second, terminal)
	if j.Status != pigment.StatusCanceled || j.Progress.Step >= j.Progress.Steps {
		t.Fatalf("job %s at step %d/%d", j.Status, j.Progress.Step, j.Progress.Steps)
	}
}

// TestIntegrationKillWorker kills a worker with SIGKILL mid-job; another
// worker must finish the job, exactly once.
func TestIntegrationKillWorker(t *testing.T) {
	c := newCluster(t, 1)
	victim := c.processes[len(c.processes)-1]
	j, _ := c.submit(longJob)
	c.waitFor(j.ID, 60*time.Second, func(j pigment.Job) bool { return j.Status == pigment.StatusRunning && j.Progress.Step >= 2 })
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.startWorker()
	j = c.waitFor(j.ID, 90*time.Second, terminal)
	if j.Status != pigment.StatusSucceeded || len(j.Images) != 1 || j.Attempts != 2 {
		t.Fatalf("job %s, %d images, %d attempts: %s", j.Status, len(j.Images), j.Attempts, j.Error)
	}
	// Exactly once: nothing left in the queue, the record stays succeeded.
	time.Sleep(2 * time.Second)
	if again := c.job(j.ID); again.Status != pigment.StatusSucceeded || !again.FinishedAt.Equal(*j.FinishedAt) {
		t.Fatalf("job changed after success: %+v", again)
	}
}

// TestIntegrationRestartNATS restarts the NATS server (file storage) with
// jobs queued: none is lost.
func TestIntegrationRestartNATS(t *testing.T) {
	c := newCluster(t, 0)
	var ids []string
	for i := 0; i < 5; i++ {
		j, _ := c.submit(fmt.Sprintf(`{"prompt": "job %d", "steps": 3, "seed": %d}`, i, i))
		ids = append(ids, j.ID)
	}
	c.ns.Shutdown()
	c.ns.WaitForShutdown()
	c.ns = natstest.Start(t, natstest.Options{StoreDir: c.storeDir, Port: c.natsPort})
	c.startWorker()
	for _, id := range ids {
		j := c.waitFor(id, 90*time.Second, terminal)
		if j.Status != pigment.StatusSucceeded {
			t.Fatalf("job %s: %s %s", id, j.Status, j.Error)
		}
	}
}

func TestIntegrationIdempotencyKey(t *testing.T) {
	c := newCluster(t, 0)
	a, codeA := c.submit(`{"prompt": "same"}`, "Idempotency-Key", "order-123")
	b, codeB := c.submit(`{"prompt": "same"}`, "Idempotency-Key", "order-123")
	if a.ID != b.ID || codeA != http.StatusAccepted || codeB != http.StatusOK {
		t.Fatalf("ids %s/%s, codes %d/%d", a.ID, b.ID, codeA, codeB)
	}
	other, _ := c.submit(`{"prompt": "same"}`, "Idempotency-Key", "order-124")
	if other.ID == a.ID {
		t.Fatal("a different key returned the same job")
	}
}

// TestServeDataDirLock: a second `pigment serve` on the same data folder
// must refuse to start, or the two would share one JetStream store and
// lose jobs.
func TestServeDataDirLock(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var firstErr bytes.Buffer
	go func() {
		var out bytes.Buffer
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--workers", "0", "--models-dir", t.TempDir()}, &out, &firstErr)
	}()
	// The first serve holds the lock once its JetStream store exists.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "jetstream")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first serve did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	var out, errb bytes.Buffer
	code := run(ctx2, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--workers", "0"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "--data-dir") || !strings.Contains(errb.String(), "in use") {
		t.Fatalf("second serve: exit %d, %q", code, errb.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("first serve exited %d: %s", code, firstErr.String())
	}
}
