package httpapi

import (
	"slices"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestRouteTableTellsAWrongMethodFromAnUnknownPath(t *testing.T) {
	t.Parallel()
	table := newRouteTable([]fiber.Route{
		{Method: "POST", Path: "/api/cover-letter"},
		{Method: "GET", Path: "/api/cover-letter/status/:jobId"},
		{Method: "HEAD", Path: "/api/cover-letter/status/:jobId"},
		{Method: "DELETE", Path: "/api/cover-letter/:jobId"},
		{Method: "GET", Path: "/assets/*"},
	})
	tests := []struct {
		path string
		want []string
	}{
		{"/api/cover-letter", []string{"POST"}},
		{"/api/cover-letter/", []string{"POST"}},
		{"/api/cover-letter/status/abc", []string{"GET", "HEAD"}},
		{"/api/cover-letter/abc", []string{"DELETE"}},
		{"/api/cover-letter/abc/def", nil},
		{"/assets/app/x.js", []string{"GET"}},
		{"/nothing", nil},
	}
	for _, tt := range tests {
		if got := table.allowed(tt.path); !slices.Equal(got, tt.want) {
			t.Errorf("allowed(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
