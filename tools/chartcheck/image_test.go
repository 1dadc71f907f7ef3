package chartcheck

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/careerops/jobs/internal/app"
)

// imageFacts is what the Dockerfile says about one runtime stage of the image.
type imageFacts struct {
	stage string
	user  string
	// files are the absolute paths the stage copies in from the build stage.
	files map[string]bool
}

// parseDockerfile parses the Dockerfile with BuildKit's own parser and instruction parser (as
// `docker build` does), failing the test on BuildKit's lint warnings (as `docker build --check`
// does), and returns the runtime stages: those that copy binaries from the build stage.
func parseDockerfile(t *testing.T) (stages []instructions.Stage, runtime map[string]imageFacts) {
	t.Helper()
	programs := cmdPrograms(t)
	f, err := os.Open(filepath.Join(RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		t.Errorf("Dockerfile: BuildKit check %s: %s (%s)", rule, msg, url)
	}})
	stages, _, err = instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	runtime = map[string]imageFacts{}
	for _, s := range stages {
		facts := imageFacts{stage: s.Name, files: map[string]bool{}}
		for _, c := range s.Commands {
			switch c := c.(type) {
			case *instructions.UserCommand:
				facts.user = c.User
			case *instructions.CopyCommand:
				if c.From == "" {
					continue
				}
				dest := c.DestPath
				for _, src := range c.SourcePaths {
					if src == "/out/" && strings.HasSuffix(dest, "/") {
						// The build stage's output directory: go build -o /out/ ./cmd/...
						for _, p := range programs {
							facts.files[path.Join(dest, p)] = true
						}
						continue
					}
					if strings.HasSuffix(dest, "/") {
						facts.files[path.Join(dest, path.Base(src))] = true
					} else {
						facts.files[dest] = true
					}
				}
			}
		}
		if len(facts.files) > 0 {
			runtime[s.Name] = facts
		}
	}
	return stages, runtime
}

// cmdPrograms lists the programs in ./cmd.
func cmdPrograms(t *testing.T) []string {
	t.Helper()
	mains, _ := filepath.Glob(filepath.Join(RepoRoot(), "cmd", "*", "main.go"))
	if len(mains) == 0 {
		t.Fatal("no programs in ./cmd")
	}
	var out []string
	for _, m := range mains {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	return out
}

// TestDockerfile: multi-stage, static build with cache mounts, every program of ./cmd built,
// distroless non-root runtime stages (the last, default one included), OCI labels.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages, runtime := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	build := stages[0]
	var buildCmd string
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "go build") {
			buildCmd = strings.Join(r.CmdLine, " ")
			if !slices.Contains(r.FlagsUsed, "mount") {
				t.Errorf("Dockerfile: go build without cache mounts")
			}
		}
	}
	for _, want := range []string{"-trimpath", "-o /out/"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("Dockerfile: go build lacks %s: %s", want, buildCmd)
		}
	}
	foundCGO := false
	for _, c := range build.Commands {
		if e, ok := c.(*instructions.EnvCommand); ok {
			for _, kv := range e.Env {
				foundCGO = foundCGO || (kv.Key == "CGO_ENABLED" && kv.Value == "0")
			}
		}
	}
	if !foundCGO {
		t.Errorf("Dockerfile: CGO_ENABLED=0 not set in the build stage")
	}
	// Every program in ./cmd is built and copied into the image.
	cmds, _ := filepath.Glob(filepath.Join(RepoRoot(), "cmd", "*", "main.go"))
	if len(cmds) == 0 {
		t.Fatal("no programs in ./cmd")
	}
	last := stages[len(stages)-1]
	if _, ok := runtime[last.Name]; !ok {
		t.Fatalf("Dockerfile: the last (default) stage %q copies no binaries", last.Name)
	}
	for _, m := range cmds {
		prog := filepath.Base(filepath.Dir(m))
		if !strings.Contains(buildCmd, "./cmd/...") && !strings.Contains(buildCmd, "./cmd/"+prog) {
			t.Errorf("Dockerfile: ./cmd/%s is not built", prog)
		}
		for _, facts := range runtime {
			if !facts.files["/usr/local/bin/"+prog] {
				t.Errorf("Dockerfile: stage %s lacks /usr/local/bin/%s", facts.stage, prog)
			}
		}
	}
	for _, s := range stages {
		facts, ok := runtime[s.Name]
		if !ok {
			continue
		}
		if !strings.HasPrefix(s.BaseName, "gcr.io/distroless/static") || !strings.Contains(s.BaseName, "nonroot") {
			t.Errorf("Dockerfile: runtime stage %s is based on %s, not distroless static nonroot", s.Name, s.BaseName)
		}
		uid, _, _ := strings.Cut(facts.user, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			t.Errorf("Dockerfile: runtime stage %s runs as %q; want a numeric non-root USER (runAsNonRoot needs a number)", s.Name, facts.user)
		}
	}
	labels := map[string]bool{}
	for _, c := range last.Commands {
		if l, ok := c.(*instructions.LabelCommand); ok {
			for _, kv := range l.Labels {
				labels[kv.Key] = true
			}
		}
	}
	for _, k := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.title"} {
		if !labels[k] {
			t.Errorf("Dockerfile: final stage lacks the OCI label %s", k)
		}
	}
}

