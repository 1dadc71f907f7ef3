package fakeopenai

import (
	"strings"
	"testing"
	"time"
)

func TestParseDirectives(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    directives
		wantErr string
	}{
		{name: "none", text: "Job description: ..."},
		{name: "status", text: "x [[fakeopenai:status=503]] y", want: directives{status: 503}},
		{name: "fail", text: "[[fakeopenai:fail=429x2]]", want: directives{failStatus: 429, failTimes: 2}},
		{name: "fail once", text: "[[fakeopenai:fail=500]]", want: directives{failStatus: 500, failTimes: 1}},
		{name: "latency", text: "[[fakeopenai:latency=300ms]]", want: directives{latency: 300 * time.Millisecond, hasLatency: true}},
		{name: "zero latency", text: "[[fakeopenai:latency=0s]]", want: directives{hasLatency: true}},
		{
			name: "combined", text: "[[fakeopenai:fail=500x1]] [[fakeopenai:latency=50ms]]",
			want: directives{failStatus: 500, failTimes: 1, latency: 50 * time.Millisecond, hasLatency: true},
		},
		{name: "spaces", text: "[[fakeopenai: status = 404 ]]", want: directives{status: 404}},
		{name: "finish length", text: "[[fakeopenai:finish=length]]", want: directives{finish: "length"}},
		{name: "finish filtered", text: "[[fakeopenai:finish=content_filter]]", want: directives{finish: "content_filter"}},
		{name: "empty answer", text: "[[fakeopenai:answer=empty]]", want: directives{answer: "empty"}},
		{name: "blank answer", text: "[[fakeopenai:answer=blank]]", want: directives{answer: "blank"}},
		{name: "prompt filter", text: "[[fakeopenai:filter=prompt]]", want: directives{filter: "prompt"}},
		{name: "bad finish", text: "[[fakeopenai:finish=stop]]", wantErr: "finish=length|content_filter"},
		{name: "bad answer", text: "[[fakeopenai:answer=long]]", wantErr: "answer=empty|blank"},
		{name: "success status", text: "[[fakeopenai:status=200]]", wantErr: "400..599"},
		{name: "bad count", text: "[[fakeopenai:fail=429x0]]", wantErr: "N >= 1"},
		{name: "bad latency", text: "[[fakeopenai:latency=-1s]]", wantErr: "non-negative"},
		{name: "unknown key", text: "[[fakeopenai:explode=1]]", wantErr: "unknown key"},
		{name: "unclosed", text: "[[fakeopenai:status=500", wantErr: "not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDirectives([]message{{Role: "system", Content: "hi"}, {Role: "user", Content: content(tt.text)}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want one about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func TestStripMarkers(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no markers", "no markers"},
		{"a [[fakeopenai:status=500]]b", "a b"},
		{"[[fakeopenai:fail=500x1]] [[fakeopenai:latency=5ms]]", " "},
		{"a [[fakeopenai:unclosed", "a "},
	}
	for _, tt := range tests {
		if got := stripMarkers(tt.in); got != tt.want {
			t.Errorf("stripMarkers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
