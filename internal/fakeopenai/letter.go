package fakeopenai

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// fenceTags are the XML-like tags prompts wrap material in, such as <cv>…</cv>: they frame
// the text, they are not part of it.
var fenceTags = regexp.MustCompile(`(?m)^[ \t]*</?[A-Za-z_][A-Za-z0-9_-]*>[ \t]*$`)

// composeLetter writes a cover letter for the job description and CV found
// in the system and user messages. It is deterministic: variations are
// picked by seed, a hash of the prompt.
func composeLetter(msgs []message, seed uint64) string {
	var b brief
	var last string
	for _, m := range msgs {
		switch m.Role {
		case "assistant", "tool", "function":
			continue
		}
		text := fenceTags.ReplaceAllString(stripMarkers(string(m.Content)), "")
		b.parse(text)
		if m.Role != "system" && m.Role != "developer" && strings.TrimSpace(text) != "" {
			last = text
		}
	}
	if b.jd == "" { // no "Job description:" section: make do with the request
		b.jd = strings.TrimSpace(last)
	}
	return b.letter(seed)
}

// brief is what the prompt says about the letter to write.
type brief struct {
	jd, cv  string // the job description and CV sections
	tone    string // the first word of the "Tone:" line
	company string // from a "Company:" line
	name    string // from a "Name:" line
}

type section int

const (
	noSection section = iota
	jdSection
	cvSection
	toneSection
	companySection
	nameSection
	otherSection // ends the current section
)

// labels start the sections of a prompt, as in "Job description:", "## CV"
// or "**Tone:** friendly". They are matched case-insensitively.
var labels = []struct {
	key     string
	section section
}{
	{"job description", jdSection}, {"job posting", jdSection}, {"job ad", jdSection},
	{"job advert", jdSection}, {"job offer", jdSection}, {"job", jdSection},
	{"vacancy", jdSection}, {"position description", jdSection}, {"role description", jdSection},
	{"cv", cvSection}, {"resume", cvSection}, {"résumé", cvSection}, {"curriculum vitae", cvSection},
	{"candidate", cvSection}, {"candidate profile", cvSection}, {"applicant", cvSection},
	{"tone", toneSection},
	{"company", companySection}, {"company name", companySection}, {"employer", companySection},
	{"name", nameSection}, {"candidate name", nameSection},
	{"instructions", otherSection}, {"task", otherSection}, {"output format", otherSection},
}

const trimSet = " \t\r\n*_#>\"'"

// parse fills the fields of b not filled yet from the sections of text.
func (b *brief) parse(text string) {
	var cur *string // the section being read, starting at text[start:]
	start, off := 0, 0
	end := func(at int) {
		if cur != nil && *cur == "" {
			*cur = strings.Trim(text[start:at], trimSet)
		}
		cur = nil
	}
	setOnce := func(field *string, value string) {
		if *field == "" {
			*field = strings.Trim(value, trimSet)
		}
	}
	for line := range strings.Lines(text) {
		sec, at := label(line)
		switch sec {
		case jdSection:
			end(off)
			cur, start = &b.jd, off+at
		case cvSection:
			end(off)
			cur, start = &b.cv, off+at
		case toneSection:
			end(off)
			setOnce(&b.tone, firstWord(line[at:]))
		case companySection:
			setOnce(&b.company, line[at:])
		case nameSection:
			setOnce(&b.name, line[at:])
		case otherSection:
			end(off)
		}
		off += len(line)
	}
	end(len(text))
}

// label returns the section a line starts, if any, and the offset of the
// section content in line.
func label(line string) (section, int) {
	trimmed := strings.TrimLeft(line, " \t#*>_")
	head, _, colon := strings.Cut(trimmed, ":")
	at := len(line) - len(trimmed) + len(head) + 1
	if !colon {
		if len(trimmed) == len(line) { // plain text, not a heading
			return noSection, 0
		}
		at = len(line)
	}
	key := strings.Trim(head, trimSet)
	if len(key) > 30 {
		return noSection, 0
	}
	for _, l := range labels {
		if strings.EqualFold(key, l.key) {
			return l.section, at
		}
	}
	return noSection, 0
}

