package kinds_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/testkit"
)

// exportDoc is the part of the JSON document the test reads.
type exportDoc struct {
	Format string `json:"format"`
	User   struct {
		ID    int64   `json:"id"`
		Email *string `json:"email"`
	} `json:"user"`
	CoverLetters []struct {
		JobID          string `json:"jobId"`
		Status         string `json:"status"`
		JobDescription string `json:"jobDescription"`
		CVText         string `json:"cvText"`
		CoverLetter    string `json:"coverLetter"`
	} `json:"coverLetters"`
	Jobs []struct {
		Kind  string `json:"kind"`
		JobID string `json:"jobId"`
	} `json:"jobs"`
}

// An export, end to end on the real services: asked for through the store as the API asks,
// enqueued through the outbox, written by the data.export worker, downloaded as JSON and as a
// ZIP (read back with archive/zip) holding the user's letters and nobody else's; then expired
// and removed by the kind's hourly task.
func TestExportWritesTheUsersDataAndExpires(t *testing.T) {
	t.Parallel()
	st := run(t, func(s *jobstore.Store) kind.Kind { return kinds.Export(kinds.ExportDeps{Store: s}) })
	ctx, pool := context.Background(), st.store.Pool()
	ada, err := st.store.AddUser(ctx, "ada@example.org")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := st.store.AddUser(ctx, "bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	testkit.InsertLetter(t, pool, ada, "ada-1", job.StatusCompleted, "Dear Ada's employer,\nfirst letter.")
	testkit.InsertLetter(t, pool, ada, "ada-2", job.StatusCompleted, "Dear Ada's employer,\nsecond letter.")
	testkit.InsertLetter(t, pool, ada, "ada-3", job.StatusFailed, "")
	testkit.InsertLetter(t, pool, bob, "bob-1", job.StatusCompleted, "Bob's letter.")

	e, created, err := st.store.CreateExport(ctx, ada, nil)
	if err != nil || !created || e.Status != string(job.StatusPending) || e.ExpiresAt.Sub(e.CreatedAt) != 24*time.Hour {
		t.Fatalf("CreateExport = %+v, %v, %v", e, created, err)
	}
	if again, created, err := st.store.CreateExport(ctx, ada, nil); err != nil || created || again.ID != e.ID {
		t.Fatalf("a second export while the first is written = %+v, %v, %v; want the first", again, created, err)
	}
	if _, _, err := st.store.ExportFile(ctx, bob, e.ID, "json"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Fatalf("bob reads ada's export: %v, want ErrNotFound", err)
	}
	if j := st.final(t, e.ID); j.Status != job.StatusCompleted {
		t.Fatalf("the export's job = %+v", j)
	}
	got, err := st.store.GetExport(ctx, ada, e.ID)
	if err != nil || got.Status != job.ExportReady || got.CoverLetters != 3 || got.JSONBytes == 0 || got.ZIPBytes == 0 {
		t.Fatalf("ready export = %+v, %v", got, err)
	}

	body, _, err := st.store.ExportFile(ctx, ada, e.ID, "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc exportDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("the JSON export does not decode: %v", err)
	}
	var ids []string
	for _, l := range doc.CoverLetters {
		ids = append(ids, l.JobID)
	}
	if doc.Format != kinds.ExportFormat || doc.User.ID != ada || doc.User.Email == nil || *doc.User.Email != "ada@example.org" ||
		!slices.Equal(ids, []string{"ada-1", "ada-2", "ada-3"}) || doc.CoverLetters[0].CoverLetter != "Dear Ada's employer,\nfirst letter." ||
		doc.CoverLetters[0].CVText != "CV of user "+itoa(ada) || len(doc.Jobs) != 1 || doc.Jobs[0].Kind != job.KindExport {
		t.Fatalf("the JSON export = %s", body)
	}
	if strings.Contains(string(body), "Bob") || strings.Contains(string(body), "bob-1") {
		t.Fatal("ada's export holds bob's data")
	}

	zipped, _, err := st.store.ExportFile(ctx, ada, e.ID, "zip")
	if err != nil {
		t.Fatal(err)
	}
	files := readZIP(t, zipped)
	if len(files) != 3 || !strings.Contains(files["README.txt"], "2 letter(s)") {
		t.Fatalf("the ZIP holds %v", keys(files))
	}
	for name, text := range files {
		if strings.HasPrefix(name, "cover-letters/") && (!strings.HasSuffix(name, ".txt") || !strings.HasPrefix(text, "Dear Ada's employer")) {
			t.Fatalf("%s = %q", name, text)
		}
	}

	// 24 hours on: the api refuses it, the hourly task removes it.
	if _, err := pool.Exec(ctx, `UPDATE exports SET expires_at = now() - interval '1 second' WHERE id = $1`, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.store.GetExport(ctx, ada, e.ID); !errors.Is(err, jobstore.ErrExpired) {
		t.Fatalf("an expired export: %v, want ErrExpired", err)
	}
	if _, _, err := st.store.ExportFile(ctx, ada, e.ID, "zip"); !errors.Is(err, jobstore.ErrExpired) {
		t.Fatalf("an expired export's file: %v, want ErrExpired", err)
	}
	var system int64
	if err := pool.QueryRow(ctx, `SELECT id FROM users WHERE email = $1`, job.SystemUserEmail).Scan(&system); err != nil {
		t.Fatal(err)
	}
	expire, err := st.runs.EnqueueNow(ctx, jobstore.NewRun{UserID: system, Args: json.RawMessage(`{"expire":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	var res kinds.ExportResult
	if j := st.final(t, expire); j.Status != job.StatusCompleted || json.Unmarshal(j.Result, &res) != nil || res.Expired == nil || *res.Expired != 1 {
		t.Fatalf("the expiry job = %+v (%s)", j, j.Result)
	}
	if _, err := st.store.GetExport(ctx, ada, e.ID); !errors.Is(err, jobstore.ErrNotFound) {
		t.Fatalf("a removed export: %v, want ErrNotFound", err)
	}
}

// The arguments of data.export ask for one thing.
func TestExportArgs(t *testing.T) {
	t.Parallel()
	k := kinds.Export(kinds.ExportDeps{})
	for _, tt := range []struct {
		args string
		ok   bool
	}{
		{`{"exportId":"0193a0c0-0000-7000-8000-000000000001"}`, true},
		{`{"expire":true}`, true},
		{`{}`, false},
		{`{"exportId":"x","expire":true}`, false},
		{`{"exportId":"has space"}`, false},
		{`{"exportId":"a","extra":1}`, false},
	} {
		if _, err := k.Decode(json.RawMessage(tt.args)); (err == nil) != tt.ok {
			t.Errorf("Decode(%s) = %v, want ok %v", tt.args, err, tt.ok)
		}
	}
	if len(k.Schedules) != 1 || k.Schedules[0].Task != kinds.ExportExpireTask {
		t.Fatalf("schedules = %+v", k.Schedules)
	}
}

// The files of an export, from the data alone: a letter per .txt file named by date and id,
// the letters not written left out of the ZIP but kept in the JSON.
func TestExportFiles(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		letters []jobstore.Job
		want    []string // the ZIP's files
	}{
		{"none", nil, []string{"README.txt"}},
		{"one written, one failed", []jobstore.Job{
			{ID: "a", Status: job.StatusCompleted, CoverLetter: "Hello", CreatedAt: at},
			{ID: "b", Status: job.StatusFailed, CreatedAt: at},
		}, []string{"README.txt", "cover-letters/2026-12-05-a.txt"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := kinds.ExportFiles(jobstore.UserData{UserID: 7, CoverLetters: tt.letters}, at)
			if err != nil {
				t.Fatal(err)
			}
			files := readZIP(t, w.ZIP)
			if got := keys(files); !slices.Equal(got, tt.want) {
				t.Fatalf("ZIP files = %v, want %v", got, tt.want)
			}
			var doc exportDoc
			if err := json.Unmarshal(w.JSON, &doc); err != nil || len(doc.CoverLetters) != len(tt.letters) || doc.Jobs == nil {
				t.Fatalf("JSON = %s, %v", w.JSON, err)
			}
		})
	}
}

func readZIP(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("the ZIP does not open: %v", err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = string(text)
	}
	return files
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
