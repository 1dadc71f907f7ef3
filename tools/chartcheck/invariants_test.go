package chartcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	rabbitmqv1beta1 "github.com/rabbitmq/cluster-operator/v2/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/careerops/jobs/internal/app"
)

// otelSDKVars are the standard OpenTelemetry SDK variables the programs read: the SDK reads
// those that are not in their configuration structs (telemetry.Config) itself.
var otelSDKVars = []string{
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_SDK_DISABLED", "OTEL_PROPAGATORS",
}

// envSpec is what a program reads from the environment, from the env tags of its
// configuration struct (package config).
type envSpec struct {
	program  string
	reads    map[string]bool
	required []string
}

func envSpecOf(program string, cfg any) envSpec {
	s := envSpec{program: program, reads: map[string]bool{}}
	s.addFields(reflect.TypeOf(cfg))
	for _, v := range otelSDKVars {
		s.reads[v] = true
	}
	return s
}

// addFields adds the variables of the env tags of struct type t, nested structs included.
func (s *envSpec) addFields(t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		switch {
		case name == "" && f.Type.Kind() == reflect.Struct:
			s.addFields(f.Type)
		case name != "":
			s.reads[name] = true
			if strings.Contains(opts, "required") {
				s.required = append(s.required, name)
			}
		}
	}
}

// ctlEnvSpec reads careeropsctl's variables from the env tags of its unexported config
// struct (internal/ctlcmd/config.go) with go/ast; "migrate up" requires DATABASE_URL.
func ctlEnvSpec(t *testing.T) envSpec {
	t.Helper()
	s := envSpec{program: "careeropsctl migrate up", reads: map[string]bool{}, required: []string{"DATABASE_URL"}}
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(RepoRoot(), "internal", "ctlcmd", "config.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "config" {
			return true
		}
		for _, fld := range ts.Type.(*ast.StructType).Fields.List {
			if fld.Tag == nil {
				continue
			}
			tag, _ := strconv.Unquote(fld.Tag.Value)
			if name := reflect.StructTag(tag).Get("env"); name != "" {
				s.reads[name] = true
			}
		}
		return false
	})
	if !s.reads["DATABASE_URL"] {
		t.Fatalf("careeropsctl's config does not read DATABASE_URL any more (internal/ctlcmd/config.go)")
	}
	for _, v := range otelSDKVars {
		s.reads[v] = true
	}
	return s
}

func deployment(t *testing.T, r Rendered, component string) *appsv1.Deployment {
	t.Helper()
	objs := r.Find("Deployment", "-"+component)
	if len(objs) != 1 {
		t.Fatalf("want one %s Deployment, got %d", component, len(objs))
	}
	d, err := As[appsv1.Deployment](objs[0])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// appDeployment is the api's Deployment or one job kind's worker Deployment, with its
// component (the container's name) and a name for messages.
type appDeployment struct {
	comp, id string
	d        *appsv1.Deployment
}

// appDeployments are the api's and every job kind's worker Deployments of r.
func appDeployments(t *testing.T, set string, r Rendered) []appDeployment {
	t.Helper()
	out := []appDeployment{{"api", set + ": api", deployment(t, r, "api")}}
	for _, w := range workersOf(t, set, r) {
		out = append(out, appDeployment{"worker", set + ": " + w.deployment.Name, w.deployment})
	}
	return out
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func envValue(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

func checkEnv(t *testing.T, set string, c corev1.Container, spec envSpec) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			t.Errorf("%s: %s: %s set twice", set, spec.program, e.Name)
		}
		seen[e.Name] = true
		if !spec.reads[e.Name] {
			t.Errorf("%s: %s: sets %s, which the program does not read", set, spec.program, e.Name)
		}
		if e.Value == "" && e.ValueFrom == nil {
			t.Errorf("%s: %s: %s is empty", set, spec.program, e.Name)
		}
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			t.Errorf("%s: %s: %s comes from a ConfigMap", set, spec.program, e.Name)
		}
	}
	for _, name := range spec.required {
		if !seen[name] {
			t.Errorf("%s: %s: the required %s is not set", set, spec.program, name)
		}
	}
	// Secrets only from Secrets, never as literal values.
	for _, secret := range []string{"DATABASE_URL", "RABBITMQ_URL", "JWT_SECRET", "OPENAI_API_KEY", "LLM_FALLBACK_API_KEY", "SMTP_PASSWORD"} {
		if e, ok := envValue(c, secret); ok && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s: %s: %s must come from a secretKeyRef", set, spec.program, secret)
		}
	}
}