// letter writes the letter. Its shape is fixed: a greeting, four paragraphs
// and a sign-off.
func (b *brief) letter(seed uint64) string {
	role, company := roleAndCompany(b.jd)
	if b.company != "" {
		company = b.company
	}
	name := b.name
	if name == "" {
		name = nameLine(b.cv)
	}
	unrelated := func(t term) bool {
		return !related(t.text, role) && !related(t.text, company) && !related(t.text, name)
	}
	jdTerms := slices.DeleteFunc(extractTerms(b.jd), func(t term) bool { return !unrelated(t) })
	cvTerms := slices.DeleteFunc(extractTerms(b.cv), func(t term) bool { return !unrelated(t) })
	skills, focus, employer := pickClaims(jdTerms, cvTerms)
	v := newLetterVars(role, company, skills, focus, employer, yearsOfExperience(b.cv))

	t := templates[toneOf(b.tone)]
	var out strings.Builder
	out.Grow(1600)
	out.WriteString("Dear Hiring Manager,\n\n")
	for i, variants := range t {
		v.expand(&out, variants[(seed>>(8*i))%uint64(len(variants))])
		out.WriteString("\n\n")
	}
	out.WriteString("Sincerely,")
	if name != "" {
		out.WriteString("\n" + name)
	}
	return out.String()
}

// pickClaims chooses what the letter claims: the skills of the job description the CV
// mentions too (else the CV's own), the posting's first terms as its focus, and the CV's
// first employer.
func pickClaims(jdTerms, cvTerms []term) (skills, focus []string, employer string) {
	for _, t := range jdTerms {
		if len(focus) < 3 {
			focus = append(focus, t.text)
		}
		if len(skills) < 3 && slices.ContainsFunc(cvTerms, func(c term) bool { return strings.EqualFold(c.text, t.text) }) {
			skills = append(skills, t.text)
		}
	}
	shared := len(skills) > 0
	for _, t := range cvTerms {
		switch {
		case t.employer:
			if employer == "" {
				employer = t.text
			}
		case !shared && len(skills) < 3:
			skills = append(skills, t.text)
		}
	}
	return skills, focus, employer
}

// newLetterVars fills the template variables, with generic wording for what is unknown.
func newLetterVars(role, company string, skills, focus []string, employer string, years int) letterVars {
	v := letterVars{
		"position":   "the advertised position",
		"atCompany":  "",
		"team":       "your team",
		"skills":     "a broad set of modern tools and practices",
		"focus":      "the challenges described in the posting",
		"experience": "In my recent roles",
		"employer":   "",
	}
	if role != "" {
		v["position"] = "the " + role + " position"
	}
	if company != "" {
		v["atCompany"], v["team"] = " at "+company, company
	}
	if len(skills) > 0 {
		v["skills"] = joinList(skills)
	}
	if len(focus) > 0 {
		v["focus"] = joinList(focus)
	}
	if employer != "" {
		v["employer"] = ", most recently at " + employer
	}
	switch years {
	case 0:
	case 1:
		v["experience"] = "Over the past year"
	default:
		v["experience"] = "Over the past " + strconv.Itoa(years) + " years"
	}
	return v
}

type tone int

const (
	professional tone = iota
	friendly
	concise
)

func toneOf(word string) tone {
	for _, w := range []string{"friendly", "warm", "casual", "enthusiastic", "informal", "conversational"} {
		if strings.EqualFold(word, w) {
			return friendly
		}
	}
	for _, w := range []string{"concise", "brief", "short", "succinct", "direct"} {
		if strings.EqualFold(word, w) {
			return concise
		}
	}
	return professional
}

