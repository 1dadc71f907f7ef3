package fakeopenai

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	// DefaultModel is the model listed when Config.Model is empty.
	DefaultModel = "fake-gpt"
	// DefaultRetryAfter is advertised by 429 answers when Config.RetryAfter is zero.
	DefaultRetryAfter = time.Second
)

// maxTrackedPrompts bounds the memory of fail markers: past it, the counts
// start over.
const maxTrackedPrompts = 100_000

// Server is the fake OpenAI API, an http.Handler. Create it with New. It is
// safe for concurrent use.
type Server struct {
	model        string
	retryAfter   string // Retry-After header value, in seconds
	retryAfterMS string // retry-after-ms header value
	traits       traits // of the profile
	mux          *http.ServeMux

	mu        sync.Mutex // guards the fields below
	faults    Faults
	rng       *rand.Rand
	failures  map[uint64]int // failures answered, by prompt hash, for fail markers
	rateLimit rateLimiter

	requests, completed, failed, rateLimited, canceled atomic.Int64
}

// New returns a Server configured by cfg, or an error if cfg is invalid.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	cfg.RetryAfter = cmp.Or(cfg.RetryAfter, DefaultRetryAfter)
	cfg.Model = cmp.Or(cfg.Model, DefaultModel)
	if err := cfg.Profile.Set(string(cfg.Profile)); err != nil { // lower case, empty is OpenAI
		return nil, err
	}
	seed := uint64(cfg.Seed)
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Server{
		model:        cfg.Model,
		retryAfter:   strconv.FormatInt(max(1, int64((cfg.RetryAfter+time.Second-1)/time.Second)), 10),
		retryAfterMS: strconv.FormatInt(cfg.RetryAfter.Milliseconds(), 10),
		traits:       cfg.Profile.traits(),
		mux:          http.NewServeMux(),
		faults:       cfg.faults(),
		rng:          rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		failures:     make(map[uint64]int),
		rateLimit:    newRateLimiter(cfg.LimitRPM, cfg.LimitTPM),
	}
	if s.traits.azure {
		const chatPath = "/openai/deployments/{deployment}/chat/completions"
		s.mux.HandleFunc("POST "+chatPath, s.chatCompletions)
		s.mux.HandleFunc(chatPath, methodNotAllowed(http.MethodPost))
		s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, azureError(http.StatusNotFound, "Resource not found"), false)
		})
	} else {
		s.mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
		s.mux.HandleFunc("/v1/chat/completions", methodNotAllowed(http.MethodPost))
		s.mux.HandleFunc("GET /v1/models", s.models)
		s.mux.HandleFunc("/v1/models", methodNotAllowed(http.MethodGet))
		s.mux.HandleFunc("/v1/", notFound)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	s.mux.HandleFunc("GET /_fake/faults", s.getFaults)
	s.mux.HandleFunc("PUT /_fake/faults", s.putFaults)
	s.mux.HandleFunc("GET /_fake/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Faults returns the current fault knobs.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// SetFaults replaces the fault knobs, unless they are invalid.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	return nil
}

// Stats returns the request counts so far.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:    s.requests.Load(),
		Completed:   s.completed.Load(),
		Failed:      s.failed.Load(),
		RateLimited: s.rateLimited.Load(),
		Canceled:    s.canceled.Load(),
	}
}

// fault returns the error status a chat completion is to be answered with,
// or 0 for none: the status the markers ask for, else a random fault.
func (s *Server) fault(d directives, prompt uint64) int {
	if d.status != 0 {
		return d.status
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.failTimes > 0 {
		n, seen := s.failures[prompt]
		if n >= d.failTimes {
			return 0
		}
		if !seen && len(s.failures) >= maxTrackedPrompts {
			clear(s.failures)
		}
		s.failures[prompt] = n + 1
		return d.failStatus
	}
	switch {
	case s.rng.Float64() < s.faults.RateLimitRate:
		return http.StatusTooManyRequests
	case s.rng.Float64() < s.faults.FailRate:
		return http.StatusInternalServerError
	}
	return 0
}

// reject answers a chat completion with an error.
func (s *Server) reject(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusTooManyRequests {
		s.rateLimited.Add(1)
		if w.Header().Get("Retry-After") == "" { // the limiter's own, else the configured one
			w.Header().Set("Retry-After", s.retryAfter)
			w.Header().Set("Retry-After-Ms", s.retryAfterMS)
		}
	} else {
		s.failed.Add(1)
	}
	writeError(w, e, s.traits.flatErrors)
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if e := s.traits.authorize(r); e != nil {
		s.reject(w, e)
		return
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	writeJSON(w, http.StatusOK, struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", []model{{ID: s.model, Object: "model", Created: 1700000000, OwnedBy: "fakeopenai"}}})
}

// faultsJSON is the wire form of Faults.
type faultsJSON struct {
	Latency       string  `json:"latency"` // a Go duration such as "1.5s"
	FailRate      float64 `json:"failRate"`
	RateLimitRate float64 `json:"rateLimitRate"`
}

func (s *Server) getFaults(w http.ResponseWriter, _ *http.Request) {
	f := s.Faults()
	writeJSON(w, http.StatusOK, faultsJSON{f.Latency.String(), f.FailRate, f.RateLimitRate})
}

// putFaults replaces the faults; omitted knobs are zero.
func (s *Server) putFaults(w http.ResponseWriter, r *http.Request) {
	var in faultsJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	err := dec.Decode(&in)
	f := Faults{FailRate: in.FailRate, RateLimitRate: in.RateLimitRate}
	if err == nil && in.Latency != "" {
		f.Latency, err = time.ParseDuration(in.Latency)
	}
	if err == nil {
		err = s.SetFaults(f)
	}
	if err != nil {
		writeError(w, invalidRequest(http.StatusBadRequest, "invalid faults: "+err.Error()), false)
		return
	}
	s.getFaults(w, r)
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, invalidRequest(http.StatusMethodNotAllowed,
			"Method "+r.Method+" is not allowed for "+r.URL.Path+", use "+allow+"."), false)
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, invalidRequest(http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")"), false)
}