// TestEnvMatchesPrograms: every variable a container sets is one its program reads (the
// env tags of app.APIConfig, app.WorkerConfig and careeropsctl's config, plus the OTel
// SDK's), every required one is set, and secrets come from Secrets; for the workers of
// every job kind.
func TestEnvMatchesPrograms(t *testing.T) {
	t.Parallel()
	api := envSpecOf("api", app.APIConfig{})
	worker := envSpecOf("worker", app.WorkerConfig{})
	ctl := ctlEnvSpec(t)
	for name := range valuesSets {
		r := renderSet(t, name)
		checkEnv(t, name, container(t, deployment(t, r, "api").Spec.Template.Spec, "api"), api)
		for _, w := range workersOf(t, name, r) {
			checkEnv(t, name+": "+w.deployment.Name, w.container, worker)
		}
		jobs := r.Find("Job", "-migrations")
		if len(jobs) != 1 {
			t.Fatalf("%s: want one migrations Job, got %d", name, len(jobs))
		}
		j, err := As[batchv1.Job](jobs[0])
		if err != nil {
			t.Fatal(err)
		}
		c := container(t, j.Spec.Template.Spec, "migrate")
		if !slices.Equal(c.Command, []string{"/usr/local/bin/careeropsctl", "migrate", "up"}) {
			t.Errorf("%s: migrations run %q", name, c.Command)
		}
		if !strings.Contains(jobs[0].Hook, "pre-install") || !strings.Contains(jobs[0].Hook, "pre-upgrade") {
			t.Errorf("%s: migrations hook is %q", name, jobs[0].Hook)
		}
		checkEnv(t, name, c, ctl)
	}
}

// TestScaledObject: KEDA scales each job kind's worker Deployment on the queue those workers
// consume, as the issue specifies (http protocol, QueueLength, value = concurrency, scale to
// zero, fallback, scale-down window), with credentials from the same Secret the workers use
// (TestOneWorkerPerKind checks the kind's own queue, value and bounds).
func TestScaledObject(t *testing.T) {
	t.Parallel()
	for name := range valuesSets {
		r := renderSet(t, name)
		merged := setValues(t, name)
		scaled := 0
		for _, w := range workersOf(t, name, r) {
			if w.scaled == nil {
				continue
			}
			scaled++
			checkScaledObject(t, name+": "+w.scaled.Name, r, merged, w)
		}
		if scaled == 0 && get[bool](t, merged, "worker.autoscaling.enabled") {
			t.Errorf("%s: no ScaledObject rendered", name)
		}
	}
}

