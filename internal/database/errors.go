package database

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsDataError reports whether PostgreSQL refused err's statement for its data: SQLSTATE class
// 22 (a bad value, such as a NUL in text or an invalid byte sequence) or 23 (a constraint).
// Sent again, the same data fails again; any other failure (the server unreachable or
// restarting, a conflict, a timeout) may pass by itself.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
}
