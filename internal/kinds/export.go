package kinds

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
)

const (
	// ExportExpireTask is the export kind's hourly task: exports whose 24 hours are over are
	// deleted (the api refuses them already: 410).
	ExportExpireTask = "data.export.expire"
	exportExpireCron = "23 * * * *"
	// exportExpireBatch is how many exports one transaction deletes.
	exportExpireBatch = 100
	// ExportFormat names the layout of the export's JSON document.
	ExportFormat = "careerops.export/1"
)

// ExportDeps are what exports need.
type ExportDeps struct {
	// Store reads the user's data and keeps the export.
	Store *jobstore.Store
}

// ExportResult is what a data.export job leaves: the export it wrote (its sizes and counts),
// or how many expired exports it deleted.
type ExportResult struct {
	ExportID     string `json:"exportId,omitempty"`
	JSONBytes    int    `json:"jsonBytes,omitempty"`
	ZIPBytes     int    `json:"zipBytes,omitempty"`
	CoverLetters int    `json:"coverLetters,omitempty"`
	Jobs         int    `json:"jobs,omitempty"`
	// Skipped says why nothing was written: "gone" (the export expired or its user was
	// erased before it ran).
	Skipped string `json:"skipped,omitempty"`
	Expired *int64 `json:"expired,omitempty"`
}

// Export is data.export: a user's data (their jobs and letters) written as one JSON document
// and a ZIP of the letters as .txt files, into the export of the job's id, which its owner
// downloads for 24 hours (POST /api/me/export). Hourly (data.export.expire), the exports
// whose 24 hours are over are deleted.
func Export(d ExportDeps) kind.Kind {
	k := kind.Kind{
		Spec:        jobstore.ExportSpec(),
		Timeout:     2 * time.Minute,
		Concurrency: 2,
		Retry:       kind.Retry{MaxAttempts: 5, BaseDelay: 5 * time.Second, MaxDelay: 5 * time.Minute},
		Schedules:   []kind.Schedule{{Task: ExportExpireTask, Cron: exportExpireCron, Args: json.RawMessage(`{"expire":true}`)}},
	}
	return kind.Define(k, func(ctx context.Context, j jobstore.Run, a jobstore.ExportArgs) (ExportResult, error) {
		if a.Expire {
			return expireExports(ctx, d)
		}
		return writeExport(ctx, d, j.UserID, a.ExportID)
	})
}

// writeExport reads the user's data and stores it in their export id.
func writeExport(ctx context.Context, d ExportDeps, userID int64, id string) (ExportResult, error) {
	data, err := d.Store.ReadUserData(ctx, userID)
	if err != nil {
		return ExportResult{}, err
	}
	w, err := ExportFiles(data, time.Now())
	if err != nil {
		return ExportResult{}, kind.Fail(job.ReasonInvalidMessage, err)
	}
	ok, err := d.Store.SaveExport(ctx, userID, id, w)
	switch {
	case err != nil:
		return ExportResult{}, err
	case !ok:
		return ExportResult{ExportID: id, Skipped: "gone"}, nil
	}
	return ExportResult{ExportID: id, JSONBytes: len(w.JSON), ZIPBytes: len(w.ZIP), CoverLetters: w.CoverLetters, Jobs: w.Jobs}, nil
}

// expireExports deletes the exports whose 24 hours are over, a batch a transaction.
func expireExports(ctx context.Context, d ExportDeps) (ExportResult, error) {
	var total int64
	for {
		n, err := d.Store.DeleteExpiredExports(ctx, exportExpireBatch)
		total += n
		if err != nil || n < exportExpireBatch {
			return ExportResult{Expired: &total}, err
		}
	}
}

// exportDocument is the export's JSON document (ExportFormat).
type exportDocument struct {
	Format       string              `json:"format"`
	ExportedAt   time.Time           `json:"exportedAt"`
	User         exportUser          `json:"user"`
	CoverLetters []exportCoverLetter `json:"coverLetters"`
	Jobs         []exportJob         `json:"jobs"`
	Emails       []exportEmail       `json:"emails"`
}

type exportUser struct {
	ID                 int64     `json:"id"`
	Email              *string   `json:"email"`
	EmailNotifications bool      `json:"emailNotifications"`
	CreatedAt          time.Time `json:"createdAt"`
}