// templates holds, for each tone, the variants of each of the four
// paragraphs.
var templates = [...][4][]string{
	professional: {
		{
			"I am writing to apply for {position}{atCompany}. Having read the description carefully, I believe my background is a strong match for what your team needs, and I would welcome the chance to contribute from the first day.",
			"Please accept this letter as my application for {position}{atCompany}. The responsibilities you describe closely match the work I have been doing in recent years, and I am confident I could add value to your team quickly.",
			"I was pleased to see your opening for {position}{atCompany}, and I am submitting my application with genuine interest. The role aligns closely with my experience and with the direction I want my career to take.",
		},
		{
			"{experience}, I have worked hands-on with {skills}{employer}. Your emphasis on {focus} stood out to me, because that is exactly where I have delivered results: designing reliable systems, improving them step by step, and taking ownership of the outcome from the first draft to production.",
			"{experience}, my work has centred on {skills}{employer}. I noticed the weight your description gives to {focus}, and it is precisely the kind of work where I have made a measurable difference, from shaping the initial design to keeping the result dependable in production.",
		},
		{
			"Beyond technical skills, I bring a collaborative approach and a habit of communicating clearly with colleagues and stakeholders. I enjoy mentoring others, documenting decisions, and turning ambiguous requirements into concrete plans. I am confident these qualities would help me make a meaningful contribution to {team}.",
			"I also value how a team works, not only what it builds. I communicate openly, share knowledge generously, and care about clear priorities and steady delivery. I believe this approach would allow me to contribute to {team} quickly and to keep raising the bar over time.",
		},
		{
			"Thank you for considering my application. I would welcome the opportunity to discuss how my experience could support your goals for {position}, and I look forward to hearing from you.",
			"Thank you for your time and consideration. I would be glad to discuss my application in more detail, and I look forward to the possibility of contributing to {team}.",
		},
	},
	friendly: {
		{
			"I was really excited to come across {position}{atCompany}! It reads like a description of the work I enjoy most, so I wanted to reach out and introduce myself.",
			"I'm thrilled to apply for {position}{atCompany}. The posting caught my attention right away, and I'd love to tell you a little about why I think I'd be a great fit.",
			"When I read about {position}{atCompany}, I knew I had to get in touch. It sounds like a team where I could do my best work and have a lot of fun doing it.",
		},
		{
			"{experience}, I've been building things with {skills}{employer}, and I've enjoyed every bit of it. When I saw the focus on {focus} in your description, I got genuinely excited, because that's the work I love most, from sketching the first design to watching it run smoothly in production.",
			"{experience}, I've spent my days working with {skills}{employer}. Seeing {focus} in your description made me smile, since those are exactly the problems I like to dig into, and I've learned a lot about turning rough ideas into things people rely on.",
		},
		{
			"Beyond the technical side, I really enjoy working with people: pairing with teammates, sharing what I learn, and making sure everyone knows why we are building what we build. I think that spirit would fit right in with {team}, and I'd be glad to bring it along.",
			"I'm also the kind of colleague who asks questions early, shares credit generously, and keeps things moving when plans change. I'd love to bring that energy to {team} and learn from the people already there.",
		},
		{
			"Thanks so much for reading! I'd love to chat about how I could help {team} and what I could bring to {position}. I look forward to hearing from you.",
			"Thank you for taking the time to read my letter. I'd be delighted to talk more about {position}, and I hope we get the chance to speak soon.",
		},
	},
	concise: {
		{
			"I am applying for {position}{atCompany}. My experience matches what you are looking for, and I would like to put it to work for your team.",
			"Please consider my application for {position}{atCompany}. My background fits the role well, and I can contribute quickly.",
		},
		{
			"{experience}, I have worked with {skills}{employer}. That maps directly to your focus on {focus}.",
			"{experience}, my work has centred on {skills}{employer}, which matches your emphasis on {focus}.",
		},
		{
			"I communicate clearly, collaborate well, and take ownership of results from design to delivery.",
			"I work well in teams, keep stakeholders informed, and deliver reliably.",
		},
		{
			"Thank you for your consideration. I look forward to discussing {position} with you.",
			"Thank you for your time; I would welcome a conversation about {position}.",
		},
	},
}

// letterVars are the values of the template placeholders, by name: {position},
// {atCompany}, {team}, {skills}, {focus}, {experience} and {employer}.
type letterVars map[string]string

// expand writes tpl to b, replacing its {placeholders}.
func (v letterVars) expand(b *strings.Builder, tpl string) {
	for {
		before, rest, ok := strings.Cut(tpl, "{")
		b.WriteString(before)
		if !ok {
			return
		}
		var key string
		key, tpl, _ = strings.Cut(rest, "}")
		value, ok := v[key]
		if !ok {
			panic("fakeopenai: unknown letter placeholder " + key)
		}
		b.WriteString(value)
	}
}

