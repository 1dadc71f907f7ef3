package chartcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
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
	"github.com/careerops/jobs/internal/job"
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
// SDK's), every required one is set, and secrets come from Secrets.
func TestEnvMatchesPrograms(t *testing.T) {
	t.Parallel()
	api := envSpecOf("api", app.APIConfig{})
	worker := envSpecOf("worker", app.WorkerConfig{})
	ctl := ctlEnvSpec(t)
	for name := range valuesSets {
		r := renderSet(t, name)
		checkEnv(t, name, container(t, deployment(t, r, "api").Spec.Template.Spec, "api"), api)
		checkEnv(t, name, container(t, deployment(t, r, "worker").Spec.Template.Spec, "worker"), worker)
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

// TestScaledObject: KEDA scales the worker Deployment on the queue the worker consumes, as the
// issue specifies (http protocol, QueueLength, value = concurrency, scale to zero, fallback,
// scale-down window), with credentials from the same Secret the worker uses.
func TestScaledObject(t *testing.T) {
	t.Parallel()
	for name := range valuesSets {
		r := renderSet(t, name)
		vals, err := LoadValues(valuesSets[name], nil)
		if err != nil {
			t.Fatal(err)
		}
		merged := withDefaults(t, vals)
		w := deployment(t, r, "worker")
		sos := r.Find("ScaledObject", "")
		if len(sos) != 1 {
			t.Fatalf("%s: want one ScaledObject, got %d", name, len(sos))
		}
		so, err := As[kedav1alpha1.ScaledObject](sos[0])
		if err != nil {
			t.Fatal(err)
		}
		ref := so.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != w.Name {
			t.Errorf("%s: ScaledObject targets %s %s %s, not the worker Deployment %s", name, ref.APIVersion, ref.Kind, ref.Name, w.Name)
		}
		if w.Spec.Replicas != nil {
			t.Errorf("%s: the worker Deployment sets replicas while KEDA owns them", name)
		}
		if len(so.Spec.Triggers) != 1 {
			t.Fatalf("%s: want one trigger", name)
		}
		tr := so.Spec.Triggers[0]
		md := tr.Metadata
		conc := container(t, w.Spec.Template.Spec, "worker")
		concEnv, _ := envValue(conc, "WORKER_CONCURRENCY")
		checks := []struct{ what, got, want string }{
			{"trigger type", tr.Type, "rabbitmq"},
			{"queueName (job.QueueGenerate)", md["queueName"], job.QueueGenerate},
			{"protocol", md["protocol"], "http"},
			{"mode", md["mode"], "QueueLength"},
			{"value (= WORKER_CONCURRENCY)", md["value"], concEnv.Value},
			{"vhostName", md["vhostName"], get[string](t, merged, "rabbitmq.vhost")},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: ScaledObject %s = %q, want %q", name, c.what, c.got, c.want)
			}
		}
		if _, ok := md["activationValue"]; !ok {
			t.Errorf("%s: no activationValue", name)
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount != int32(get[float64](t, merged, "worker.autoscaling.minReplicas")) {
			t.Errorf("%s: minReplicaCount is not worker.autoscaling.minReplicas", name)
		}
		if so.Spec.CooldownPeriod == nil || so.Spec.Fallback == nil || so.Spec.Advanced == nil ||
			so.Spec.Advanced.HorizontalPodAutoscalerConfig == nil || so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior == nil ||
			so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown == nil ||
			so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.StabilizationWindowSeconds == nil {
			t.Errorf("%s: ScaledObject lacks cooldownPeriod, fallback or a scale-down stabilisation window", name)
		}
		// The TriggerAuthentication reads the broker Secret the worker's RABBITMQ_URL comes from.
		if tr.AuthenticationRef == nil {
			t.Fatalf("%s: trigger without authenticationRef", name)
		}
		tas := r.Find("TriggerAuthentication", tr.AuthenticationRef.Name)
		if len(tas) != 1 || tas[0].Name != tr.AuthenticationRef.Name {
			t.Fatalf("%s: TriggerAuthentication %s not rendered", name, tr.AuthenticationRef.Name)
		}
		ta, err := As[kedav1alpha1.TriggerAuthentication](tas[0])
		if err != nil {
			t.Fatal(err)
		}
		rmq, _ := envValue(conc, "RABBITMQ_URL")
		params := map[string]bool{}
		for _, s := range ta.Spec.SecretTargetRef {
			params[s.Parameter] = true
			if s.Name != rmq.ValueFrom.SecretKeyRef.Name {
				t.Errorf("%s: TriggerAuthentication reads Secret %s, the worker's broker Secret is %s", name, s.Name, rmq.ValueFrom.SecretKeyRef.Name)
			}
		}
		if !params["username"] || !params["password"] {
			t.Errorf("%s: TriggerAuthentication parameters %v, want username and password", name, params)
		}
		if get[bool](t, merged, "rabbitmq.cluster.enabled") {
			rcs := r.Find("RabbitmqCluster", "")
			if len(rcs) != 1 {
				t.Fatalf("%s: want one RabbitmqCluster", name)
			}
			rc, err := As[rabbitmqv1beta1.RabbitmqCluster](rcs[0])
			if err != nil {
				t.Fatal(err)
			}
			if want := rc.Name + "-default-user"; rmq.ValueFrom.SecretKeyRef.Name != want || rmq.ValueFrom.SecretKeyRef.Key != "connection_string" {
				t.Errorf("%s: RABBITMQ_URL from %s/%s, want %s/connection_string", name, rmq.ValueFrom.SecretKeyRef.Name, rmq.ValueFrom.SecretKeyRef.Key, want)
			}
			if want := fmt.Sprintf("http://%s.%s.svc:15672", rc.Name, Namespace); md["host"] != want {
				t.Errorf("%s: KEDA host %q, want the cluster's management API %q", name, md["host"], want)
			}
			ct := consumerTimeoutSeconds(t, rc.Spec.Rabbitmq.AdditionalConfig)
			llm := envDuration(t, conc, "LLM_BUDGET_MAX_WAIT") + envDuration(t, conc, "LLM_TIMEOUT")
			if worst := llm + 30*time.Second; ct <= worst {
				t.Errorf("%s: consumer_timeout %v does not exceed the worst job %v", name, ct, worst)
			}
		}
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
		w := deployment(t, renderSet(t, name), "worker")
		c := container(t, w.Spec.Template.Spec, "worker")
		need := envDuration(t, c, "WORKER_DRAIN_TIMEOUT") + envDuration(t, c, "LLM_TIMEOUT") + 5*time.Second
		g := w.Spec.Template.Spec.TerminationGracePeriodSeconds
		if g == nil || time.Duration(*g)*time.Second < need {
			t.Errorf("%s: worker terminationGracePeriodSeconds %v < drain + LLM timeout + 5s = %v", name, g, need)
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
		r := renderSet(t, name)
		for _, comp := range []string{"api", "worker"} {
			d := deployment(t, r, comp)
			c := container(t, d.Spec.Template.Spec, comp)
			e, _ := envValue(c, addrEnv[comp])
			_, portStr, err := net.SplitHostPort(e.Value)
			if err != nil {
				t.Fatalf("%s: %s %s=%q: %v", name, comp, addrEnv[comp], e.Value, err)
			}
			listen, _ := strconv.Atoi(portStr)
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
				if p.ContainerPort != int32(listen) {
					t.Errorf("%s: %s exposes port %d, the program listens on %d", name, comp, p.ContainerPort, listen)
				}
			}
			probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
			for kind, p := range probes {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s: %s has no HTTP %s probe", name, comp, kind)
					continue
				}
				if !served[comp][p.HTTPGet.Path] {
					t.Errorf("%s: %s %s probe on %s, which the program does not serve", name, comp, kind, p.HTTPGet.Path)
				}
				if _, ok := ports[p.HTTPGet.Port.String()]; !ok {
					t.Errorf("%s: %s %s probe on port %s, not a container port", name, comp, kind, p.HTTPGet.Port.String())
				}
			}
			if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: %s liveness must be /healthz (readiness depends on the database and broker)", name, comp)
			}
			if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%s: %s readiness must be /readyz", name, comp)
			}
		}
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

// TestNetworkPolicies: the worker's egress goes only to DNS, the database, the broker, the LLM
// and the collector; every chart pod that serves or calls is covered by a policy.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	for name := range valuesSets {
		r := renderSet(t, name)
		vals, _ := LoadValues(valuesSets[name], nil)
		merged := withDefaults(t, vals)
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
		wp := covered["worker"]
		if wp == nil {
			continue
		}
		// Expected egress: dns + database + broker + (collector if set) + llm.
		n := len(get[[]any](t, merged, "networkPolicy.dns")) + len(get[[]any](t, merged, "networkPolicy.database"))
		if get[bool](t, merged, "rabbitmq.cluster.enabled") {
			n++ // the chart's own rule to the RabbitmqCluster pods
		} else {
			n += len(get[[]any](t, merged, "networkPolicy.broker"))
		}
		if get[string](t, merged, "otel.endpoint") != "" {
			n += len(get[[]any](t, merged, "networkPolicy.collector"))
		}
		if get[bool](t, merged, "fakeopenai.enabled") {
			n++
		} else {
			n += len(get[[]any](t, merged, "networkPolicy.llm"))
		}
		switch {
		case get[bool](t, merged, "email.mailpit.enabled"):
			n++ // the chart's own rule to Mailpit
		case get[string](t, merged, "email.smtpHost") != "":
			n += len(get[[]any](t, merged, "networkPolicy.smtp"))
		}
		if len(wp.Spec.Egress) != n {
			t.Errorf("%s: worker has %d egress rules, want %d (dns, database, broker, llm, collector, smtp)", name, len(wp.Spec.Egress), n)
		}
		for i, e := range wp.Spec.Egress {
			if len(e.Ports) == 0 {
				t.Errorf("%s: worker egress rule %d allows every port", name, i)
			}
		}
	}
}