func checkScaledObject(t *testing.T, id string, r Rendered, merged map[string]any, w kindWorkers) {
	t.Helper()
	so := w.scaled
	ref := so.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
		t.Errorf("%s: targets %s %s %s, not a Deployment", id, ref.APIVersion, ref.Kind, ref.Name)
	}
	tr := so.Spec.Triggers[0]
	md := tr.Metadata
	checks := []struct{ what, got, want string }{
		{"trigger type", tr.Type, "rabbitmq"},
		{"protocol", md["protocol"], "http"},
		{"mode", md["mode"], "QueueLength"},
		{"vhostName", md["vhostName"], get[string](t, merged, "rabbitmq.vhost")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %s = %q, want %q", id, c.what, c.got, c.want)
		}
	}
	if _, ok := md["activationValue"]; !ok {
		t.Errorf("%s: no activationValue", id)
	}
	if so.Spec.CooldownPeriod == nil || so.Spec.Fallback == nil || so.Spec.Advanced == nil ||
		so.Spec.Advanced.HorizontalPodAutoscalerConfig == nil || so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior == nil ||
		so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown == nil ||
		so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.StabilizationWindowSeconds == nil {
		t.Errorf("%s: lacks cooldownPeriod, fallback or a scale-down stabilisation window", id)
	}
	// The TriggerAuthentication reads the broker Secret the workers' RABBITMQ_URL comes from.
	if tr.AuthenticationRef == nil {
		t.Fatalf("%s: trigger without authenticationRef", id)
	}
	tas := r.Find("TriggerAuthentication", tr.AuthenticationRef.Name)
	if len(tas) != 1 || tas[0].Name != tr.AuthenticationRef.Name {
		t.Fatalf("%s: TriggerAuthentication %s not rendered", id, tr.AuthenticationRef.Name)
	}
	ta, err := As[kedav1alpha1.TriggerAuthentication](tas[0])
	if err != nil {
		t.Fatal(err)
	}
	rmq, _ := envValue(w.container, "RABBITMQ_URL")
	params := map[string]bool{}
	for _, s := range ta.Spec.SecretTargetRef {
		params[s.Parameter] = true
		if s.Name != rmq.ValueFrom.SecretKeyRef.Name {
			t.Errorf("%s: TriggerAuthentication reads Secret %s, the workers' broker Secret is %s", id, s.Name, rmq.ValueFrom.SecretKeyRef.Name)
		}
	}
	if !params["username"] || !params["password"] {
		t.Errorf("%s: TriggerAuthentication parameters %v, want username and password", id, params)
	}
	if !get[bool](t, merged, "rabbitmq.cluster.enabled") {
		return
	}
	rcs := r.Find("RabbitmqCluster", "")
	if len(rcs) != 1 {
		t.Fatalf("%s: want one RabbitmqCluster", id)
	}
	rc, err := As[rabbitmqv1beta1.RabbitmqCluster](rcs[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := rc.Name + "-default-user"; rmq.ValueFrom.SecretKeyRef.Name != want || rmq.ValueFrom.SecretKeyRef.Key != "connection_string" {
		t.Errorf("%s: RABBITMQ_URL from %s/%s, want %s/connection_string", id, rmq.ValueFrom.SecretKeyRef.Name, rmq.ValueFrom.SecretKeyRef.Key, want)
	}
	if want := fmt.Sprintf("http://%s.%s.svc:15672", rc.Name, Namespace); md["host"] != want {
		t.Errorf("%s: KEDA host %q, want the cluster's management API %q", id, md["host"], want)
	}
	ct := consumerTimeoutSeconds(t, rc.Spec.Rabbitmq.AdditionalConfig)
	llm := envDuration(t, w.container, "LLM_BUDGET_MAX_WAIT") + envDuration(t, w.container, "LLM_TIMEOUT")
	if worst := llm + 30*time.Second; ct <= worst {
		t.Errorf("%s: consumer_timeout %v does not exceed the worst job %v", id, ct, worst)
	}
}

func consumerTimeoutSeconds(t *testing.T, conf string) time.Duration {
	t.Helper()
	for line := range strings.SplitSeq(conf, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == "consumer_timeout" {
			ms, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("consumer_timeout %q: %v", v, err)
			}
			return time.Duration(ms) * time.Millisecond
		}
	}
	t.Fatalf("no consumer_timeout in additionalConfig:\n%s", conf)
	return 0
}

func envDuration(t *testing.T, c corev1.Container, name string) time.Duration {
	t.Helper()
	e, ok := envValue(c, name)
	if !ok {
		t.Fatalf("%s not set", name)
	}
	d, err := time.ParseDuration(e.Value)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, e.Value, err)
	}
	return d
}

// TestWorkerGracePeriod: terminationGracePeriodSeconds ≥ WORKER_DRAIN_TIMEOUT + LLM_TIMEOUT
// (plus a margin), so a scale-in never kills a job in the middle of its LLM call.
func TestWorkerGracePeriod(t *testing.T) {
	t.Parallel()
	for name := range valuesSets {
		for _, w := range workersOf(t, name, renderSet(t, name)) {
			need := envDuration(t, w.container, "WORKER_DRAIN_TIMEOUT") + envDuration(t, w.container, "LLM_TIMEOUT") + 5*time.Second
			g := w.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds
			if g == nil || time.Duration(*g)*time.Second < need {
				t.Errorf("%s: %s terminationGracePeriodSeconds %v < drain + LLM timeout + 5s = %v", name, w.deployment.Name, g, need)
			}
		}
	}
}

// routesIn lists the string literals of the Go files in dir: the route patterns are among them
// ("/healthz" for fiber, "GET /healthz" for net/http).
func routesIn(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(RepoRoot(), dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				s, _ := strconv.Unquote(bl.Value)
				s = strings.TrimPrefix(s, "GET ")
				out[s] = true
			}
			return true
		})
	}
	return out
}