// roleAndCompany guesses the role and the company from the first line of a
// job description, such as "Senior Backend Engineer at Acme (Berlin)".
func roleAndCompany(jd string) (role, company string) {
	line, _, _ := strings.Cut(jd, "\n")
	if head, rest, ok := strings.Cut(line, ":"); ok {
		for _, l := range []string{"role", "title", "job title", "position"} {
			if strings.EqualFold(strings.Trim(head, trimSet), l) {
				line = rest
			}
		}
	}
	role = line
	for _, sep := range []string{" at ", " @ "} {
		if r, c, ok := strings.Cut(line, sep); ok {
			role, company = r, c
			break
		}
	}
	role, company = clip(role), clip(company)
	if words(company) > 5 {
		company = ""
	}
	if words(role) > 6 { // a sentence: keep its longest capitalised phrase
		role = longestCapitalisedRun(role)
	}
	return role, company
}

// clip cuts s at the first separator that usually ends a title.
func clip(s string) string {
	for _, sep := range []string{" - ", " – ", " — ", " | ", "(", ",", ";", ". "} {
		s, _, _ = strings.Cut(s, sep)
	}
	return strings.Trim(s, trimSet+".!:")
}

// longestCapitalisedRun returns the longest run of two or more
// capitalised words of s, such as "Senior Backend Engineer" in "We are
// hiring a Senior Backend Engineer to build our platform".
func longestCapitalisedRun(s string) string {
	var best string
	start, n := -1, 0 // the current run is s[start:], of n words
	for i := 0; i < len(s); {
		for ; i < len(s) && s[i] == ' '; i++ {
		}
		j := i
		for ; j < len(s) && s[j] != ' '; j++ {
		}
		w := strings.TrimRight(s[i:j], ".,;:!?")
		if r, _ := utf8.DecodeRuneInString(w); !unicode.IsUpper(r) || start < 0 && isFunctionWord(w) {
			start = -1
		} else {
			if start < 0 {
				start, n = i, 0
			}
			if n++; n >= 2 && i+len(w)-start > len(best) {
				best = s[start : i+len(w)]
			}
			if len(w) < j-i { // punctuation ends the run
				start = -1
			}
		}
		i = j
	}
	return best
}

// nameLine returns the first line of a CV if it looks like a name.
func nameLine(cv string) string {
	line, _, _ := strings.Cut(cv, "\n")
	line = strings.TrimSpace(line)
	n := words(line)
	if n < 2 || n > 4 || len(line) > 40 {
		return ""
	}
	for w := range strings.FieldsSeq(line) {
		r, _ := utf8.DecodeRuneInString(w)
		if !unicode.IsUpper(r) || isStopword(w) || strings.ContainsFunc(w, func(r rune) bool {
			return !unicode.IsLetter(r) && r != '-' && r != '\'' && r != '.'
		}) {
			return ""
		}
	}
	return line
}

// yearsOfExperience finds the first "N years" or "N+ years" in s.
func yearsOfExperience(s string) int {
	for {
		i := strings.Index(s, " year")
		if i < 0 {
			return 0
		}
		j := strings.TrimRight(s[:i], "+")
		k := strings.TrimRightFunc(j, func(r rune) bool { return r >= '0' && r <= '9' })
		if n, err := strconv.Atoi(j[len(k):]); err == nil && n > 0 && n <= 50 {
			return n
		}
		s = s[i+len(" year"):]
	}
}

// term is a salient word or phrase of a text.
type term struct {
	text     string
	count    int
	employer bool // it followed "at", as in "Engineer at Stripe"
}

const maxTerms = 24

