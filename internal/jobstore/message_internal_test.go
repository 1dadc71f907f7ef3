package jobstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
)

// The api's one-pass cover-letter body is the body every kind's message has: the envelope
// beside the arguments, as job.EncodeMessage writes it (retries and the reaper use that).
func TestCoverLetterMessageIsTheKindsMessage(t *testing.T) {
	t.Parallel()
	j := Job{ID: "job-1", UserID: 7, JobDescription: "Engineer <b>", CVText: "CV", Tone: job.ToneConcise,
		CreatedAt: time.Date(2026, 12, 4, 10, 0, 0, 123, time.UTC), Attempts: 2}
	fast, err := coverLetterMessage(j, map[string]string{"traceparent": "tp"})
	if err != nil {
		t.Fatal(err)
	}
	args, err := json.Marshal(job.CoverLetterArgs{JobDescription: j.JobDescription, CVText: j.CVText, Tone: j.Tone})
	if err != nil {
		t.Fatal(err)
	}
	generic, err := message(job.QueueGenerate, j.ID, j.UserID, j.CreatedAt, j.Attempts, args, map[string]string{"traceparent": "tp"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	if err := json.Unmarshal(fast.Body, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(generic.Body, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) || fast.MessageID != generic.MessageID || fast.RoutingKey != generic.RoutingKey {
		t.Fatalf("one pass: %s %s\ngeneric:  %s %s", fast.MessageID, fast.Body, generic.MessageID, generic.Body)
	}
}

func TestWithoutNUL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a":"x"}`:            `{"a":"x"}`,
		`{"a":"x\u0000y"}`:     `{"a":"x\ufffdy"}`,
		`{"a":"x\\u0000y"}`:    `{"a":"x\\u0000y"}`, // an escaped backslash, then text
		`{"a":"\\\u0000"}`:     `{"a":"\\\ufffd"}`,
		`{"a":"\u0000\u0000"}`: `{"a":"\ufffd\ufffd"}`,
	} {
		if got := string(withoutNUL([]byte(in))); got != want {
			t.Errorf("withoutNUL(%s) = %s, want %s", in, got, want)
		}
	}
}