// TestProbes: every probe is an HTTP GET on a path the program serves (its route source), on
// a named container port that is the port the program listens on (HTTP_ADDR / ADMIN_ADDR).
func TestProbes(t *testing.T) {
	t.Parallel()
	served := map[string]map[string]bool{
		"api":    routesIn(t, "internal/httpapi"),
		"worker": routesIn(t, "internal/admin"),
	}
	addrEnv := map[string]string{"api": "HTTP_ADDR", "worker": "ADMIN_ADDR"}
	for name := range valuesSets {
		for _, a := range appDeployments(t, name, renderSet(t, name)) {
			checkProbes(t, a, served[a.comp], addrEnv[a.comp])
		}
	}
}

func checkProbes(t *testing.T, a appDeployment, served map[string]bool, addrEnv string) {
	t.Helper()
	c := container(t, a.d.Spec.Template.Spec, a.comp)
	e, _ := envValue(c, addrEnv)
	_, portStr, err := net.SplitHostPort(e.Value)
	if err != nil {
		t.Fatalf("%s: %s=%q: %v", a.id, addrEnv, e.Value, err)
	}
	listen, _ := strconv.Atoi(portStr)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
		if p.ContainerPort != int32(listen) {
			t.Errorf("%s: exposes port %d, the program listens on %d", a.id, p.ContainerPort, listen)
		}
	}
	probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", a.id, kind)
			continue
		}
		if !served[p.HTTPGet.Path] {
			t.Errorf("%s: %s probe on %s, which the program does not serve", a.id, kind, p.HTTPGet.Path)
		}
		if _, ok := ports[p.HTTPGet.Port.String()]; !ok {
			t.Errorf("%s: %s probe on port %s, not a container port", a.id, kind, p.HTTPGet.Port.String())
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("%s: liveness must be /healthz (readiness depends on the database and broker)", a.id)
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("%s: readiness must be /readyz", a.id)
	}
}

// TestNothingRunsAsRoot: every pod the chart renders runs as non-root with a RuntimeDefault
// seccomp profile, no token automount, and containers drop ALL capabilities on a read-only root.
func TestNothingRunsAsRoot(t *testing.T) {
	t.Parallel()
	for name := range valuesSets {
		for _, o := range renderSet(t, name).Objects {
			var spec *corev1.PodSpec
			switch o.Kind {
			case "Deployment":
				d, err := As[appsv1.Deployment](o)
				if err != nil {
					t.Fatal(err)
				}
				spec = &d.Spec.Template.Spec
			case "Job":
				j, err := As[batchv1.Job](o)
				if err != nil {
					t.Fatal(err)
				}
				spec = &j.Spec.Template.Spec
			case "Pod":
				p, err := As[corev1.Pod](o)
				if err != nil {
					t.Fatal(err)
				}
				spec = &p.Spec
			case "ServiceAccount":
				sa, err := As[corev1.ServiceAccount](o)
				if err != nil {
					t.Fatal(err)
				}
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("%s: %s automounts its token", name, o.ID())
				}
				continue
			default:
				continue
			}
			checkPodSecurity(t, name+": "+o.ID(), spec)
		}
	}
}

func checkPodSecurity(t *testing.T, id string, spec *corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod may run as root", id)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod without seccomp RuntimeDefault", id)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: pod automounts a service account token", id)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: pod uses host namespaces", id)
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: container %s without securityContext", id, c.Name)
		case sc.RunAsUser != nil && *sc.RunAsUser == 0, sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
			t.Errorf("%s: container %s runs as root", id, c.Name)
		case sc.Privileged != nil && *sc.Privileged, sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: container %s may escalate privileges", id, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: container %s has a writable root filesystem", id, c.Name)
		case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s: container %s does not drop ALL capabilities", id, c.Name)
		}
		if c.Resources.Requests == nil || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: container %s without requests and a memory limit", id, c.Name)
		}
	}
}