// specOf is the pod spec of a Deployment or Job.
func specOf(t *testing.T, o Object) *corev1.PodSpec {
	t.Helper()
	switch o.Kind {
	case "Deployment":
		d, err := As[appsv1.Deployment](o)
		if err != nil {
			t.Fatal(err)
		}
		return &d.Spec.Template.Spec
	case "Job":
		j, err := As[batchv1.Job](o)
		if err != nil {
			t.Fatal(err)
		}
		return &j.Spec.Template.Spec
	}
	t.Fatalf("%s has no pod spec", o.ID())
	return nil
}

// TestChartRunsProgramsInTheImage: every container of the chart that uses the image runs a
// program at the path the default image stage puts it.
func TestChartRunsProgramsInTheImage(t *testing.T) {
	t.Parallel()
	stages, runtime := parseDockerfile(t)
	final := runtime[stages[len(stages)-1].Name]
	for name := range valuesSets {
		r := renderSet(t, name)
		repo := get[string](t, setValues(t, name), "image.repository")
		for _, o := range r.Objects {
			var spec *corev1.PodSpec
			switch o.Kind {
			case "Deployment":
				d, _ := As[appsv1.Deployment](o)
				spec = &d.Spec.Template.Spec
			case "Job":
				j, _ := As[batchv1.Job](o)
				spec = &j.Spec.Template.Spec
			default:
				continue
			}
			for _, c := range spec.Containers {
				if !strings.HasPrefix(c.Image, repo) {
					continue
				}
				if len(c.Command) == 0 {
					t.Errorf("%s: %s container %s relies on the image's CMD; name the program", name, o.ID(), c.Name)
					continue
				}
				if !final.files[c.Command[0]] {
					t.Errorf("%s: %s container %s runs %s, which the image does not have", name, o.ID(), c.Name, c.Command[0])
				}
			}
		}
	}
}

