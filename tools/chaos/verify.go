package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/apiclient"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
	"github.com/careerops/jobs/tools/loadgen"
)

// Expected is a job the scenario created and expects to end.
type Expected struct {
	Ref   string
	JobID string
	// User is the index of its owner's token, -1 for a job another service created by
	// publishing a message (it has no token of ours).
	User int
	// How: "accepted" (202), "replayed" (200 to a retry: stored, its first answer lost) or
	// "external".
	How string
}

// Poison is a message the scenario published that is no job: it must reach the DLQ, once,
// as it was, with reason invalid_message.
type Poison struct {
	Name    string
	Body    []byte
	Headers map[string]any // published with the body; none if nil
}

// Check says what the end check must verify beyond the defaults.
type Check struct {
	Jobs   []Expected
	Poison []Poison
	// FaultsOver is when the last fault ended and the load stopped: the drain is timed from it.
	FaultsOver time.Time
	// DrainTimeout bounds the wait for every job to be final. Defaults to 2m.
	DrainTimeout time.Duration
	// ExactLLM: no process died, so every attempt made exactly one LLM request, no job got
	// more than one successful answer, and no two requests for a job overlapped.
	ExactLLM bool
	// NoOverlap: no two LLM requests for one job may overlap, unless the first one's worker
	// was killed (always checked with ExactLLM).
	NoOverlap bool
	// PerJob, if set, checks one job's row against its LLM requests.
	PerJob func(r Row, calls []LLMCall) []string
	// RequestsPerAttempt is how many LLM requests one attempt may make. Defaults to 1; 2 with
	// a fallback endpoint (the primary's failure is retried at once on the fallback).
	RequestsPerAttempt int
}

// Row is one cover_letter_jobs row.
type Row struct {
	JobID, Status, Error, Letter, Ref string
	Model                             string // of the letter
	UserID                            int64
	Attempts                          int
	CompletedAt, LeaseExpires         *time.Time
	RunAfter                          *time.Time
	UpdatedAt                         time.Time
}

// Figures are a scenario's numbers, printed as one line.
type Figures struct {
	Scenario                              string
	Accepted, Replayed, External, Orphans int
	Completed, Failed                     int
	Duplicates, Lost, Unannounced         int
	Drain                                 time.Duration
	Attempts, LLMRequests, Overlaps       int
	DoubleAnswers                         int
	DLQ                                   int
	// Redelivered counts identical re-publications of a completion message (at-least-once
	// delivery; consumers deduplicate by message id); RedeliveryCause says why they happened.
	Redelivered     int
	RedeliveryCause string
	Extra           []string
}

// Line is the figures as the suite prints them.
func (f Figures) Line() string {
	s := fmt.Sprintf("chaos: %s: accepted=%d completed=%d failed=%d duplicates=%d lost=%d drain=%.1fs",
		f.Scenario, f.Accepted, f.Completed, f.Failed, f.Duplicates, f.Lost, f.Drain.Seconds())
	s += fmt.Sprintf(" redelivered=%d replayed=%d external=%d orphans=%d unannounced=%d attempts=%d llm_requests=%d overlaps=%d double_answers=%d dlq=%d",
		f.Redelivered, f.Replayed, f.External, f.Orphans, f.Unannounced, f.Attempts, f.LLMRequests, f.Overlaps, f.DoubleAnswers, f.DLQ)
	if len(f.Extra) > 0 {
		s += " " + strings.Join(f.Extra, " ")
	}
	return s
}

// ExpectedFromLoad lists the jobs a load got accepted; refs[i] is job i's reference.
func ExpectedFromLoad(rep *loadgen.Report, refs func(i int) string) []Expected {
	var out []Expected
	for _, j := range rep.Jobs {
		switch j.Outcome {
		case loadgen.Accepted, loadgen.Replayed:
			out = append(out, Expected{Ref: refs(j.Index), JobID: j.JobID, User: j.User, How: string(j.Outcome)})
		}
	}
	return out
}

