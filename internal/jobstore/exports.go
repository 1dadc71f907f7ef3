package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/job"
)

// Errors of exports, beside ErrNotFound (no such export of the user's).
var (
	// ErrExpired means the export's 24 hours are over: it is gone, or about to be.
	ErrExpired = errors.New("export expired")
	// ErrNotReady means the export is still being written (or failed): nothing to download.
	ErrNotReady = errors.New("export not ready")
)

// ExportSpec is how the store keeps the data.export kind: in the shared jobs table.
func ExportSpec() Spec { return Spec{Name: job.KindExport, Table: SharedTable(job.KindExport)} }

// ExportArgs are a data.export job's arguments: the export to write, or (the kind's hourly
// task) Expire to delete the exports whose 24 hours are over.
type ExportArgs struct {
	ExportID string `json:"exportId,omitempty"`
	Expire   bool   `json:"expire,omitempty"`
}

// Validate checks that the arguments ask for one thing.
func (a *ExportArgs) Validate() error {
	switch {
	case a.Expire && a.ExportID != "":
		return errors.New("exportId and expire exclude each other")
	case !a.Expire && !job.ValidID(a.ExportID):
		return errors.New("exportId must be an export's id")
	}
	return nil
}

// Export is one export of a user's data, as its owner sees it.
type Export struct {
	ID     string
	UserID int64
	// Status is the export's: ready once written, else its job's (pending, processing,
	// failed).
	Status       string
	Error        string
	JSONBytes    int
	ZIPBytes     int
	CoverLetters int
	Jobs         int
	CreatedAt    time.Time
	ReadyAt      *time.Time
	ExpiresAt    time.Time
	Expired      bool
}

// exportColumns are an Export's columns, from exports e and its job j.
const exportColumns = `e.id, e.user_id,
	CASE WHEN e.status = 'ready' THEN 'ready' ELSE coalesce(j.status, 'pending') END,
	CASE WHEN e.status = 'ready' THEN '' ELSE coalesce(j.error_message, '') END,
	coalesce(e.json_bytes, 0), coalesce(e.zip_bytes, 0), coalesce(e.cover_letters, 0), coalesce(e.jobs, 0),
	e.created_at, e.ready_at, e.expires_at, e.expires_at <= now()`

const exportFrom = ` FROM exports e LEFT JOIN jobs j ON j.job_id = e.job_id `

func scanExport(row pgx.Row, extra ...any) (Export, error) {
	var e Export
	err := row.Scan(append([]any{&e.ID, &e.UserID, &e.Status, &e.Error, &e.JSONBytes, &e.ZIPBytes, &e.CoverLetters,
		&e.Jobs, &e.CreatedAt, &e.ReadyAt, &e.ExpiresAt, &e.Expired}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Export{}, ErrNotFound
	}
	if err != nil {
		return Export{}, fmt.Errorf("jobstore: scan export: %w", err)
	}
	return e, nil
}

// CreateExport asks for an export of the user's data: a pending export and its data.export
// job (of the same id), enqueued in one transaction. While an export of theirs is still
// being written, it is returned instead (created false): one at a time. ErrUnknownUser if
// the user does not exist (or is being erased).
func (s *Store) CreateExport(ctx context.Context, userID int64, headers map[string]string) (Export, bool, error) {
	var (
		e       Export
		created bool
	)
	err := s.outboxTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockUser(ctx, tx, userID); err != nil { // an erasure waits for this, or this for it
			return err
		}
		var err error
		e, err = scanExport(tx.QueryRow(ctx, `SELECT `+exportColumns+exportFrom+`
			WHERE e.user_id = $1 AND e.status = 'pending' AND j.status IN ('pending', 'processing') AND e.expires_at > now()
			ORDER BY e.created_at DESC LIMIT 1`, userID))
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		args, err := json.Marshal(ExportArgs{ExportID: id.String()})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO exports (id, user_id, job_id) VALUES ($1, $2, $1)`, id.String(), userID); err != nil {
			return err
		}
		if _, err := Enqueue(ctx, tx, ExportSpec(), NewRun{ID: id.String(), UserID: userID, Args: args, Headers: headers}); err != nil {
			return err
		}
		created = true
		e, err = scanExport(tx.QueryRow(ctx, `SELECT `+exportColumns+exportFrom+`WHERE e.id = $1`, id.String()))
		return err
	})
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		return Export{}, false, fmt.Errorf("jobstore: create export: %w", err)
	}
	return e, created, err
}

// GetExport returns the user's export id: ErrNotFound if there is none of theirs, ErrExpired
// once its 24 hours are over.
func (s *Store) GetExport(ctx context.Context, userID int64, id string) (Export, error) {
	e, err := scanExport(s.pool.QueryRow(ctx, `SELECT `+exportColumns+exportFrom+`WHERE e.id = $1 AND e.user_id = $2`, id, userID))
	switch {
	case err != nil:
		return Export{}, err
	case e.Expired:
		return Export{}, ErrExpired
	}
	return e, nil
}

// ExportFile returns a file of the user's ready export: format is "json" or "zip" (the
// columns that hold them). ErrNotFound, ErrExpired, or ErrNotReady while it is being written.
func (s *Store) ExportFile(ctx context.Context, userID int64, id, format string) ([]byte, Export, error) {
	if format != "json" && format != "zip" {
		return nil, Export{}, fmt.Errorf("jobstore: no export format %q", format)
	}
	column := format
	var body []byte
	e, err := scanExport(s.pool.QueryRow(ctx, `SELECT `+exportColumns+`, e.`+column+exportFrom+`WHERE e.id = $1 AND e.user_id = $2`,
		id, userID), &body)
	switch {
	case err != nil:
		return nil, Export{}, err
	case e.Expired:
		return nil, Export{}, ErrExpired
	case e.Status != job.ExportReady:
		return nil, e, ErrNotReady
	}
	return body, e, nil
}

// ExportWritten is what the data.export job writes into its export.
type ExportWritten struct {
	JSON, ZIP          []byte
	CoverLetters, Jobs int
}

// SaveExport stores the files of the user's export and makes it ready; false if it is gone
// (expired and removed, or its user erased) or not the user's. Saving again overwrites: a retried job is
// harmless.
func (s *Store) SaveExport(ctx context.Context, userID int64, id string, w ExportWritten) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE exports SET status = 'ready', json = $3, zip = $4, json_bytes = $5, zip_bytes = $6,
			cover_letters = $7, jobs = $8, ready_at = now()
		WHERE id = $1 AND user_id = $2`, id, userID, w.JSON, w.ZIP, len(w.JSON), len(w.ZIP), w.CoverLetters, w.Jobs)
	if err != nil {
		return false, fmt.Errorf("jobstore: save export %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteExpiredExports deletes up to batch exports whose 24 hours are over, oldest first, and
// returns how many it deleted.
func (s *Store) DeleteExpiredExports(ctx context.Context, batch int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM exports WHERE id IN (
			SELECT id FROM exports WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch)
	if err != nil {
		return 0, fmt.Errorf("jobstore: delete expired exports: %w", err)
	}
	return tag.RowsAffected(), nil
}
