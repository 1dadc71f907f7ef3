// Command fakeopenai serves a fake OpenAI chat-completions API that writes cover letters, for
// development, demos, tests and load tests; see internal/app and internal/fakeopenai. Run
// "fakeopenai --help".
//
// Every flag can also be set by an environment variable, FAKEOPENAI_ and the flag name in
// upper case, such as FAKEOPENAI_FAIL_RATE=0.1; flags win.
package main

import (
	"github.com/careerops/jobs/internal/app"
	"github.com/careerops/jobs/internal/cli"
)

func main() { cli.Main("fakeopenai", app.FakeOpenAI(app.Options{})) }