// TestNetworkPolicies: every chart pod that serves or calls is covered by a policy; each job
// kind's workers reach only DNS, the database, the broker, the collector, and the LLM or the
// SMTP server as their kind needs.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	for name := range valuesSets {
		r := renderSet(t, name)
		merged := setValues(t, name)
		covered := map[string]*networkingv1.NetworkPolicy{}
		for _, o := range r.Find("NetworkPolicy", "") {
			np, err := As[networkingv1.NetworkPolicy](o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
				t.Errorf("%s: %s does not restrict both directions", name, o.ID())
			}
			covered[np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"]] = np
		}
		want := []string{"api", "worker", "migrations"}
		if get[bool](t, merged, "fakeopenai.enabled") {
			want = append(want, "fakeopenai")
		}
		if get[bool](t, merged, "email.mailpit.enabled") {
			want = append(want, "mailpit")
		}
		for _, c := range want {
			if covered[c] == nil {
				t.Errorf("%s: no NetworkPolicy selects the %s pods", name, c)
			}
		}
		kinds := expectedKinds(t, merged)
		for _, w := range workersOf(t, name, r) {
			checkWorkerEgress(t, name, merged, w, kinds[w.key])
		}
	}
}

// checkWorkerEgress: one NetworkPolicy selects a kind's workers, and lets them reach DNS, the
// database, the broker and the collector (when set), the LLM only for a kind with llm and the
// SMTP port only for a kind with smtp; no rule allows every port.
func checkWorkerEgress(t *testing.T, set string, merged map[string]any, w kindWorkers, e expectedKind) {
	t.Helper()
	id := set + ": " + w.deployment.Name
	if len(w.policies) != 1 {
		t.Errorf("%s: %d NetworkPolicies select its pods, want 1", id, len(w.policies))
		return
	}
	wp := w.policies[0]
	n := len(get[[]any](t, merged, "networkPolicy.dns")) + len(get[[]any](t, merged, "networkPolicy.database"))
	if get[bool](t, merged, "rabbitmq.cluster.enabled") {
		n++ // the chart's own rule to the RabbitmqCluster pods
	} else {
		n += len(get[[]any](t, merged, "networkPolicy.broker"))
	}
	if get[string](t, merged, "otel.endpoint") != "" {
		n += len(get[[]any](t, merged, "networkPolicy.collector"))
	}
	switch {
	case e.llm && get[bool](t, merged, "fakeopenai.enabled"):
		n++
	case e.llm:
		n += len(get[[]any](t, merged, "networkPolicy.llm"))
	}
	smtpPort := 0
	if e.smtp {
		n++
		smtpPort = expectedSMTPPort(t, merged)
	}
	if len(wp.Spec.Egress) != n {
		t.Errorf("%s: %d egress rules, want %d (dns, database, broker, collector; llm %v, smtp %v)", id, len(wp.Spec.Egress), n, e.llm, e.smtp)
	}
	toSMTP := false
	for i, rule := range wp.Spec.Egress {
		if len(rule.Ports) == 0 {
			t.Errorf("%s: egress rule %d allows every port", id, i)
		}
		for _, p := range rule.Ports {
			toSMTP = toSMTP || (e.smtp && p.Port != nil && p.Port.IntValue() == smtpPort)
		}
	}
	if e.smtp && !toSMTP {
		t.Errorf("%s: no egress to the SMTP port %d", id, smtpPort)
	}
	if port, _ := envValue(w.container, "SMTP_PORT"); e.smtp && port.Value != strconv.Itoa(smtpPort) {
		t.Errorf("%s: SMTP_PORT=%q, the egress is open to %d", id, port.Value, smtpPort)
	}
}

// expectedSMTPPort is Mailpit's SMTP port when the chart runs it (email.mailpit.enabled), else
// email.smtp.port, or the one its TLS mode implies (465 for implicit TLS, else 587), as the
// email package defaults it.
func expectedSMTPPort(t *testing.T, merged map[string]any) int {
	t.Helper()
	if get[bool](t, merged, "email.mailpit.enabled") {
		return int(get[float64](t, merged, "email.mailpit.smtpPort"))
	}
	if p := int(get[float64](t, merged, "email.smtp.port")); p != 0 {
		return p
	}
	if get[string](t, merged, "email.smtp.tls") == "tls" {
		return 465
	}
	return 587
}

// TestTopologySpread: api and worker spread over zones and nodes when enabled, selecting only
// their own pods.
func TestTopologySpread(t *testing.T) {
	t.Parallel()
	for _, a := range appDeployments(t, "default", renderSet(t, "default")) {
		tsc := a.d.Spec.Template.Spec.TopologySpreadConstraints
		if len(tsc) != 2 {
			t.Fatalf("%s: %d topology spread constraints, want 2", a.id, len(tsc))
		}
		for _, c := range tsc {
			// Its own pods: the component's, and for workers the kind's.
			if !maps.Equal(c.LabelSelector.MatchLabels, a.d.Spec.Selector.MatchLabels) {
				t.Errorf("%s: spread selects %v, the Deployment %v", a.id, c.LabelSelector.MatchLabels, a.d.Spec.Selector.MatchLabels)
			}
		}
		for k, v := range a.d.Spec.Selector.MatchLabels {
			if k == "app.kubernetes.io/version" || k == "helm.sh/chart" || k == "careerops.io/job-kind" {
				t.Errorf("%s: selector on the changing label %s=%s", a.id, k, v)
			}
		}
	}
}