// WaitDrained waits until no job is pending or processing and the outbox is empty, and
// returns how long that took from since.
func (s *System) WaitDrained(ctx context.Context, since time.Time, within time.Duration) (time.Duration, error) {
	var open, outbox int
	var err error
	_ = testkit.WaitUntil(ctx, within, 100*time.Millisecond, func() bool {
		err = s.Pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM cover_letter_jobs WHERE status IN ('pending', 'processing')),
			(SELECT count(*) FROM outbox_messages)`).Scan(&open, &outbox)
		return err == nil && open == 0 && outbox == 0
	})
	switch {
	case err != nil:
		return time.Since(since), fmt.Errorf("not drained after %s: %w", within, err)
	case open != 0 || outbox != 0:
		return time.Since(since), fmt.Errorf("not drained after %s: %d jobs pending or processing, %d outbox rows",
			within, open, outbox)
	}
	return time.Since(since), nil
}

// Rows reads every job.
func (s *System) Rows(ctx context.Context) (map[string]Row, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT job_id, user_id, status, attempts, coalesce(error_message, ''), coalesce(cover_letter, ''),
		       coalesce(substring(job_description from 'chaosref=([A-Za-z0-9_.:-]+)'), ''), coalesce(model, ''),
		       completed_at, lease_expires_at, run_after, updated_at
		FROM cover_letter_jobs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Row{}
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.JobID, &r.UserID, &r.Status, &r.Attempts, &r.Error, &r.Letter, &r.Ref, &r.Model,
			&r.CompletedAt, &r.LeaseExpires, &r.RunAfter, &r.UpdatedAt); err != nil {
			return nil, err
		}
		out[r.JobID] = r
	}
	return out, rows.Err()
}

// drainQueue takes every message off a queue.
func (s *System) drainQueue(queue string) ([]amqp.Delivery, error) {
	conn, err := amqp.Dial(s.AMQP)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	var out []amqp.Delivery
	for range 1_000_000 {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			return out, fmt.Errorf("get from %s: %w", queue, err)
		}
		if !ok {
			return out, nil
		}
		out = append(out, d)
	}
	return out, fmt.Errorf("%s does not empty", queue)
}

// verification is one end check under way.
type verification struct {
	s        *System
	c        Check
	f        Figures
	problems []string
	rows     map[string]Row
	expected map[string]Expected
	lost     map[string]string // job id → why it counts as lost
}

func (v *verification) add(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

// Verify runs the end check: every expected job is completed or failed for a stated reason,
// has exactly one visible result (its row, its status in the api and its list, one message
// on cover-letter.completed), nothing is left pending, poison reached the DLQ, and the LLM
// requests match the attempts. It returns the figures and every problem found.
func (s *System) Verify(ctx context.Context, c Check) (Figures, []string) {
	v := &verification{s: s, c: c, f: Figures{Scenario: s.Cfg.Name}, expected: map[string]Expected{}, lost: map[string]string{}}
	if v.c.DrainTimeout == 0 {
		v.c.DrainTimeout = 2 * time.Minute
	}
	drain, err := s.WaitDrained(ctx, c.FaultsOver, v.c.DrainTimeout)
	v.f.Drain = drain
	if err != nil {
		v.add("%v", err)
	}
	if v.rows, err = s.Rows(ctx); err != nil {
		v.add("read jobs: %v", err)
		return v.f, v.problems
	}
	v.indexExpected()
	v.checkRows()
	v.checkAnnounced()
	v.checkGenerateEmpty(ctx)
	v.problems = append(v.problems, s.checkAPI(ctx, v.c, v.rows, v.lost)...)
	v.problems = append(v.problems, s.checkDLQ(v.c, v.rows, &v.f)...)
	v.problems = append(v.problems, s.checkLLM(v.c, v.rows, &v.f)...)
	v.reportLost()
	return v.f, v.problems
}

// indexExpected indexes the expected jobs by id and counts them by how they were submitted.
func (v *verification) indexExpected() {
	for _, e := range v.c.Jobs {
		if prev, dup := v.expected[e.JobID]; dup {
			v.add("the api gave job id %s to two submissions (%s and %s)", e.JobID, prev.Ref, e.Ref)
			v.f.Duplicates++
		}
		v.expected[e.JobID] = e
		switch e.How {
		case "accepted":
			v.f.Accepted++
		case "replayed":
			v.f.Replayed++
		default:
			v.f.External++
		}
	}
}

// checkRows finds the expected jobs whose row is missing or not final for a stated reason,
// and counts the rows.
func (v *verification) checkRows() {
	for id, e := range v.expected {
		r, ok := v.rows[id]
		switch {
		case !ok:
			v.lost[id] = "no row in cover_letter_jobs"
		case r.Ref != e.Ref:
			v.lost[id] = fmt.Sprintf("row holds job %q, not %q", r.Ref, e.Ref)
		case r.Status == "completed" && (strings.TrimSpace(r.Letter) == "" || r.CompletedAt == nil):
			v.lost[id] = "completed without a letter or completed_at"
		case r.Status == "failed" && strings.TrimSpace(r.Error) == "":
			v.lost[id] = "failed without a stated reason (error_message empty)"
		case r.Status != "completed" && r.Status != "failed":
			v.lost[id] = fmt.Sprintf("status %s (attempts %d, run_after %v, lease until %v, error %q)",
				r.Status, r.Attempts, r.RunAfter, r.LeaseExpires, r.Error)
		}
	}
	for id, r := range v.rows {
		switch r.Status {
		case "completed":
			v.f.Completed++
		case "failed":
			v.f.Failed++
		}
		v.f.Attempts += r.Attempts
		if _, ok := v.expected[id]; !ok {
			v.f.Orphans++ // stored, but its answer never reached the client (which gave up)
			if r.Status != "completed" && r.Status != "failed" {
				v.add("job %s (%s), which no client saw accepted, is %s", id, r.Ref, r.Status)
			}
		}
	}
}

// checkAnnounced checks the completion announcements: exactly one per final job, saying what
// the row says.
func (v *verification) checkAnnounced() {
	announced := map[string]int{}
	copies := map[string]map[string]bool{} // job → distinct message id + body digest
	msgs, err := v.s.drainQueue(job.QueueCompleted)
	if err != nil {
		v.add("%v", err)
	}
	for _, d := range msgs {
		var m job.CompletedMessage
		if err := json.Unmarshal(d.Body, &m); err != nil {
			v.add("cover-letter.completed message %s is not JSON: %.200s", d.MessageId, d.Body)
			continue
		}
		announced[m.JobID]++
		if copies[m.JobID] == nil {
			copies[m.JobID] = map[string]bool{}
		}
		copies[m.JobID][fmt.Sprintf("%s %x", d.MessageId, sha256.Sum256(d.Body))] = true
		r, ok := v.rows[m.JobID]
		switch {
		case !ok:
			v.add("cover-letter.completed announces job %s, which does not exist", m.JobID)
			v.f.Duplicates++
		case string(m.Status) != r.Status:
			v.add("cover-letter.completed says job %s is %s; its row says %s", m.JobID, m.Status, r.Status)
		case m.Status == job.StatusCompleted && m.CoverLetter != r.Letter:
			v.add("cover-letter.completed carries a different letter for job %s than its row", m.JobID)
		}
	}
	v.countRepeats(announced, copies)
	for id, r := range v.rows {
		if (r.Status == "completed" || r.Status == "failed") && announced[id] == 0 {
			v.f.Unannounced++
			v.add("job %s (%s) is %s but was never announced on cover-letter.completed", id, r.Ref, r.Status)
		}
	}
}

// countRepeats tells redeliveries from duplicates. The relay publishes at least once (the
// contract: consumers deduplicate by message id, "<jobId>/<status>"): byte-identical copies
// after a lost outbox commit are redeliveries, counted and explained; two different
// announcements of one job are a duplicate result.
func (v *verification) countRepeats(announced map[string]int, copies map[string]map[string]bool) {
	dupAnnounced := 0
	for id, n := range announced {
		if n <= 1 {
			continue
		}
		if len(copies[id]) > 1 {
			v.f.Duplicates += n - 1
			v.add("DUPLICATE: job %s (%s) announced %d times on cover-letter.completed with DIFFERENT messages", id, v.rows[id].Ref, n)
			continue
		}
		v.f.Redelivered += n - 1
		dupAnnounced++
	}
	if dupAnnounced > 0 {
		v.f.RedeliveryCause = v.s.redeliveryCause()
	}
}

// redeliveryCause says why a completion went out twice: what the outbox relays logged when
// they lost a batch they had published.
func (s *System) redeliveryCause() string {
	var lines []string
	for _, p := range s.procs() {
		for _, l := range grepLog(p.Log, 3, "outbox: ") {
			if strings.Contains(l, "record published rows") || strings.Contains(l, "outbox: commit") ||
				strings.Contains(l, "may or may not be stored") {
				lines = append(lines, p.Name+": "+l)
			}
		}
	}
	if len(lines) == 0 {
		return "no relay logged losing a batch: a process was killed between RabbitMQ's confirm and its outbox commit"
	}
	return "the outbox relays logged, on losing a batch RabbitMQ may already have stored:\n    " + strings.Join(lines, "\n    ")
}

// checkGenerateEmpty: nothing stays in the generate queue, no message held by a stuck worker,
// no duplicate left unconsumed (rabbitmqctl list_queues, as an operator would look).
func (v *verification) checkGenerateEmpty(ctx context.Context) {
	if err := v.s.WaitQueueEmpty(ctx, job.QueueGenerate, 15*time.Second); err != nil {
		v.add("%v after every job ended", err)
	}
}

// WaitQueueEmpty waits until queue holds no message, ready or unacked.
func (s *System) WaitQueueEmpty(ctx context.Context, queue string, within time.Duration) error {
	var left int
	var err error
	_ = testkit.WaitUntil(ctx, within, 500*time.Millisecond, func() bool {
		left, err = s.H.RabbitMQ.QueueDepth(ctx, s.Cfg.Name, queue)
		return err != nil || left == 0
	}) // err and left say how it ended
	switch {
	case err != nil:
		return fmt.Errorf("list_queues: %w", err)
	case left != 0:
		return fmt.Errorf("%d messages (ready or unacked) still in %s", left, queue)
	}
	return nil
}

// reportLost counts the lost jobs and names each.
func (v *verification) reportLost() {
	v.f.Lost = len(v.lost)
	ids := make([]string, 0, len(v.lost))
	for id := range v.lost {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v.add("LOST: job %s (%s, %s): %s", id, v.expected[id].Ref, v.expected[id].How, v.lost[id])
	}
}

// checkAPI reads every expected job back through the api, one by one and in its owner's list.
func (s *System) checkAPI(ctx context.Context, c Check, rows map[string]Row, lost map[string]string) []string {
	var (
		mu       sync.Mutex
		problems []string
	)
	add := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	api := apiclient.New(s.APIURL, loadgen.NewHTTPClient(8))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, e := range c.Jobs {
		if e.User < 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := api.Status(ctx, s.Tokens[e.User], e.JobID)
			code := apiclient.StatusOf(err)
			r := rows[e.JobID]
			switch {
			case err != nil:
				add("api: GET status of job %s: %d %v", e.JobID, code, err)
				mu.Lock()
				if _, ok := lost[e.JobID]; !ok {
					lost[e.JobID] = fmt.Sprintf("the api cannot show it: %d %v", code, err)
				}
				mu.Unlock()
			case string(st.Status) != r.Status:
				add("api: job %s is %s, its row %s", e.JobID, st.Status, r.Status)
			case st.Status == "completed" && st.CoverLetter != r.Letter:
				add("api: job %s shows another letter than its row", e.JobID)
			case st.Status == "failed" && (st.Error != r.Error || st.Error == ""):
				add("api: failed job %s shows error %q, its row %q", e.JobID, st.Error, r.Error)
			case st.Attempts != r.Attempts:
				add("api: job %s shows %d attempts, its row %d", e.JobID, st.Attempts, r.Attempts)
			}
		}()
	}
	wg.Wait()

	// Each user's list holds each of their jobs exactly once.
	byUser := map[int][]string{}
	for _, e := range c.Jobs {
		if e.User >= 0 {
			byUser[e.User] = append(byUser[e.User], e.JobID)
		}
	}
	for u, ids := range byUser {
		list, err := api.ListAll(ctx, s.Tokens[u], 100)
		if err != nil {
			add("api: list of user %d: %v", u, err)
			continue
		}
		seen := map[string]int{}
		for _, j := range list {
			seen[j.JobID]++
			if !j.Status.Final() {
				add("api: user %d's list shows job %s %s", u, j.JobID, j.Status)
			}
		}
		for _, id := range ids {
			if seen[id] != 1 {
				add("api: user %d's list shows job %s %d times", u, id, seen[id])
			}
		}
	}
	return problems
}

// checkDLQ reads the DLQ: poison arrived once each, as sent, with its reason; every other
// dead letter is a failed job's message; every job the worker failed was dead-lettered.
func (s *System) checkDLQ(c Check, rows map[string]Row, f *Figures) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	msgs, err := s.drainQueue(job.QueueDLQ)
	if err != nil {
		add("%v", err)
	}
	f.DLQ = len(msgs)
	poison := map[[32]byte]string{}
	for _, p := range c.Poison {
		poison[sha256.Sum256(p.Body)] = p.Name
	}
	poisonSeen := map[string]int{}
	deadJobs := map[string]int{}
	reasons := map[string]int{}
	for _, d := range msgs {
		reason, _ := d.Headers[job.HeaderDeathReason].(string)
		errText, _ := d.Headers[job.HeaderDeathError].(string)
		if reason == "" {
			if _, ok := d.Headers["x-death"]; ok {
				reason = "x-death"
			}
		}
		reasons[reason]++
		if name, ok := poison[sha256.Sum256(d.Body)]; ok {
			poisonSeen[name]++
			if reason != job.ReasonInvalidMessage || strings.TrimSpace(errText) == "" {
				add("DLQ: poison message %q has reason %q and error %q, want %s and a stated error", name, reason, errText, job.ReasonInvalidMessage)
			}
			continue
		}
		var m job.GenerateMessage
		if err := json.Unmarshal(d.Body, &m); err != nil || m.JobID == "" {
			add("DLQ: unexpected message %s (reason %q, error %q): %.200s", d.MessageId, reason, errText, d.Body)
			continue
		}
		deadJobs[m.JobID]++
		r, ok := rows[m.JobID]
		switch {
		case !ok:
			add("DLQ: message for job %s, which does not exist (reason %q)", m.JobID, reason)
		case r.Status != "failed":
			add("DLQ: job %s (%s) is dead-lettered (reason %q, error %q) but its row is %s", m.JobID, r.Ref, reason, errText, r.Status)
		case reason == "" || strings.TrimSpace(errText) == "" && reason != "x-death":
			add("DLQ: job %s dead-lettered without a reason or error (%q, %q)", m.JobID, reason, errText)
		}
	}
	for _, p := range c.Poison {
		if poisonSeen[p.Name] != 1 {
			add("DLQ: poison message %q is there %d times, want once", p.Name, poisonSeen[p.Name])
		}
	}
	dupDead := 0
	for id, n := range deadJobs {
		if n > 1 {
			dupDead += n - 1
			add("DLQ: job %s dead-lettered %d times", id, n)
		}
	}
	for id, r := range rows {
		workerFailed := strings.HasPrefix(r.Error, "gave up after") || strings.HasPrefix(r.Error, "the LLM rejected")
		if r.Status == "failed" && workerFailed && deadJobs[id] == 0 {
			add("DLQ: failed job %s (%s: %q) has no dead letter", id, r.Ref, r.Error)
		}
	}
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f.Extra = append(f.Extra, fmt.Sprintf("dlq_%s=%d", k, reasons[k]))
	}
	return problems
}

// checkLLM compares each job's LLM requests (seen by the proxy) with its recorded attempts.
func (s *System) checkLLM(c Check, rows map[string]Row, f *Figures) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	total, unref := s.llmTotal()
	f.LLMRequests = total
	if unref > 0 {
		add("llm: %d requests named no job", unref)
	}
	ids := make([]string, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := rows[id]
		calls := s.llmCalls(r.Ref)
		ok := 0
		for _, cl := range calls {
			if cl.Status == 200 {
				ok++
			}
		}
		switch {
		case len(calls) > r.Attempts*max(c.RequestsPerAttempt, 1):
			add("llm: job %s (%s) made %d LLM requests but counts %d attempts", id, r.Ref, len(calls), r.Attempts)
		case c.ExactLLM && len(calls) != r.Attempts:
			add("llm: job %s (%s) counts %d attempts but made %d LLM requests", id, r.Ref, r.Attempts, len(calls))
		}
		if r.Status == "completed" && ok == 0 {
			add("llm: job %s (%s) is completed but the LLM never answered it", id, r.Ref)
		}
		if ok > 1 {
			f.DoubleAnswers++
			if c.ExactLLM {
				add("llm: job %s (%s) got %d successful LLM answers: it ran to the end more than once", id, r.Ref, ok)
			}
		}
		for i := range calls {
			for j := i + 1; j < len(calls); j++ {
				a, b := calls[i], calls[j]
				end := a.End
				if end.IsZero() {
					end = time.Now()
				}
				if k := s.killedAt(a.Worker); !k.IsZero() && k.Before(end) {
					end = k // the dead worker's request counts as over when it was killed
				}
				if b.Start.Before(end) {
					f.Overlaps++
					if c.ExactLLM || c.NoOverlap {
						add("llm: job %s (%s) ran on %s and %s at once: %s–%s and from %s", id, r.Ref, a.Worker, b.Worker,
							a.Start.Format("15:04:05.000"), end.Format("15:04:05.000"), b.Start.Format("15:04:05.000"))
					}
				}
			}
		}
		if c.PerJob != nil {
			problems = append(problems, c.PerJob(r, calls)...)
		}
	}
	return problems
}

// Explain gathers what is known about a job, for a failure report: its row, its outbox rows,
// its LLM requests and its log lines.
func (s *System) Explain(ctx context.Context, jobID string) string {
	var b strings.Builder
	var r Row
	err := s.Pool.QueryRow(ctx, `SELECT job_id, status, attempts, coalesce(error_message, ''),
		coalesce(substring(job_description from 'chaosref=([A-Za-z0-9_.:-]+)'), ''), lease_expires_at, run_after, updated_at
		FROM cover_letter_jobs WHERE job_id = $1`, jobID).Scan(&r.JobID, &r.Status, &r.Attempts, &r.Error, &r.Ref,
		&r.LeaseExpires, &r.RunAfter, &r.UpdatedAt)
	fmt.Fprintf(&b, "job %s: row %+v (err %v)\n", jobID, r, err)
	outbox, err := s.Pool.Query(ctx, `SELECT id, routing_key, message_id, available_at, publish_attempts, coalesce(last_error, '')
		FROM outbox_messages WHERE headers->>$1 = $2`, job.HeaderJobID, jobID)
	if err == nil {
		for outbox.Next() {
			var (
				id         int64
				key, msgID string
				at         time.Time
				tries      int
				lastErr    string
			)
			if outbox.Scan(&id, &key, &msgID, &at, &tries, &lastErr) == nil {
				fmt.Fprintf(&b, "  outbox %d %s %s due %s tries %d %s\n", id, key, msgID, at.Format(time.RFC3339Nano), tries, lastErr)
			}
		}
		outbox.Close()
	}
	for _, cl := range s.llmCalls(r.Ref) {
		fmt.Fprintf(&b, "  llm %s %s–%s status %d %s\n", cl.Worker, cl.Start.Format("15:04:05.000"), cl.End.Format("15:04:05.000"), cl.Status, cl.Err)
	}
	for _, p := range s.procs() {
		for _, line := range grepLog(p.Log, 12, jobID) {
			fmt.Fprintf(&b, "  %s: %s\n", p.Name, line)
		}
	}
	return b.String()
}

// llmCalls are the LLM requests for ref, of both endpoints, in order of start.
func (s *System) llmCalls(ref string) []LLMCall {
	calls := s.Proxy.Calls(ref)
	if s.FallbackProxy != nil {
		calls = append(calls, s.FallbackProxy.Calls(ref)...)
		sort.Slice(calls, func(i, j int) bool { return calls[i].Start.Before(calls[j].Start) })
	}
	return calls
}

// llmTotal is how many LLM requests both endpoints' proxies saw, and how many named no job.
func (s *System) llmTotal() (total, unreferenced int) {
	total, unreferenced = s.Proxy.Total()
	if s.FallbackProxy != nil {
		t, u := s.FallbackProxy.Total()
		total, unreferenced = total+t, unreferenced+u
	}
	return total, unreferenced
}

// procs are the scenario's api and worker processes, dead or alive.
func (s *System) procs() []*testkit.Proc {
	procs := append([]*testkit.Proc(nil), s.apis...)
	for _, w := range s.AllWorkers() {
		procs = append(procs, w.Proc)
	}
	return procs
}