// extractTerms returns the salient terms of s, most frequent first: runs
// of up to three capitalised words not starting a sentence, and technical
// looking words such as "PostgreSQL", "AWS" or "C++".
func extractTerms(s string) []term {
	var terms []term
	add := func(text string, employer bool) {
		for i := range terms {
			if strings.EqualFold(terms[i].text, text) {
				terms[i].count++
				terms[i].employer = terms[i].employer || employer
				return
			}
		}
		if len(terms) < maxTerms {
			terms = append(terms, term{text: text, count: 1, employer: employer})
		}
	}
	phrase, phraseEnd, phraseWords, phraseEmployer := -1, 0, 0, false
	flush := func() {
		if phrase >= 0 {
			add(s[phrase:phraseEnd], phraseEmployer)
		}
		phrase = -1
	}
	initial, afterAt := true, false
	for i := 0; i < len(s); {
		for ; i < len(s) && isSpace(s[i]); i++ {
			if s[i] == '\n' {
				initial = true
				flush()
			}
		}
		start := i
		for ; i < len(s) && !isSpace(s[i]); i++ {
		}
		raw := s[start:i]
		if raw == "" {
			break
		}
		word := strings.TrimLeft(raw, "(\"'[“‘")
		lead := len(raw) - len(word)
		word = strings.TrimRight(word, ".,;:!?)\"'’”]")
		switch {
		case word == "" || raw == "-" || raw == "•" || raw == "–": // a bullet
			flush()
			initial = true
			continue
		case qualifies(word, initial):
			if phrase < 0 || phraseWords == 3 || lead > 0 {
				flush()
				phrase, phraseWords, phraseEmployer = start+lead, 0, afterAt
			}
			phraseEnd = start + lead + len(word)
			phraseWords++
		default:
			flush()
		}
		if len(word)+lead < len(raw) { // trailing punctuation ends a phrase
			flush()
		}
		afterAt = strings.EqualFold(raw, "at")
		initial = strings.ContainsAny(raw[len(raw)-1:], ".!?:;")
	}
	flush()
	slices.SortStableFunc(terms, func(a, b term) int { return cmp.Compare(b.count, a.count) })
	return terms
}

func qualifies(w string, initial bool) bool {
	if len(w) < 2 || isStopword(w) {
		return false
	}
	first, _ := utf8.DecodeRuneInString(w)
	letters, upper, symbols := 0, 0, 0
	for _, r := range w {
		switch {
		case unicode.IsUpper(r):
			letters++
			upper++
		case unicode.IsLetter(r):
			letters++
		case r == '+' || r == '#' || unicode.IsDigit(r):
			symbols++
		}
	}
	switch {
	case letters == 0, upper == letters && letters > 5: // a number, or SHOUTING rather than an acronym
		return false
	case symbols > 0 || upper > 1 || upper == 1 && !unicode.IsUpper(first): // C++, AWS, PostgreSQL, iOS
		return true
	}
	return unicode.IsUpper(first) && !initial
}

// Capitalised words that are not salient: function words, which may start
// a sentence in title case, and words too generic to quote.
var (
	functionWords = []string{
		"I", "I'm", "I've", "I'd", "We", "We're", "You", "You'll", "Our", "Your", "The", "A", "An",
		"And", "Or", "But", "In", "On", "At", "For", "With", "To", "Of", "As", "If", "By", "From",
		"This", "That", "It", "Is", "Are", "Be", "Will", "Must", "Can", "Dear",
	}
	genericWords = []string{
		"Job", "Description", "CV", "Resume", "Tone", "Hiring", "Senior", "Junior", "Lead", "Staff",
		"Principal", "Engineer", "Engineering", "Developer", "Manager", "Team", "Intern", "Head",
		"Present", "Today", "Current", "Remote", "January", "February", "March", "April", "May",
		"June", "July", "August", "September", "October", "November", "December", "Jan", "Feb",
		"Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
	}
)

func isStopword(w string) bool { return isFunctionWord(w) || containsWord(genericWords, w) }

func isFunctionWord(w string) bool { return containsWord(functionWords, w) }

func containsWord(list []string, w string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, w) })
}

// related reports whether one of a and b contains the other.
func related(a, b string) bool {
	return a != "" && b != "" && (containsFold(a, b) || containsFold(b, a))
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func joinList(items []string) string {
	switch len(items) {
	case 1:
		return items[0]
	case 2:
		return items[0] + " and " + items[1]
	}
	return strings.Join(items[:len(items)-1], ", ") + ", and " + items[len(items)-1]
}

func firstWord(s string) string {
	s = strings.TrimLeft(s, trimSet)
	if i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }); i >= 0 {
		return s[:i]
	}
	return s
}

func words(s string) int {
	n := 0
	for range strings.FieldsSeq(s) {
		n++
	}
	return n
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// approxTokens estimates the tokens of a text like OpenAI's rule of thumb:
// four characters a token.
func approxTokens(chars int) int { return max(1, chars/4) }