// TestOTelEnv: the OTLP endpoint comes from otel.endpoint, and each program names itself.
func TestOTelEnv(t *testing.T) {
	t.Parallel()
	for _, a := range appDeployments(t, "dev", renderSet(t, "dev")) {
		c := container(t, a.d.Spec.Template.Spec, a.comp)
		if e, _ := envValue(c, "OTEL_EXPORTER_OTLP_ENDPOINT"); e.Value != "http://jaeger:4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q", a.id, e.Value)
		}
		if e, _ := envValue(c, "OTEL_SERVICE_NAME"); e.Value != "careerops-"+a.comp {
			t.Errorf("%s: OTEL_SERVICE_NAME=%q", a.id, e.Value)
		}
		if e, _ := envValue(c, "OTEL_RESOURCE_ATTRIBUTES"); !strings.Contains(e.Value, "deployment.environment.name=dev") {
			t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES=%q", a.id, e.Value)
		}
	}
}

// TestLLMEnv: the endpoint settings reach the worker when set and are left to its defaults
// when not; the fallback's settings only with llm.fallback.enabled, its key from its Secret.
func TestLLMEnv(t *testing.T) {
	t.Parallel()
	for _, w := range workersOf(t, "all-optional", renderSet(t, "all-optional")) {
		checkLLMEnv(t, "all-optional: "+w.deployment.Name, w.container)
	}
	for _, w := range workersOf(t, "staging", renderSet(t, "staging")) {
		for _, e := range w.container.Env {
			if strings.HasPrefix(e.Name, "LLM_FALLBACK_") || strings.HasPrefix(e.Name, "LLM_BREAKER_") || e.Name == "OPENAI_API_TYPE" || e.Name == "LLM_MAX_TOKENS" {
				t.Errorf("staging: %s: %s=%q set, want it left to the worker's default", w.deployment.Name, e.Name, e.Value)
			}
		}
	}
}

// checkLLMEnv: all-optional's LLM settings, fallback included, reach the container.
func checkLLMEnv(t *testing.T, id string, all corev1.Container) {
	t.Helper()
	for name, want := range map[string]string{
		"OPENAI_API_TYPE": "azure", "OPENAI_MODEL_KIND": "chat", "OPENAI_API_VERSION": "2024-10-21",
		"AZURE_OPENAI_DEPLOYMENT": "letters", "LLM_MAX_TOKENS": "900",
		"LLM_FALLBACK_BASE_URL": "https://api.openai.com/v1", "LLM_FALLBACK_MODEL": "gpt-4o-mini",
		"LLM_BREAKER_FAILURES": "3", "LLM_BREAKER_COOLDOWN": "20s",
	} {
		if e, ok := envValue(all, name); !ok || e.Value != want {
			t.Errorf("%s: %s=%q (set %v), want %q", id, name, e.Value, ok, want)
		}
	}
	key, _ := envValue(all, "LLM_FALLBACK_API_KEY")
	if ref := key.ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "careerops-llm-fallback" || ref.SecretKeyRef.Key != "LLM_FALLBACK_API_KEY" {
		t.Errorf("%s: LLM_FALLBACK_API_KEY comes from %+v, want Secret careerops-llm-fallback", id, key.ValueFrom)
	}
}

// setValues are the values of one of valuesSets, merged over values.yaml.
func setValues(t *testing.T, name string) map[string]any {
	t.Helper()
	vals, err := LoadValues(valuesSets[name], nil)
	if err != nil {
		t.Fatal(err)
	}
	return withDefaults(t, vals)
}