type exportCoverLetter struct {
	JobID            string     `json:"jobId"`
	Status           job.Status `json:"status"`
	Tone             job.Tone   `json:"tone"`
	JobDescription   string     `json:"jobDescription"`
	CVText           string     `json:"cvText"`
	CoverLetter      string     `json:"coverLetter,omitempty"`
	Error            string     `json:"error,omitempty"`
	Attempts         int        `json:"attempts"`
	Model            string     `json:"model,omitempty"`
	PromptTokens     int        `json:"promptTokens"`
	CompletionTokens int        `json:"completionTokens"`
	CreatedAt        time.Time  `json:"createdAt"`
	CompletedAt      *time.Time `json:"completedAt,omitempty"`
}

type exportJob struct {
	Kind        string          `json:"kind"`
	JobID       string          `json:"jobId"`
	Status      string          `json:"status"`
	Args        json.RawMessage `json:"args"`
	Result      json.RawMessage `json:"result"`
	Error       string          `json:"error,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	CompletedAt *time.Time      `json:"completedAt,omitempty"`
}

type exportEmail struct {
	MessageID string    `json:"messageId"`
	JobID     string    `json:"jobId"`
	Outcome   string    `json:"outcome"`
	Recipient string    `json:"recipient"`
	SentAt    time.Time `json:"sentAt"`
}

// ExportFiles writes the user's data as of now: the JSON document (every field kept about
// them) and the ZIP of their letters, one .txt file each, named by date and job id.
func ExportFiles(d jobstore.UserData, now time.Time) (jobstore.ExportWritten, error) {
	doc := exportDocument{Format: ExportFormat, ExportedAt: now.UTC(), CoverLetters: []exportCoverLetter{}, Jobs: []exportJob{},
		Emails: []exportEmail{},
		User:   exportUser{ID: d.UserID, Email: d.Email, EmailNotifications: d.EmailNotifications, CreatedAt: d.CreatedAt}}
	for _, j := range d.CoverLetters {
		doc.CoverLetters = append(doc.CoverLetters, exportCoverLetter{JobID: j.ID, Status: j.Status, Tone: j.Tone,
			JobDescription: j.JobDescription, CVText: j.CVText, CoverLetter: j.CoverLetter, Error: j.Error, Attempts: j.Attempts,
			Model: j.Model, PromptTokens: j.PromptTokens, CompletionTokens: j.CompletionTokens, CreatedAt: j.CreatedAt, CompletedAt: j.CompletedAt})
	}
	for _, j := range d.Jobs {
		doc.Jobs = append(doc.Jobs, exportJob{Kind: j.Kind, JobID: j.ID, Status: j.Status, Args: j.Args, Result: j.Result,
			Error: j.Error, CreatedAt: j.CreatedAt, CompletedAt: j.CompletedAt})
	}
	for _, e := range d.Emails {
		doc.Emails = append(doc.Emails, exportEmail{MessageID: e.MessageID, JobID: e.JobID, Outcome: e.Outcome, Recipient: e.Recipient, SentAt: e.SentAt})
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return jobstore.ExportWritten{}, fmt.Errorf("export: encode: %w", err)
	}
	z, err := letterZIP(d.CoverLetters, now)
	if err != nil {
		return jobstore.ExportWritten{}, fmt.Errorf("export: zip: %w", err)
	}
	return jobstore.ExportWritten{JSON: body, ZIP: z, CoverLetters: len(d.CoverLetters), Jobs: len(d.Jobs)}, nil
}

// LetterFileName is the name of a letter's file in the ZIP: cover-letters/<date>-<job id>.txt.
func LetterFileName(j jobstore.Job) string {
	return fmt.Sprintf("cover-letters/%s-%s.txt", j.CreatedAt.UTC().Format("2006-01-02"), j.ID)
}

// letterZIP is a ZIP of the letters written (others have no text), and a README.txt.
func letterZIP(letters []jobstore.Job, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name, text string, at time.Time) error {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: at.UTC()})
		if err != nil {
			return err
		}
		_, err = f.Write([]byte(text))
		return err
	}
	n := 0
	for _, j := range letters {
		if j.CoverLetter == "" {
			continue
		}
		at := j.CreatedAt
		if j.CompletedAt != nil {
			at = *j.CompletedAt
		}
		if err := add(LetterFileName(j), j.CoverLetter, at); err != nil {
			return nil, err
		}
		n++
	}
	readme := fmt.Sprintf("Your CareerOps cover letters, exported %s: %d letter(s), one .txt file each in cover-letters/.\n"+
		"Everything else kept about you (job descriptions, CVs, statuses) is in the JSON export.\n", now.UTC().Format(time.RFC3339), n)
	if err := add("README.txt", readme, now); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
