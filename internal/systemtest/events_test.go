package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

type sseEvent struct {
	ID, Name, Data string
}

// sse opens a job's event stream and returns its status code and a channel of events,
// closed when the stream ends.
func (b *bundle) sse(ctx context.Context, path string, headers ...string) (int, <-chan sseEvent) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", b.apiURL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	out := make(chan sseEvent, 1024)
	if resp.StatusCode != 200 {
		resp.Body.Close()
		close(out)
		return resp.StatusCode, out
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		b.t.Fatalf("content type %q", ct)
	}
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.Name != "" || e.Data != "" {
					out <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				e.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				e.Data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return 200, out
}

func (b *bundle) streamToken(token, id string) string {
	b.t.Helper()
	r := b.do("POST", "/api/cover-letter/"+id+"/stream-token", token, nil)
	if r.Status != 200 {
		b.t.Fatalf("stream-token = %d %s", r.Status, r.Body)
	}
	var out struct{ Token string }
	r.json(b.t, &out)
	return out.Token
}

// TestEventStreamShowsTheLetterBeingWritten: status, then the letter in pieces as the LLM
// streams it, then completed with the stored letter; the stream ends after it.
func TestEventStreamShowsTheLetterBeingWritten(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	token := b.user("a@example.com")
	id := b.submit(token, "Writer at Daily Planet [[fakeopenai:latency=1500ms]]", "Reporter, Smallville Gazette", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, events := b.sse(ctx, "/api/cover-letter/"+id+"/events?token="+b.streamToken(token, id))
	if status != 200 {
		t.Fatalf("events = %d", status)
	}
	var (
		names  []string
		pieces strings.Builder
		final  job.View
	)
	for e := range events {
		names = append(names, e.Name)
		switch e.Name {
		case "delta":
			var d struct{ Text string }
			_ = json.Unmarshal([]byte(e.Data), &d)
			pieces.WriteString(d.Text)
		case "completed":
			if err := json.Unmarshal([]byte(e.Data), &final); err != nil || e.ID != "final" {
				t.Fatalf("completed event %+v", e)
			}
		}
	}
	deltas := strings.Count(strings.Join(names, ","), "delta")
	if names[0] != "status" || names[len(names)-1] != "completed" || deltas < 2 {
		t.Fatalf("events %v: want status first, ≥2 deltas, completed last", names)
	}
	j := b.waitFinal(id, 5*time.Second)
	if final.CoverLetter != j.CoverLetter || strings.TrimSpace(pieces.String()) != j.CoverLetter {
		t.Fatalf("the deltas and the final event do not add up to the stored letter")
	}
}

// TestEventStreamAfterTheEnd: a client that connects after completion gets the final event at
// once; one that comes back with Last-Event-ID: final gets 204 (EventSource stops).
func TestEventStreamAfterTheEnd(t *testing.T) {
	t.Parallel()
	b, token, id, _ := oneJob(t, "Role at Acme", "CV")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, events := b.sse(ctx, "/api/cover-letter/"+id+"/events", "Authorization", "Bearer "+token) // a user token works too
	var names []string
	for e := range events {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "completed" || time.Since(start) > 2*time.Second {
		t.Fatalf("after completion: events %v in %s", names, time.Since(start))
	}
	if status, _ := b.sse(ctx, "/api/cover-letter/"+id+"/events", "Authorization", "Bearer "+token, "Last-Event-ID", "final"); status != http.StatusNoContent {
		t.Fatalf("resume after final = %d, want 204", status)
	}
}

// TestEventStreamResumesWithLastEventID: a client that drops mid-stream and reconnects with
// its Last-Event-ID still gets the final result.
func TestEventStreamResumesWithLastEventID(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	token := b.user("a@example.com")
	id := b.submit(token, "Pilot at Pan Am [[fakeopenai:latency=2s]]", "Flying", "")
	first, cancelFirst := context.WithCancel(context.Background())
	_, events := b.sse(first, "/api/cover-letter/"+id+"/events?token="+b.streamToken(token, id))
	var last string
	for e := range events {
		last = e.ID
		if e.Name == "delta" {
			break
		}
	}
	cancelFirst() // the browser reloads
	if last == "" {
		t.Fatal("no delta before the drop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, events = b.sse(ctx, "/api/cover-letter/"+id+"/events?token="+b.streamToken(token, id), "Last-Event-ID", last)
	var final string
	for e := range events {
		final = e.Name
	}
	if final != "completed" {
		t.Fatalf("resumed stream ended with %q", final)
	}
}

// TestEventStreamAccess: stream tokens open their own job only, are no user tokens, and
// another user's job is 404.
func TestEventStreamAccess(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	alice, bob := b.user("a@example.com"), b.user("b@example.com")
	a1, a2 := b.submit(alice, "One", "CV", ""), b.submit(alice, "Two", "CV", "")
	tokenA1 := b.streamToken(alice, a1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if status, _ := b.sse(ctx, "/api/cover-letter/"+a2+"/events?token="+tokenA1); status != http.StatusUnauthorized {
		t.Fatalf("a1's stream token on a2 = %d", status)
	}
	if r := b.do("GET", "/api/cover-letter/jobs", tokenA1, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("a stream token as a user token = %d", r.Status)
	}
	if status, _ := b.sse(ctx, "/api/cover-letter/"+a1+"/events"); status != http.StatusUnauthorized {
		t.Fatalf("no token = %d", status)
	}
	if status, _ := b.sse(ctx, "/api/cover-letter/"+a1+"/events", "Authorization", "Bearer "+bob); status != http.StatusNotFound {
		t.Fatalf("bob on alice's stream = %d", status)
	}
	if r := b.do("POST", "/api/cover-letter/"+a1+"/stream-token", bob, nil); r.Status != http.StatusNotFound {
		t.Fatalf("bob minting a token for alice's job = %d", r.Status)
	}
	_ = job.StatusCompleted
}

// TestThousandIdleStreamsCostLittle runs the real api (built without the race detector, as
// deployed) with 1,000 open event streams of pending jobs and reads its resident memory:
// under 100 MB, and it still answers.
func TestThousandIdleStreamsCostLittle(t *testing.T) {
	t.Parallel()
	bin := plainBinaries(t)
	dbURL, amqpURL := testkit.NewDatabaseURL(t), testkit.NewVhostURL(t)
	apiAddr := freeAddr(t)
	cmd := startProgram(t, bin, testkit.ChildEnv("DATABASE_URL="+dbURL, "RABBITMQ_URL="+amqpURL, "JWT_SECRET="+jwtSecret,
		"HTTP_ADDR="+apiAddr, "USER_REQUESTS_PER_MINUTE=0", "USER_JOBS_PER_MINUTE=0", "STREAMS_PER_USER=2000", "LOG_LEVEL=warn"), nil, "api")
	waitReady(t, "http://"+apiAddr+"/readyz")
	token := userToken(t, dbURL, "s@example.com")
	b := &bundle{t: t, apiURL: "http://" + apiAddr}
	var ids []string
	for i := range 10 { // no worker runs: they stay pending
		ids = append(ids, b.submit(token, fmt.Sprintf("Job %d", i), "CV", ""))
	}
	before := rssMB(t, cmd.Process.Pid)

	const streams = 1000
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range streams {
		c, err := net.Dial("tcp", apiAddr)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /api/cover-letter/%s/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", ids[i%len(ids)], token)
		r := bufio.NewReader(c)
		if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("stream %d answered %q, %v", i, line, err)
		}
	}
	time.Sleep(time.Second) // let every stream write its first events
	after := rssMB(t, cmd.Process.Pid)
	t.Logf("api resident memory: %.1f MB before, %.1f MB with %d idle event streams (%.1f kB each)",
		before, after, streams, (after-before)*1024/streams)
	if after > 100 {
		t.Fatalf("%d idle streams: %.1f MB resident, want under 100 MB", streams, after)
	}
	if r := b.do("GET", "/api/cover-letter/jobs", token, nil); r.Status != 200 {
		t.Fatalf("with %d streams open the api answers %d", streams, r.Status)
	}
}

// rssMB reads a process's resident set size.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestStreamTokenIsNotExported: EventSource sends its stream token in the query string, so
// the api takes it off the URL before anything records the URL: no span attribute and no log
// line holds it (spans leave the system), and a copy of it opens nothing: it opens the stream once.
func TestStreamTokenIsNotExported(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	token := b.user("a@example.com")
	id := b.submit(token, "Writer at Daily Planet", "Reporter", "")
	stream := b.streamToken(token, id)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	status, events := b.sse(ctx, "/api/cover-letter/"+id+"/events?token="+stream)
	if status != 200 {
		t.Fatalf("stream = %d", status)
	}
	for range events { // until the final event ends the stream
	}
	for _, s := range b.spans.Ended() {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.String(), stream) {
				t.Fatalf("span %q exports the stream token in %s", s.Name(), kv.Key)
			}
		}
	}
	if strings.Contains(b.logs.String(), stream) {
		t.Fatal("a log line holds the stream token")
	}
	// And were it copied from somewhere, it would open nothing: it was spent.
	if status, _ := b.sse(ctx, "/api/cover-letter/"+id+"/events?token="+stream); status != http.StatusUnauthorized {
		t.Fatalf("the spent token opens the stream again: %d", status)
	}
}