// TestEmailEnv: email reaches only the email kind's workers, and only when it is on: in dev, to
// the chart's Mailpit Service (on its SMTP port, no TLS, no password); with an external server,
// its settings and the password from its Secret; either way JWT_SECRET from the api's Secret
// (it signs the unsubscribe links). The cover letters' workers get none of it.
func TestEmailEnv(t *testing.T) {
	t.Parallel()
	dev := renderSet(t, "dev")
	w := container(t, deployment(t, dev, "worker-email").Spec.Template.Spec, "worker")
	mailpit := container(t, deployment(t, dev, "mailpit").Spec.Template.Spec, "mailpit")
	host, _ := envValue(w, "SMTP_HOST")
	port, _ := envValue(w, "SMTP_PORT")
	tls, _ := envValue(w, "SMTP_TLS")
	if len(dev.Find("Service", "-mailpit")) != 1 || host.Value != "careerops-mailpit" || tls.Value != "none" {
		t.Errorf("dev: SMTP_HOST=%q SMTP_TLS=%q, want the careerops-mailpit Service without TLS", host.Value, tls.Value)
	}
	smtpPort := ""
	for _, p := range mailpit.Ports {
		if p.Name == "smtp" {
			smtpPort = strconv.Itoa(int(p.ContainerPort))
		}
	}
	if port.Value != smtpPort {
		t.Errorf("dev: SMTP_PORT=%q, Mailpit takes email on %q", port.Value, smtpPort)
	}
	if e, ok := envValue(w, "SMTP_PASSWORD"); ok {
		t.Errorf("dev: SMTP_PASSWORD set (%+v), Mailpit takes no password", e)
	}
	checkSameSecret(t, "dev", dev, w, "JWT_SECRET")
	allR := renderSet(t, "all-optional")
	all := container(t, deployment(t, allR, "worker-email").Spec.Template.Spec, "worker")
	for name, want := range map[string]string{
		"SMTP_HOST": "smtp.example.com", "SMTP_PORT": "2525", "SMTP_TLS": "tls", "SMTP_USERNAME": "careerops",
		"PUBLIC_BASE_URL": "https://careerops.staging.example.com", // the first ingress host
	} {
		if e, ok := envValue(all, name); !ok || e.Value != want {
			t.Errorf("all-optional: %s=%q (set %v), want %q", name, e.Value, ok, want)
		}
	}
	if pw, _ := envValue(all, "SMTP_PASSWORD"); pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil || pw.ValueFrom.SecretKeyRef.Name != "careerops-smtp" {
		t.Errorf("all-optional: SMTP_PASSWORD comes from %+v, want Secret careerops-smtp", pw.ValueFrom)
	}
	checkSameSecret(t, "all-optional", allR, all, "JWT_SECRET")
	for _, set := range []string{"default", "dev", "all-optional"} {
		cl := container(t, deployment(t, renderSet(t, set), "worker-cover-letter").Spec.Template.Spec, "worker")
		for _, e := range cl.Env {
			if strings.HasPrefix(e.Name, "SMTP_") || e.Name == "PUBLIC_BASE_URL" || e.Name == "JWT_SECRET" {
				t.Errorf("%s: cover-letter worker has %s, want no email settings", set, e.Name)
			}
		}
	}
}

// checkSameSecret: the worker container's variable comes from the same Secret and key as the
// api's.
func checkSameSecret(t *testing.T, set string, r Rendered, c corev1.Container, name string) {
	t.Helper()
	api, _ := envValue(container(t, deployment(t, r, "api").Spec.Template.Spec, "api"), name)
	got, _ := envValue(c, name)
	if got.ValueFrom == nil || got.ValueFrom.SecretKeyRef == nil || api.ValueFrom == nil || api.ValueFrom.SecretKeyRef == nil ||
		*got.ValueFrom.SecretKeyRef != *api.ValueFrom.SecretKeyRef {
		t.Errorf("%s: %s comes from %+v, want the api's %+v", set, name, got.ValueFrom, api.ValueFrom)
	}
}

// withDefaults merges user values over values.yaml.
func withDefaults(t *testing.T, vals map[string]any) map[string]any {
	t.Helper()
	def, err := LoadValues([]string{"values.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mergeMaps(def, vals)
}

// get reads a dotted path of values.
func get[T any](t *testing.T, vals map[string]any, path string) T {
	t.Helper()
	var cur any = vals
	for p := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("values: %s: %s is not a map", path, p)
		}
		cur = m[p]
	}
	v, ok := cur.(T)
	if !ok {
		var zero T
		if cur == nil {
			return zero
		}
		t.Fatalf("values: %s is %T, not %T", path, cur, zero)
	}
	return v
}