// TestTopologySpread: api and worker spread over zones and nodes when enabled, selecting only
// their own pods.
func TestTopologySpread(t *testing.T) {
	t.Parallel()
	r := renderSet(t, "default")
	for _, comp := range []string{"api", "worker"} {
		d := deployment(t, r, comp)
		tsc := d.Spec.Template.Spec.TopologySpreadConstraints
		if len(tsc) != 2 {
			t.Fatalf("%s: %d topology spread constraints, want 2", comp, len(tsc))
		}
		for _, c := range tsc {
			if c.LabelSelector.MatchLabels["app.kubernetes.io/component"] != comp {
				t.Errorf("%s: spread selects %v", comp, c.LabelSelector.MatchLabels)
			}
		}
		for k, v := range d.Spec.Selector.MatchLabels {
			if k == "app.kubernetes.io/version" || k == "helm.sh/chart" {
				t.Errorf("%s: selector on the changing label %s=%s", comp, k, v)
			}
		}
	}
}

// TestOTelEnv: the OTLP endpoint comes from otel.endpoint, and each program names itself.
func TestOTelEnv(t *testing.T) {
	t.Parallel()
	r := renderSet(t, "dev")
	for _, comp := range []string{"api", "worker"} {
		c := container(t, deployment(t, r, comp).Spec.Template.Spec, comp)
		if e, _ := envValue(c, "OTEL_EXPORTER_OTLP_ENDPOINT"); e.Value != "http://jaeger:4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q", comp, e.Value)
		}
		if e, _ := envValue(c, "OTEL_SERVICE_NAME"); e.Value != "careerops-"+comp {
			t.Errorf("%s: OTEL_SERVICE_NAME=%q", comp, e.Value)
		}
		if e, _ := envValue(c, "OTEL_RESOURCE_ATTRIBUTES"); !strings.Contains(e.Value, "deployment.environment.name=dev") {
			t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES=%q", comp, e.Value)
		}
	}
}

