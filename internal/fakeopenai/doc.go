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
// # Profiles
//
// Config.Profile (fakeopenai --profile) picks the provider whose wire format
// and refusals the server reproduces, after the providers' API references:
//
//	openai  the default. A bearer key. Reasoning models (o1, o3, o4…, gpt-5
//	        and later, also as "openai/o3") refuse max_tokens (400
//	        unsupported_parameter, param max_tokens) and a temperature other
//	        than 1 (400 unsupported_value), and report
//	        usage.completion_tokens_details.reasoning_tokens, counted in
//	        completion_tokens and against max_completion_tokens. Usage in a
//	        stream only with stream_options.include_usage. x-ratelimit-limit-,
//	        -remaining- and -reset-requests/-tokens headers (10,000 requests and
//	        2,000,000 tokens a minute).
//	azure   Azure OpenAI. POST /openai/deployments/{deployment}/chat/completions
//	        ?api-version=… (404 "Resource not found" without it), the api-key
//	        header (or an Entra ID bearer token), the deployment as model.
//	        prompt_filter_results on the completion (a stream's first chunk,
//	        without choices) and content_filter_results on each choice;
//	        Azure's error bodies ({"error":{"code":"429","message":…}}), and its
//	        content-filter 400 (code content_filter, innererror
//	        ResponsibleAIPolicyViolation with content_filter_result).
//	        Reasoning models and usage as openai; only the remaining
//	        x-ratelimit headers.
//	vllm    vLLM's OpenAI-compatible server. A bearer key, any model and
//	        parameter, no usage in streams (stream_options ignored, as servers
//	        and proxies that do not honour it), flat error bodies
//	        {"object":"error","message":…,"type":…,"param":null,"code":400}, no
//	        rate-limit headers.
//	ollama  Ollama's /v1 layer. The key is ignored, any model and parameter, no
//	        usage in streams, no rate-limit headers.
//
// Every profile caps the answer at max_completion_tokens or max_tokens
// (finish_reason "length").
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
//	[[fakeopenai:finish=length]]  the answer stops a third of the way, finish_reason
//	                              "length"; finish=content_filter: the same with
//	                              "content_filter" (no content when not streamed, and
//	                              Azure's verdict filtered)
//	[[fakeopenai:answer=empty]]   the answer is ""; answer=blank: only whitespace
//	[[fakeopenai:filter=prompt]]  the content filter refuses the prompt with 400:
//	                              Azure's content_filter error, elsewhere OpenAI's
//	                              invalid_prompt (vLLM: its flat error)
//
// Markers may be combined, as in "[[fakeopenai:fail=500x1]] [[fakeopenai:latency=50ms]]",
// and status and fail markers override the random faults. A malformed marker
// is answered with 400.
package fakeopenai
