package job

import (
	"errors"
	"strings"
	"testing"
)

// requireInvalid checks that err, what fn returned, is ErrInvalidMessage about want, and
// short: it ends up in headers and logs.
func requireInvalid(t *testing.T, fn string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s error = %.200v, want ErrInvalidMessage about %q", fn, err, want)
	}
	if len(err.Error()) > MaxErrorBytes {
		t.Fatalf("the error is %d bytes long, want at most %d", len(err.Error()), MaxErrorBytes)
	}
}

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
		{"NUL in description", func(m *GenerateMessage) { m.JobDescription = "a\x00b" }, "jobDescription must not contain NUL"},
		{"NUL in cv", func(m *GenerateMessage) { m.CVText = "\x00" }, "cvText must not contain NUL"},
		{"invalid UTF-8 in cv", func(m *GenerateMessage) { m.CVText = "caf\xe9" }, "cvText must be valid UTF-8"},
		{"huge unknown tone", func(m *GenerateMessage) { m.Tone = Tone(strings.Repeat("t", 300<<10)) }, "tone"},
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
			requireInvalid(t, "Validate", err, tt.wantErr)
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

// DecodeGenerateMessage checks a body before it decodes it: size first (one 20 MiB body took a
// worker to 134 MB), then UTF-8 (encoding/json would silently replace invalid bytes).
func TestDecodeGenerateMessage(t *testing.T) {
	t.Parallel()
	valid := `{"jobId":"a-1","userId":1,"jobDescription":"d","cvText":"c"}`
	tests := []struct {
		name, body, wantErr string
	}{
		{"valid", valid, ""},
		{"oversize", `{"jobId":"a-1","userId":1,"jobDescription":"` + strings.Repeat("x", MaxGenerateMessageBytes) + `","cvText":"c"}`, "larger than"},
		{"invalid UTF-8", "{\"jobId\":\"a-1\",\"userId\":1,\"jobDescription\":\"caf\xe9\",\"cvText\":\"c\"}", "not valid UTF-8"},
		{"escaped NUL", `{"jobId":"a-1","userId":1,"jobDescription":"a\u0000b","cvText":"c"}`, "NUL"},
		{"not JSON", `{"jobId":`, "not a JSON job"},
		{"JSON but not a job", `[]`, "not a JSON job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := DecodeGenerateMessage([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil || m.JobID != "a-1" || m.Tone != ToneProfessional {
					t.Fatalf("DecodeGenerateMessage = %+v, %v", m, err)
				}
				return
			}
			requireInvalid(t, "DecodeGenerateMessage", err, tt.wantErr)
		})
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer text", 10, "a longe…"},
		{"ééééé", 6, "é…"},       // never cuts a rune in two
		{"a\x00b", 10, "a\x00b"}, // Clip cuts; it does not clean
	}
	for _, tt := range tests {
		if got := Clip(tt.in, tt.n); got != tt.want || len(got) > tt.n {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestSafeText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":                   "plain",
		"nul\x00here":             "nul\uFFFDhere",
		"bad\xff\xfeutf8":         "bad\uFFFDutf8",
		strings.Repeat("x", 2000): strings.Repeat("x", 97) + "…",
	} {
		if got := SafeText(in, 100); got != want {
			t.Errorf("SafeText(%.20q, 100) = %q, want %q", in, got, want)
		}
	}
}