// TestLLMEnv: the endpoint settings reach the worker when set and are left to its defaults
// when not; the fallback's settings only with llm.fallback.enabled, its key from its Secret.
func TestLLMEnv(t *testing.T) {
	t.Parallel()
	all := container(t, deployment(t, renderSet(t, "all-optional"), "worker").Spec.Template.Spec, "worker")
	for name, want := range map[string]string{
		"OPENAI_API_TYPE": "azure", "OPENAI_MODEL_KIND": "chat", "OPENAI_API_VERSION": "2024-10-21",
		"AZURE_OPENAI_DEPLOYMENT": "letters", "LLM_MAX_TOKENS": "900",
		"LLM_FALLBACK_BASE_URL": "https://api.openai.com/v1", "LLM_FALLBACK_MODEL": "gpt-4o-mini",
		"LLM_BREAKER_FAILURES": "3", "LLM_BREAKER_COOLDOWN": "20s",
	} {
		if e, ok := envValue(all, name); !ok || e.Value != want {
			t.Errorf("all-optional: %s=%q (set %v), want %q", name, e.Value, ok, want)
		}
	}
	key, _ := envValue(all, "LLM_FALLBACK_API_KEY")
	if ref := key.ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "careerops-llm-fallback" || ref.SecretKeyRef.Key != "LLM_FALLBACK_API_KEY" {
		t.Errorf("all-optional: LLM_FALLBACK_API_KEY comes from %+v, want Secret careerops-llm-fallback", key.ValueFrom)
	}
	staging := container(t, deployment(t, renderSet(t, "staging"), "worker").Spec.Template.Spec, "worker")
	for _, e := range staging.Env {
		if strings.HasPrefix(e.Name, "LLM_FALLBACK_") || strings.HasPrefix(e.Name, "LLM_BREAKER_") || e.Name == "OPENAI_API_TYPE" || e.Name == "LLM_MAX_TOKENS" {
			t.Errorf("staging: %s=%q set, want it left to the worker's default", e.Name, e.Value)
		}
	}
}

