package llm

import (
	"encoding/json"
	"reflect"
	"testing"
)

// chunks are chat.completion.chunk bodies as providers send them, and a few they should not.
var chunks = []struct{ name, raw string }{
	{"role", `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1796505639,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`},
	{"escapes", `{"id":"chatcmpl-1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"\n\nDear \"Acme\",\ttab \\ back\/slash"},"finish_reason":null}]}`},
	{"unicode", `{"id":"chatcmpl-1","model":"m","choices":[{"delta":{"content":"Caf\u00e9 \ud83d\ude00 na\u00efve – 日本"}}]}`},
	{"lone surrogate", `{"id":"x","choices":[{"delta":{"content":"\ud83d end"}}]}`},
	{"finish", `{"id":"chatcmpl-1","model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}`},
	{"usage", `{"id":"chatcmpl-1","model":"m","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":262,"total_tokens":270,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":64,"audio_tokens":0}}}`},
	{"null usage", `{"id":"chatcmpl-1","choices":[{"delta":{"content":"x"}}],"usage":null}`},
	{"two choices", `{"id":"c","choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"},"finish_reason":"stop"}]}`},
	{"unknown fields", `{"id":"c","obfuscation":"abc","choices":[{"delta":{"content":"x","refusal":null,"tool_calls":[{"index":0}]},"content_filter_results":{"hate":{"filtered":false}}}]}`},
	{"case folded keys", `{"ID":"c","Choices":[{"Delta":{"Content":"x"}}]}`},
	{"empty object", `{}`},
	{"wrong type", `{"id":"c","choices":{"delta":"x"}}`},
	{"number as text", `{"id":7,"choices":[]}`},
	{"truncated", `{"id":"c","choices":[{"delta":{"content":"x`},
	{"not json", `event: ping`},
	{"trailing garbage", `{"id":"c"} {"id":"d"}`},
	{"empty", ``},
}

// TestDecodeChunkAgreesWithEncodingJSON: the stream's decoder reads every chunk as
// encoding/json does, and refuses what it refuses.
func TestDecodeChunkAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, c := range chunks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var want streamChunk
			wantErr := json.Unmarshal([]byte(c.raw), &want)
			got, err := decodeChunk([]byte(c.raw))
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("error %v, encoding/json says %v", err, wantErr)
			}
			if wantErr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v\nencoding/json %+v", got, want)
			}
		})
	}
}

func BenchmarkDecodeChunk(b *testing.B) {
	raw := []byte(chunks[1].raw)
	b.Run("goccy", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeChunk(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var c streamChunk
			if err := json.Unmarshal(raw, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