// loadCompose loads docker-compose.yml the way `docker compose` does (compose-go, with the
// Compose specification's schema validation and interpolation), with env as the environment.
func loadCompose(t *testing.T, env []string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(RepoRoot(), "docker-compose.yml")},
		cli.WithWorkingDirectory(RepoRoot()), cli.WithEnv(env), cli.WithName("careerops"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// TestCompose: docker-compose.yml is valid for compose-go and runs PostgreSQL, RabbitMQ with
// management, Jaeger, fakeopenai, migrations, the api and two workers, started in order by
// healthchecks, with environments the programs read and programs the image has.
func TestCompose(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	for _, s := range []string{"postgres", "rabbitmq", "jaeger", "mailpit", "fakeopenai", "migrate", "api", "worker"} {
		if _, ok := p.Services[s]; !ok {
			t.Errorf("compose: no %s service", s)
		}
	}
	if rmq := p.Services["rabbitmq"]; !strings.Contains(rmq.Image, "management") {
		t.Errorf("compose: rabbitmq image %s has no management plugin", rmq.Image)
	}
	w := p.Services["worker"]
	if w.Deploy == nil || w.Deploy.Replicas == nil || *w.Deploy.Replicas != 2 {
		t.Errorf("compose: want 2 workers")
	}
	// depends_on: every service_healthy target has a healthcheck; the programs wait for the
	// migrations to complete.
	for name, s := range p.Services {
		for dep, cfg := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("compose: %s depends on unknown %s", name, dep)
				continue
			}
			if cfg.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0) {
				t.Errorf("compose: %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
	}
	for _, name := range []string{"api", "worker"} {
		if c := p.Services[name].DependsOn["migrate"].Condition; c != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("compose: %s does not wait for the migrations (condition %q)", name, c)
		}
		if c := p.Services[name].DependsOn["rabbitmq"].Condition; c != types.ServiceConditionHealthy {
			t.Errorf("compose: %s does not wait for a healthy RabbitMQ (condition %q)", name, c)
		}
	}
	// Programs: in the image stage compose builds, and the environment they read.
	_, runtime := parseDockerfile(t)
	specs := map[string]envSpec{
		"api":     envSpecOf("api", app.APIConfig{}),
		"worker":  envSpecOf("worker", app.WorkerConfig{}),
		"migrate": ctlEnvSpec(t),
	}
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		facts, ok := runtime[s.Build.Target]
		if !ok {
			t.Errorf("compose: %s builds target %q, not a runtime stage of the Dockerfile", name, s.Build.Target)
			continue
		}
		if len(s.Command) == 0 || !facts.files[s.Command[0]] {
			t.Errorf("compose: %s runs %v, which stage %s does not have", name, s.Command, s.Build.Target)
		}
		if s.User == "" || strings.HasPrefix(s.User, "0") || s.User == "root" {
			t.Errorf("compose: %s runs as %q", name, s.User)
		}
		var hcTest []string
		if s.HealthCheck != nil && len(s.HealthCheck.Test) > 1 {
			hcTest = s.HealthCheck.Test[1:]
		}
		for _, hc := range hcTest {
			if strings.HasPrefix(hc, "/") && !strings.HasPrefix(hc, "/busybox/") && !facts.files[hc] {
				t.Errorf("compose: %s healthcheck runs %s, which the image does not have", name, hc)
			}
		}
		spec, ok := specs[name]
		if !ok {
			continue
		}
		for k, v := range s.Environment {
			if !spec.reads[k] {
				t.Errorf("compose: %s sets %s, which %s does not read", name, k, spec.program)
			}
			if v == nil || *v == "" {
				t.Errorf("compose: %s: %s is empty", name, k)
			}
		}
		for _, k := range spec.required {
			if _, ok := s.Environment[k]; !ok {
				t.Errorf("compose: %s lacks the required %s", name, k)
			}
		}
	}
	// The worker's stop grace covers drain + LLM timeout, as in the chart.
	if w.StopGracePeriod == nil {
		t.Errorf("compose: worker without stop_grace_period")
	} else {
		drain, _ := time.ParseDuration(*w.Environment["WORKER_DRAIN_TIMEOUT"])
		llm, _ := time.ParseDuration(*w.Environment["LLM_TIMEOUT"])
		if g := time.Duration(*w.StopGracePeriod); g < drain+llm {
			t.Errorf("compose: worker stop_grace_period %v < drain %v + LLM timeout %v", g, drain, llm)
		}
	}
	if got := *w.Environment["OPENAI_BASE_URL"]; got != "http://fakeopenai:8090/v1" {
		t.Errorf("compose: default OPENAI_BASE_URL %q, want fakeopenai", got)
	}
}

// TestComposeRealOpenAI: with OPENAI_API_KEY (and OPENAI_BASE_URL) in the environment or a
// .env file, the workers use them instead of fakeopenai.
func TestComposeRealOpenAI(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, []string{"OPENAI_API_KEY=sk-test", "OPENAI_BASE_URL=https://api.openai.com/v1", "OPENAI_MODEL=gpt-4o-mini"})
	env := p.Services["worker"].Environment
	for k, want := range map[string]string{"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "https://api.openai.com/v1", "OPENAI_MODEL": "gpt-4o-mini"} {
		if got := env[k]; got == nil || *got != want {
			t.Errorf("compose: worker %s = %v, want %s", k, got, want)
		}
	}
}