// TestEmailEnv: email reaches the worker only when it is on: in dev, to the chart's Mailpit
// Service (on its SMTP port, no TLS); with an external server, its settings and the password
// from its Secret; by default, no SMTP_* at all (the worker sends no email).
func TestEmailEnv(t *testing.T) {
	t.Parallel()
	dev := renderSet(t, "dev")
	w := container(t, deployment(t, dev, "worker").Spec.Template.Spec, "worker")
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
	all := container(t, deployment(t, renderSet(t, "all-optional"), "worker").Spec.Template.Spec, "worker")
	for name, want := range map[string]string{
		"SMTP_HOST": "smtp.example.com", "SMTP_PORT": "465", "SMTP_TLS": "tls", "SMTP_USERNAME": "careerops",
		"PUBLIC_BASE_URL": "https://careerops.example.com",
	} {
		if e, ok := envValue(all, name); !ok || e.Value != want {
			t.Errorf("all-optional: %s=%q (set %v), want %q", name, e.Value, ok, want)
		}
	}
	pw, _ := envValue(all, "SMTP_PASSWORD")
	if ref := pw.ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "careerops-smtp" {
		t.Errorf("all-optional: SMTP_PASSWORD comes from %+v, want Secret careerops-smtp", pw.ValueFrom)
	}
	def := container(t, deployment(t, renderSet(t, "default"), "worker").Spec.Template.Spec, "worker")
	for _, e := range def.Env {
		if strings.HasPrefix(e.Name, "SMTP_") || e.Name == "PUBLIC_BASE_URL" {
			t.Errorf("default: %s=%q set, want no email", e.Name, e.Value)
		}
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
