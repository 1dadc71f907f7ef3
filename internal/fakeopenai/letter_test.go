package fakeopenai

import (
	"strings"
	"testing"

	"github.com/careerops/jobs/internal/job"
	careerprompt "github.com/careerops/jobs/internal/prompt"
)

// jobAndCV is the job description and CV the letter and server tests ask about
// (server_test.go reads it as fakeopenai.JobAndCV, see export_test.go).
const jobAndCV = `Job description:
Senior Backend Engineer at Acme Robotics
We are hiring a Senior Backend Engineer to build our fleet platform in Go. You will design APIs on PostgreSQL and Kafka, and run services on Kubernetes and AWS.

CV:
Jane Doe
Backend engineer with 7 years of experience. Built payment services in Go at Stripe, migrated workloads to Kubernetes, tuned PostgreSQL.`

const prompt = "Write a cover letter.\n\nTone: %s\n\n" + jobAndCV

func letterFor(text string) string {
	msgs := []message{{Role: "system", Content: "You write cover letters."}, {Role: "user", Content: content(text)}}
	hash, _ := hashPrompt(msgs)
	return composeLetter(msgs, hash)
}

// paragraphs returns the paragraphs between the greeting and the sign-off.
func paragraphs(t *testing.T, letter string) []string {
	t.Helper()
	blocks := strings.Split(letter, "\n\n")
	if blocks[0] != "Dear Hiring Manager," || !strings.HasPrefix(blocks[len(blocks)-1], "Sincerely,") {
		t.Fatalf("letter lacks the greeting or sign-off:\n%s", letter)
	}
	return blocks[1 : len(blocks)-1]
}

func TestLetterHasFourParagraphsOfPlausibleLength(t *testing.T) {
	tests := []struct {
		tone               string
		minWords, maxWords int
	}{
		{"professional", 150, 250},
		{"friendly", 150, 250},
		{"concise", 60, 150},
		{"unheard-of", 150, 250},
	}
	for _, tt := range tests {
		t.Run(tt.tone, func(t *testing.T) {
			letter := letterFor(strings.Replace(prompt, "%s", tt.tone, 1))
			if n := len(paragraphs(t, letter)); n != 4 {
				t.Errorf("got %d paragraphs, want 4", n)
			}
			if n := len(strings.Fields(letter)); n < tt.minWords || n > tt.maxWords {
				t.Errorf("got %d words, want %d to %d:\n%s", n, tt.minWords, tt.maxWords, letter)
			}
		})
	}
}

func TestLetterQuotesJobDescriptionAndCV(t *testing.T) {
	letter := letterFor(strings.Replace(prompt, "%s", "professional", 1))
	for _, want := range []string{
		"the Senior Backend Engineer position at Acme Robotics", // role and company, from the first line
		"Go, PostgreSQL, and Kubernetes",                        // skills in both
		"APIs",                                                  // a term of the job description only
		"most recently at Stripe",                               // an employer from the CV
		"Over the past 7 years",
		"Sincerely,\nJane Doe",
	} {
		if !strings.Contains(letter, want) {
			t.Errorf("letter lacks %q:\n%s", want, letter)
		}
	}
}

func TestLetterToneChangesWording(t *testing.T) {
	letters := map[string]string{}
	for _, tone := range []string{"professional", "friendly", "concise"} {
		letters[tone] = letterFor(strings.Replace(prompt, "%s", tone, 1))
	}
	if letters["professional"] == letters["friendly"] {
		t.Error("friendly and professional letters are the same")
	}
	if len(letters["concise"]) >= len(letters["professional"]) {
		t.Error("the concise letter is not shorter than the professional one")
	}
}

func TestLetterIsDeterministic(t *testing.T) {
	p := strings.Replace(prompt, "%s", "friendly", 1)
	if letterFor(p) != letterFor(p) {
		t.Error("the same prompt got different letters")
	}
}

func TestLetterReadsVariousPromptLayouts(t *testing.T) {
	tests := []struct {
		name   string
		prompt string
		want   []string
	}{
		{
			name:   "markdown headings and labelled title",
			prompt: "## Job Description\n**Role:** Product Designer (Remote)\nCompany: Figma\n- Own the design system\n\n## Resume\nMax Mustermann\nDesigner at Spotify. Sketch and Miro daily.",
			want:   []string{"the Product Designer position at Figma", "at Spotify", "Sincerely,\nMax Mustermann"},
		},
		{
			name:   "no sections",
			prompt: "Write a cover letter: we are looking for a Data Scientist to join the growth team at Zalando, using Python and SQL.",
			want:   []string{"Data Scientist", "Zalando", "SQL"},
		},
		{
			name:   "empty prompt",
			prompt: "",
			want:   []string{"the advertised position", "your team"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			letter := letterFor(tt.prompt)
			paragraphs(t, letter)
			for _, want := range tt.want {
				if !strings.Contains(letter, want) {
					t.Errorf("letter lacks %q:\n%s", want, letter)
				}
			}
		})
	}
}

func FuzzComposeLetter(f *testing.F) {
	for _, seed := range []string{prompt, "", "CV:", "Job description:\n at \n", "## Tone\n**CV**: ::::", "Job: ( - , ;\nCV:\nÅsa Öberg\n10+ years"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		letter := letterFor(text)
		if n := len(paragraphs(t, letter)); n != 4 {
			t.Errorf("got %d paragraphs, want 4", n)
		}
	})
}

func TestSplitWordsKeepsTextInSmallPieces(t *testing.T) {
	for _, s := range []string{"", "one", "one two three four", "Dear Hiring Manager,\n\nI am  writing to apply.\n", " lead"} {
		pieces := splitWords(s, 3)
		if got := strings.Join(pieces, ""); got != s {
			t.Errorf("pieces %q join to %q, want %q", pieces, got, s)
		}
		for _, p := range pieces {
			if n := len(strings.Fields(p)); n > 3 {
				t.Errorf("piece %q has %d words, want at most 3", p, n)
			}
		}
	}
}

func TestTemplatesUseKnownPlaceholders(t *testing.T) {
	for tone, paragraphs := range templates {
		for i, variants := range paragraphs {
			for _, tpl := range variants {
				var b strings.Builder
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("tone %d, paragraph %d: %v", tone, i+1, r)
						}
					}()
					newLetterVars("", "", nil, nil, "", 0).expand(&b, tpl)
				}()
			}
		}
	}
}

func TestLetterIgnoresFenceTags(t *testing.T) {
	t.Parallel()
	p := careerprompt.Build("Senior Go Engineer at Acme Corp\nKubernetes, PostgreSQL", "Jane Doe\nGo since 2015", job.ToneFriendly)
	letter := composeLetter([]message{{Role: "system", Content: content(p.System)}, {Role: "user", Content: content(p.User)}}, 1)
	if strings.Contains(letter, "<") || strings.Contains(letter, ">") {
		t.Fatalf("a fence tag leaked into the letter:\n%s", letter)
	}
	if !strings.Contains(letter, "Acme") {
		t.Fatalf("the letter does not mention the employer:\n%s", letter)
	}
}
