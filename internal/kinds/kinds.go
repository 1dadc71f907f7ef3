package kinds

import (
	"fmt"
	"slices"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
)

// Deps are what the kinds need to run.
type Deps struct {
	CoverLetter CoverLetterDeps
	Email       EmailDeps
	Retention   RetentionDeps
	Analytics   AnalyticsDeps
	Export      ExportDeps
}

// All declares every kind, in the order of job.Kinds (a new kind is a file of this package,
// its name in job.Kinds and its line here).
func All(d Deps) []kind.Kind {
	return []kind.Kind{CoverLetter(d.CoverLetter), Email(d.Email), Retention(d.Retention), Analytics(d.Analytics), Export(d.Export)}
}

// Select picks the kinds named from all (none named: all of them); a name that is not a kind
// is an error.
func Select(all []kind.Kind, names []string) ([]kind.Kind, error) {
	if len(names) == 0 {
		return all, nil
	}
	var picked []kind.Kind
	for _, n := range names {
		i := slices.IndexFunc(all, func(k kind.Kind) bool { return k.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("unknown job kind %q (the kinds are %v)", n, job.Kinds())
		}
		picked = append(picked, all[i])
	}
	return picked, nil
}

// StoreSpec is how the store keeps the kind called name, for programs that requeue or list
// its jobs without running them (careeropsctl, the ops page).
func StoreSpec(name string) (jobstore.Spec, error) {
	picked, err := Select(All(Deps{}), []string{name})
	if err != nil {
		return jobstore.Spec{}, err
	}
	return picked[0].Spec, nil
}
