// Command api is the CareerOps HTTP API; see internal/app. Run "api --help".
package main

import (
	"github.com/careerops/jobs/internal/app"
	"github.com/careerops/jobs/internal/cli"
)

func main() { cli.Main("api", app.API(app.Options{})) }
