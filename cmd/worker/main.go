// Command worker is the CareerOps worker; see internal/app. Run "worker --help".
package main

import (
	"github.com/careerops/jobs/internal/app"
	"github.com/careerops/jobs/internal/cli"
)

func main() { cli.Main("worker", app.Worker(app.Options{})) }
