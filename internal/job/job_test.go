package job

import (
	"errors"
	"strings"
	"testing"
)

func TestGenerateMessageValidate(t *testing.T) {
	t.Parallel()
	valid := func() GenerateMessage {
		return GenerateMessage{JobID: "0190c0de-aaaa-7000-8000-000000000001", UserID: 7, JobDescription: "Role", CVText: "CV"}
	}
	tests := []struct {
		name    string
		edit    func(*GenerateMessage)
		wantErr string
	}{
		{"valid with default tone", func(*GenerateMessage) {}, ""},
		{"valid foreign id", func(m *GenerateMessage) { m.JobID = "express:123_a.b" }, ""},
		{"empty job id", func(m *GenerateMessage) { m.JobID = "" }, "jobId"},
		{"job id with spaces", func(m *GenerateMessage) { m.JobID = "a b" }, "jobId"},
		{"job id too long", func(m *GenerateMessage) { m.JobID = strings.Repeat("a", 65) }, "jobId"},
		{"job id starting with a dash", func(m *GenerateMessage) { m.JobID = "-a" }, "jobId"},
		{"zero user", func(m *GenerateMessage) { m.UserID = 0 }, "userId"},
		{"negative user", func(m *GenerateMessage) { m.UserID = -1 }, "userId"},
		{"no description", func(m *GenerateMessage) { m.JobDescription = "" }, "jobDescription is required"},
		{"huge description", func(m *GenerateMessage) { m.JobDescription = strings.Repeat("x", MaxJobDescriptionBytes+1) }, "too long"},
		{"no cv", func(m *GenerateMessage) { m.CVText = "" }, "cvText is required"},
		{"huge cv", func(m *GenerateMessage) { m.CVText = strings.Repeat("x", MaxCVTextBytes+1) }, "too long"},
		{"unknown tone", func(m *GenerateMessage) { m.Tone = "angry" }, "tone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := valid()
			tt.edit(&m)
			err := m.Validate()
			if tt.wantErr == "" {
				if err != nil || !m.Tone.Valid() {
					t.Fatalf("Validate = %v, tone %q", err, m.Tone)
				}
				return
			}
			if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalidMessage about %q", err, tt.wantErr)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, s := range []Status{StatusPending, StatusProcessing, StatusCompleted, StatusFailed, StatusCancelled} {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	if Status("done").Valid() || StatusPending.Final() || StatusProcessing.Final() || !StatusCompleted.Final() || !StatusFailed.Final() {
		t.Fatal("status predicates are wrong")
	}
}
