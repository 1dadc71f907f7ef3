package fakeopenai

// JobAndCV lets the external tests share the job description and CV of letter_test.go.
const JobAndCV = jobAndCV
