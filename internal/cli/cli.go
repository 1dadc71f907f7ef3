// Package cli holds what every program's main shares: how an error ends the process.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrUsage marks a mistake on the command line; the process exits 2.
var ErrUsage = errors.New("usage")

// Exit ends the process for run's result: 0 for nil, else the error as one line on stderr
// and 2 for usage errors, 1 for the rest.
func Exit(program string, err error) {
	if err == nil {
		os.Exit(0)
	}
	code := 1
	if errors.Is(err, ErrUsage) {
		code = 2
	}
	Report(os.Stderr, program, err)
	os.Exit(code)
}

// Report writes err as one line: multi-line messages (some drivers write them) are folded.
func Report(w io.Writer, program string, err error) {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
	fmt.Fprintf(w, "%s: %s\n", program, msg)
}
