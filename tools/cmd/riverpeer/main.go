// Command riverpeer is the bench's River peer (package tools/riverpeer, docs/benchmarks.md):
// "riverpeer api" serves our POST /api/cover-letter on River, "riverpeer worker" works its jobs.
package main

import (
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/tools/riverpeer"
)

func main() { cli.Main("riverpeer", riverpeer.Run) }
