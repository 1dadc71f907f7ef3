// Package fakeopenai is an OpenAI-compatible chat-completions server for
// development, demos, tests and load tests. It answers exactly like the
// OpenAI API on the wire, so clients such as go-openai talk to it unchanged
// (BaseURL "http://HOST:PORT/v1", any non-empty API key), but instead of
// calling a model it writes a plausible, deterministic cover letter built from
// the job description and CV found in the prompt.
//
// Routes:
//
//	POST /v1/chat/completions  chat completion, streamed with "stream": true
//	GET  /v1/models            the configured model
//	GET  /healthz              200 "ok"
//	GET  /_fake/faults         current fault knobs as JSON
//	PUT  /_fake/faults         replace them: {"latency":"2s","failRate":0.3,"rateLimitRate":0.2}
//	GET  /_fake/stats          {"requests":N,"completed":N,"failed":N,"rateLimited":N,"canceled":N}
//
// Every chat completion first waits for the latency (a stream waits a
// quarter of it and spreads the rest between its chunks), then, with
// probability RateLimitRate, answers 429 (with Retry-After), else, with
// probability FailRate, answers 500. Faults are rolled from a math/rand/v2
// source seeded by Config.Seed.
//
// # Markers
//
// Tests get deterministic behaviour by putting markers in any message:
//
//	[[fakeopenai:status=503]]     always answer 503 (any 4xx or 5xx code)
//	[[fakeopenai:fail=429x2]]     answer 429 to the first 2 requests with this exact
//	                              prompt (all message contents), then succeed;
//	                              "fail=500" is short for "fail=500x1"
//	[[fakeopenai:latency=300ms]]  use this latency instead of the configured one
//
// Markers may be combined, as in "[[fakeopenai:fail=500x1]] [[fakeopenai:latency=50ms]]",
// and status and fail markers override the random faults. A malformed marker
// is answered with 400.
package fakeopenai
