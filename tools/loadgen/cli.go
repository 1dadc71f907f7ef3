package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/careerops/jobs/internal/apiclient"
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/job"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// options is loadgen's command line.
type options struct {
	cfg    Config
	tokens stringList
	body   Request
	wait   time.Duration
	asJSON bool
}

// Main is the loadgen program: it submits jobs, optionally waits for them to be final, and
// prints a summary (or, with -json, the whole report). ctx's end (SIGTERM) stops the load
// early; what was done is still reported and Main returns nil.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, help, err := parseArgs(args, getenv, stdout)
	if help || err != nil {
		return err
	}
	cfg := o.cfg
	rep, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	var final map[string]job.View
	if o.wait > 0 && ctx.Err() == nil {
		waitCtx, cancel := context.WithTimeout(ctx, o.wait)
		final = WaitFinal(waitCtx, apiclient.New(cfg.BaseURL, NewHTTPClient(cfg.Concurrency)), cfg.Tokens, rep, 500*time.Millisecond, cfg.Concurrency)
		cancel()
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*Report
			Final map[string]job.View `json:"final,omitempty"`
		}{rep, final})
	}
	_, err = fmt.Fprintln(stdout, Summary(rep, final))
	return err
}

// parseArgs reads the command line; with -h it prints the usage and says help.
func parseArgs(args []string, getenv func(string) string, stdout io.Writer) (o options, help bool, err error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, body, tokens := &o.cfg, &o.body, &o.tokens
	wait, asJSON := &o.wait, &o.asJSON
	fs.StringVar(&cfg.BaseURL, "api", cmp.Or(getenv("LOADGEN_API"), "http://127.0.0.1:8080"), "the api's base `URL` (env LOADGEN_API)")
	fs.Var(tokens, "token", "a user's bearer `JWT`; repeat for several users (env LOADGEN_TOKENS, comma-separated)")
	fs.IntVar(&cfg.Jobs, "jobs", 100, "how many jobs to submit")
	fs.Float64Var(&cfg.Rate, "rate", 10, "new jobs per second; 0: as fast as -concurrency allows")
	fs.IntVar(&cfg.Concurrency, "concurrency", 8, "submissions in flight at once")
	fs.StringVar(&body.JobDescription, "description", "", "job description of every job (default: a generated one naming the job's index)")
	fs.StringVar(&body.CVText, "cv", "", "CV text of every job (default: a generated one)")
	fs.StringVar(&body.Tone, "tone", "", "tone of every job (default: cycle through none, professional, friendly, concise)")
	fs.DurationVar(&cfg.MaxRetryWait, "max-retry-wait", 5*time.Second, "cap of the wait before a retry, Retry-After included")
	fs.DurationVar(&cfg.GiveUpAfter, "give-up-after", 2*time.Minute, "time spent on one job before giving up")
	fs.BoolVar(&cfg.NoIdempotencyKey, "no-idempotency-key", false, "send no Idempotency-Key (retries may then create duplicates)")
	fs.DurationVar(wait, "wait", 0, "then poll the accepted jobs until final, for at most this long (0: do not wait)")
	fs.BoolVar(asJSON, "json", false, "print the whole report as JSON instead of a summary")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "Usage: loadgen [flags]\n\nSubmits cover-letter jobs to the api at a set pace, as a careful client does (an\nIdempotency-Key per job; 503, 429 and lost connections retried with it), and reports what\nbecame of them. SIGTERM stops the load early and still reports.\n\nFlags:")
			fs.PrintDefaults()
			return o, true, nil
		}
		return o, false, fmt.Errorf("%w: %w", cli.ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return o, false, fmt.Errorf("%w: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	return o, false, o.complete(getenv)
}

// complete takes the tokens from LOADGEN_TOKENS if no -token was given, checks the numbers
// and sets the body of every job.
func (o *options) complete(getenv func(string) string) error {
	cfg := &o.cfg
	if len(o.tokens) == 0 {
		for _, t := range strings.Split(getenv("LOADGEN_TOKENS"), ",") {
			if t = strings.TrimSpace(t); t != "" {
				o.tokens = append(o.tokens, t)
			}
		}
	}
	switch {
	case len(o.tokens) == 0:
		return fmt.Errorf("%w: give at least one -token (or LOADGEN_TOKENS)", cli.ErrUsage)
	case cfg.Jobs < 1:
		return fmt.Errorf("%w: -jobs must be at least 1", cli.ErrUsage)
	case cfg.Rate < 0:
		return fmt.Errorf("%w: -rate must not be negative", cli.ErrUsage)
	case cfg.Concurrency < 1 || cfg.Concurrency > 10000:
		return fmt.Errorf("%w: -concurrency must be 1..10000", cli.ErrUsage)
	}
	cfg.Tokens = o.tokens
	if body := o.body; body != (Request{}) {
		cfg.Body = func(i int) Request {
			r := DefaultBody(i)
			if body.JobDescription != "" {
				r.JobDescription = body.JobDescription
			}
			if body.CVText != "" {
				r.CVText = body.CVText
			}
			if body.Tone != "" {
				r.Tone = body.Tone
			}
			return r
		}
	}
	return nil
}

// Summary is one line of figures about a load and, if final is not nil, its jobs' outcomes.
func Summary(rep *Report, final map[string]job.View) string {
	codes := make([]int, 0, len(rep.Answers))
	for c := range rep.Answers {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	answers := make([]string, 0, len(codes))
	for _, c := range codes {
		answers = append(answers, fmt.Sprintf("%d:%d", c, rep.Answers[c]))
	}
	s := fmt.Sprintf("loadgen: jobs=%d accepted=%d replayed=%d rejected=%d gave_up=%d answers={%s} took=%.1fs",
		len(rep.Jobs), rep.Count(Accepted), rep.Count(Replayed), rep.Count(Rejected), rep.Count(GaveUp),
		strings.Join(answers, " "), rep.Duration.Seconds())
	if final == nil {
		return s
	}
	var completed, failed, other int
	var waits []time.Duration
	for _, j := range rep.Jobs {
		if j.JobID == "" {
			continue
		}
		st := final[j.JobID]
		switch st.Status {
		case "completed":
			completed++
			if st.CompletedAt != nil {
				waits = append(waits, st.CompletedAt.Sub(j.Sent))
			}
		case "failed":
			failed++
		default:
			other++
		}
	}
	slices.Sort(waits)
	pct := func(p float64) float64 {
		if len(waits) == 0 {
			return 0
		}
		return waits[min(len(waits)-1, int(p*float64(len(waits))))].Seconds()
	}
	return s + fmt.Sprintf(" completed=%d failed=%d not_final=%d wait_p50=%.2fs wait_p95=%.2fs wait_max=%.2fs",
		completed, failed, other, pct(0.5), pct(0.95), pct(1))
}
