package database

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsDataError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "22021"}, true},                          // invalid byte sequence (a NUL)
		{fmt.Errorf("store: %w", &pgconn.PgError{Code: "23505"}), true}, // unique violation, wrapped
		{&pgconn.PgError{Code: "22P02"}, true},                          // invalid text representation
		{&pgconn.PgError{Code: "08006"}, false},                         // connection failure
		{&pgconn.PgError{Code: "57P01"}, false},                         // admin shutdown
		{&pgconn.PgError{Code: "40001"}, false},                         // serialization failure
		{&pgconn.PgError{Code: "53300"}, false},                         // too many connections
		{context.DeadlineExceeded, false},
		{errors.New("dial tcp: connection refused"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsDataError(tt.err); got != tt.want {
			t.Errorf("IsDataError(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
