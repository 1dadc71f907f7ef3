// Command careeropsctl is the CareerOps admin CLI: schema migrations, users, tokens and the
// dead-letter queue; see internal/ctlcmd. Run "careeropsctl --help".
package main

import (
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/ctlcmd"
)

func main() { cli.Main("careeropsctl", ctlcmd.Run) }
