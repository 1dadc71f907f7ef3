package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// refPattern finds a job's reference in a prompt: every job of the suite carries one in its
// description, so each LLM request can be attributed to its job.
var refPattern = regexp.MustCompile(`chaosref=([A-Za-z0-9_.:-]+)`)

// Ref is the marker to put in a job description.
func Ref(ref string) string { return "chaosref=" + ref }

// LLMCall is one chat-completion request seen by the proxy.
type LLMCall struct {
	Ref    string
	Worker string // from the path: each worker's OPENAI_BASE_URL is .../w/<name>/v1
	Start  time.Time
	End    time.Time
	// Status is the fake's answer; 0 when none reached the worker (it gave up first: timeout,
	// shutdown or death) or the fake could not be reached.
	Status int
	// RetryAfter is what a 429 asked for (retry-after-ms, else Retry-After).
	RetryAfter time.Duration
	Err        string
}

// LLMProxy sits between the workers and fakeopenai and records every request by job and
// worker: what the fake's aggregate /_fake/stats cannot tell (how many requests each job
// caused, whether two workers ran one job at once, how long a 429's job waited).
type LLMProxy struct {
	URL      string // http://127.0.0.1:port
	upstream string
	srv      *http.Server
	client   *http.Client

	mu       sync.Mutex
	calls    map[string][]*LLMCall
	unref    int
	inflight map[string]int // by worker
}

// NewLLMProxy listens on a free port of 127.0.0.1 and forwards to upstream (fakeopenai's
// base, e.g. http://127.0.0.1:8090).
func NewLLMProxy(upstream string) (*LLMProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 512
	p := &LLMProxy{URL: "http://" + ln.Addr().String(), upstream: strings.TrimRight(upstream, "/"),
		client: &http.Client{Transport: t}, calls: map[string][]*LLMCall{}, inflight: map[string]int{}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// BaseURL is the OPENAI_BASE_URL for a worker.
func (p *LLMProxy) BaseURL(worker string) string { return p.WorkerURL(worker) + "/v1" }

// WorkerURL is the proxy's root for a worker: an Azure endpoint's base URL.
func (p *LLMProxy) WorkerURL(worker string) string { return p.URL + "/w/" + worker }

// Close stops the proxy.
func (p *LLMProxy) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}

func (p *LLMProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/w/")
	worker, path, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		http.Error(w, "chaos proxy: want /w/<worker>/...", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return
	}
	call := &LLMCall{Worker: worker, Start: time.Now()}
	if m := refPattern.FindSubmatch(body); m != nil {
		call.Ref = string(m[1])
	}
	p.mu.Lock()
	if call.Ref != "" {
		p.calls[call.Ref] = append(p.calls[call.Ref], call)
	} else {
		p.unref++
	}
	p.inflight[worker]++
	p.mu.Unlock()
	status, retryAfter, errText := p.forward(w, r, "/"+path, body)
	p.mu.Lock()
	call.End, call.Status, call.RetryAfter, call.Err = time.Now(), status, retryAfter, errText
	p.inflight[worker]--
	p.mu.Unlock()
}

// forward sends the request on with the worker's context: a worker that gives up cancels the
// fake's request too, as it would with a real LLM.
func (p *LLMProxy) forward(w http.ResponseWriter, r *http.Request, path string, body []byte) (int, time.Duration, string) {
	target := p.upstream + path
	if r.URL.RawQuery != "" { // Azure's api-version
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err.Error()
	}
	for _, h := range []string{"Authorization", "Api-Key", "Content-Type", "Accept", "OpenAI-Organization"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if r.Context().Err() == nil {
			http.Error(w, "chaos proxy: "+err.Error(), http.StatusBadGateway)
		}
		return 0, 0, err.Error()
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		return 0, 0, "answer not delivered: " + err.Error()
	}
	var retryAfter time.Duration
	if ms, err := strconv.Atoi(resp.Header.Get("Retry-After-Ms")); err == nil {
		retryAfter = time.Duration(ms) * time.Millisecond
	} else if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, retryAfter, ""
}

// Calls returns a copy of the calls for ref, in order of start.
func (p *LLMProxy) Calls(ref string) []LLMCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]LLMCall, 0, len(p.calls[ref]))
	for _, c := range p.calls[ref] {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// AllCalls returns a copy of every call that named a job, in order of start.
func (p *LLMProxy) AllCalls() []LLMCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []LLMCall
	for _, cs := range p.calls {
		for _, c := range cs {
			out = append(out, *c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Pace is how LLM calls (in order of start) went out against a per-minute limit, a token
// bucket of a minute's calls refilled continuously: the first burst, how far the calls ever
// got ahead of the bucket, and the rate once its first fill was spent.
type Pace struct {
	Burst int // calls that started within burstSpan of the first (for the figures)
	// Excess is the most calls, at any call's start, beyond what the bucket held by then (a
	// minute's calls, plus what refilled since the first call); 0 or less: never ahead.
	Excess int
	// SteadyRPM is the calls beyond the first fill per minute of the whole span: the limit
	// when the calls went at it, less when slower; 0 if no call came beyond the first fill.
	SteadyRPM float64
}

// burstSpan is how long the first burst of calls may take to leave.
const burstSpan = 2 * time.Second

// PaceOf measures calls, sorted by start, against a limit of perMinute calls. It judges the
// calls by the bucket, not by how fast the first burst left: on a busy machine the first
// fill may leave over several seconds, and what refilled meanwhile may go at once.
func PaceOf(calls []LLMCall, perMinute int) Pace {
	if len(calls) == 0 {
		return Pace{}
	}
	p := Pace{Excess: math.MinInt}
	first := calls[0].Start
	for i, c := range calls {
		since := c.Start.Sub(first)
		if since < burstSpan {
			p.Burst++
		}
		allowed := perMinute + int(float64(perMinute)*since.Minutes())
		p.Excess = max(p.Excess, i+1-allowed)
	}
	if span := calls[len(calls)-1].Start.Sub(first); len(calls) > perMinute && span > 0 {
		p.SteadyRPM = float64(len(calls)-perMinute) / span.Minutes()
	}
	return p
}

// Total is how many requests the proxy saw, and how many of them named no job.
func (p *LLMProxy) Total() (total, unreferenced int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cs := range p.calls {
		total += len(cs)
	}
	return total + p.unref, p.unref
}

// InFlight is how many requests a worker has open now.
func (p *LLMProxy) InFlight(worker string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inflight[worker]
}

// FakeStats reads fakeopenai's own counters (GET /_fake/stats).
func FakeStats(ctx context.Context, base string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_fake/stats", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetFaults changes fakeopenai's random faults at run time (PUT /_fake/faults).
func SetFaults(ctx context.Context, base, latency string, failRate, rateLimitRate float64) error {
	body, _ := json.Marshal(map[string]any{"latency": latency, "failRate": failRate, "rateLimitRate": rateLimitRate})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/_fake/faults", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return errors.New("PUT /_fake/faults: " + resp.Status + ": " + string(b))
	}
	return nil
}
