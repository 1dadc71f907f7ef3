package chartcheck

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/careerops/jobs/internal/job"
)

// workerLabel is the selector label that tells one job kind's workers from another's: its
// value is the kind's key in worker.kinds.
const workerLabel = "careerops.io/worker"

// knownKinds are the job kinds the worker program declares. values.yaml may only list these;
// the throwaway kinds of the tests' values files are on top of them.
var knownKinds = job.Kinds()

// kindWorkers is what the chart rendered for one job kind's workers, found from the objects
// themselves: the Deployment (component worker), the ScaledObject that targets it and the
// NetworkPolicies that select its pods.
type kindWorkers struct {
	key        string // the careerops.io/worker label: the kind's key in worker.kinds
	kind       string // WORKER_KINDS
	deployment *appsv1.Deployment
	container  corev1.Container
	scaled     *kedav1alpha1.ScaledObject // nil: no autoscaling for this kind
	policies   []*networkingv1.NetworkPolicy
}

// workersOf pairs every worker Deployment of r with its ScaledObject and NetworkPolicies, and
// fails on what would make two kinds' workers one: a Deployment that runs no kind or several,
// two that run the same kind, a selector that takes another kind's pods, a ScaledObject that
// targets no worker Deployment or shares one with another.
func workersOf(t *testing.T, set string, r Rendered) []kindWorkers {
	t.Helper()
	var out []kindWorkers
	for _, o := range r.Find("Deployment", "") {
		d, err := As[appsv1.Deployment](o)
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec.Template.Labels["app.kubernetes.io/component"] != "worker" {
			continue
		}
		c := container(t, d.Spec.Template.Spec, "worker")
		kinds, _ := envValue(c, "WORKER_KINDS")
		if kinds.Value == "" || strings.Contains(kinds.Value, ",") {
			t.Fatalf("%s: %s runs WORKER_KINDS=%q, want exactly one job kind per Deployment", set, d.Name, kinds.Value)
		}
		out = append(out, kindWorkers{key: d.Spec.Template.Labels[workerLabel], kind: kinds.Value, deployment: d, container: c})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no worker Deployment rendered", set)
	}
	seen := map[string]string{}
	for i, w := range out {
		if other, ok := seen[w.kind]; ok {
			t.Errorf("%s: %s and %s both run %s", set, other, w.deployment.Name, w.kind)
		}
		seen[w.kind] = w.deployment.Name
		sel, err := metav1.LabelSelectorAsSelector(w.deployment.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for j, other := range out {
			if i != j && sel.Matches(labels.Set(other.deployment.Spec.Template.Labels)) {
				t.Errorf("%s: the selector of %s takes the pods of %s", set, w.deployment.Name, other.deployment.Name)
			}
		}
		for _, o := range r.Find("NetworkPolicy", "") {
			np, err := As[networkingv1.NetworkPolicy](o)
			if err != nil {
				t.Fatal(err)
			}
			if labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(labels.Set(w.deployment.Spec.Template.Labels)) {
				out[i].policies = append(out[i].policies, np)
			}
		}
	}
	for _, o := range r.Find("ScaledObject", "") {
		so, err := As[kedav1alpha1.ScaledObject](o)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(out, func(w kindWorkers) bool { return w.deployment.Name == so.Spec.ScaleTargetRef.Name })
		switch {
		case i < 0:
			t.Errorf("%s: ScaledObject %s targets %s, no worker Deployment", set, so.Name, so.Spec.ScaleTargetRef.Name)
		case out[i].scaled != nil:
			t.Errorf("%s: ScaledObjects %s and %s both scale %s", set, out[i].scaled.Name, so.Name, out[i].deployment.Name)
		default:
			out[i].scaled = so
		}
	}
	return out
}

// expectedKind is one job kind's workers as the values say they should be: the shared worker
// settings with the kind's overrides applied (a re-statement of careerops.workerKinds, so
// the two are checked against each other).
type expectedKind struct {
	kind                 string
	llm, smtp            bool
	concurrency          int
	replicas             int
	autoscaling          map[string]any
	resources            map[string]any
	minReplicas, maxRepl int
}

// expectedKinds are the kinds whose workers the merged values ask for, by key: the enabled
// ones, without those that send email while email is off.
func expectedKinds(t *testing.T, merged map[string]any) map[string]expectedKind {
	t.Helper()
	out := map[string]expectedKind{}
	shared := get[map[string]any](t, merged, "worker")
	for key, v := range get[map[string]any](t, merged, "worker.kinds") {
		k, _ := v.(map[string]any)
		if enabled, _ := k["enabled"].(bool); !enabled {
			continue
		}
		smtp, _ := k["smtp"].(bool)
		if smtp && !emailOn(t, merged) {
			continue
		}
		llm, _ := k["llm"].(bool)
		override := func(name string) any {
			if v, ok := k[name]; ok && v != nil {
				return v
			}
			return shared[name]
		}
		as := maps.Clone(shared["autoscaling"].(map[string]any))
		if kas, ok := k["autoscaling"].(map[string]any); ok {
			maps.Copy(as, kas)
		}
		res, _ := override("resources").(map[string]any)
		out[key] = expectedKind{
			kind: k["kind"].(string), llm: llm, smtp: smtp,
			concurrency: int(override("concurrency").(float64)), replicas: int(override("replicas").(float64)),
			autoscaling: as, resources: res,
			minReplicas: int(as["minReplicas"].(float64)), maxRepl: int(as["maxReplicas"].(float64)),
		}
	}
	return out
}

// emailOn says whether the values turn email on (careerops.emailEnabled: an SMTP host, or the
// chart's Mailpit): only then do the kinds that send email (smtp) get workers.
func emailOn(t *testing.T, merged map[string]any) bool {
	t.Helper()
	return get[bool](t, merged, "email.mailpit.enabled") || get[string](t, merged, "email.smtp.host") != ""
}

// TestOneWorkerPerKind: every values set renders one worker Deployment per job kind it enables
// (named <fullname>-worker-<key>, WORKER_KINDS = that kind alone, its own selector), with the
// kind's concurrency, replicas and resources, a ScaledObject on the kind's own queue when its
// autoscaling is on (none otherwise), and nothing for a kind that is disabled or sends email
// while email is off. The "extra-kind" set adds a throwaway kind, so nothing here knows the
// kinds by name.
func TestOneWorkerPerKind(t *testing.T) {
	t.Parallel()
	for name := range valuesSets {
		r := renderSet(t, name)
		merged := setValues(t, name)
		want := expectedKinds(t, merged)
		got := workersOf(t, name, r)
		if len(got) != len(want) {
			t.Errorf("%s: %d worker Deployments, want %d (%v)", name, len(got), len(want), slices.Sorted(maps.Keys(want)))
		}
		for _, w := range got {
			e, ok := want[w.key]
			if !ok {
				t.Errorf("%s: %s (worker %q) is not an enabled kind of the values", name, w.deployment.Name, w.key)
				continue
			}
			checkKindWorkers(t, name, w, e)
		}
	}
	// values.yaml lists only kinds the program declares.
	def, err := LoadValues([]string{"values.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for key, v := range get[map[string]any](t, def, "worker.kinds") {
		if k, _ := v.(map[string]any)["kind"].(string); !slices.Contains(knownKinds, k) {
			t.Errorf("values.yaml: worker.kinds.%s runs %v, which the worker does not declare (%v)", key, k, knownKinds)
		}
	}
}

func checkKindWorkers(t *testing.T, set string, w kindWorkers, e expectedKind) {
	t.Helper()
	id := set + ": " + w.deployment.Name
	if want := "careerops-worker-" + w.key; w.deployment.Name != want {
		t.Errorf("%s: named %s, want %s", id, w.deployment.Name, want)
	}
	if w.kind != e.kind {
		t.Errorf("%s: WORKER_KINDS=%s, want %s", id, w.kind, e.kind)
	}
	if w.deployment.Spec.Selector.MatchLabels[workerLabel] != w.key {
		t.Errorf("%s: selector %v lacks %s=%s", id, w.deployment.Spec.Selector.MatchLabels, workerLabel, w.key)
	}
	if got := w.deployment.Labels["careerops.io/job-kind"]; got != e.kind {
		t.Errorf("%s: label careerops.io/job-kind=%q, want %s", id, got, e.kind)
	}
	conc, _ := envValue(w.container, "WORKER_CONCURRENCY")
	if conc.Value != strconv.Itoa(e.concurrency) {
		t.Errorf("%s: WORKER_CONCURRENCY=%s, want %d", id, conc.Value, e.concurrency)
	}
	limits, _ := e.resources["limits"].(map[string]any)
	if mem, want := w.container.Resources.Limits.Memory().String(), limits["memory"]; mem != want {
		t.Errorf("%s: memory limit %s, want %v (the kind's resources, else worker.resources)", id, mem, want)
	}
	if _, ok := envValue(w.container, "SMTP_HOST"); ok != e.smtp {
		t.Errorf("%s: SMTP settings present=%v, want %v (smtp)", id, ok, e.smtp)
	}
	autoscaled, _ := e.autoscaling["enabled"].(bool)
	switch {
	case !autoscaled:
		if w.scaled != nil {
			t.Errorf("%s: ScaledObject %s while the kind's autoscaling is off", id, w.scaled.Name)
		}
		if r := w.deployment.Spec.Replicas; r == nil || int(*r) != e.replicas {
			t.Errorf("%s: replicas %s, want %d", id, fmtPtr(r), e.replicas)
		}
	case w.scaled == nil:
		t.Errorf("%s: no ScaledObject targets it", id)
	default:
		checkKindTrigger(t, id, w, e)
	}
}

// checkKindTrigger: the kind's ScaledObject reads the kind's queue, aims at one replica per
// WORKER_CONCURRENCY messages, within the kind's own bounds.
func checkKindTrigger(t *testing.T, id string, w kindWorkers, e expectedKind) {
	t.Helper()
	so := w.scaled
	if w.deployment.Spec.Replicas != nil {
		t.Errorf("%s: sets replicas while KEDA owns them", id)
	}
	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("%s: ScaledObject %s has %d triggers, want one", id, so.Name, len(so.Spec.Triggers))
	}
	md := so.Spec.Triggers[0].Metadata
	conc, _ := envValue(w.container, "WORKER_CONCURRENCY")
	if md["queueName"] != w.kind {
		t.Errorf("%s: ScaledObject reads queue %q, the workers run %q", id, md["queueName"], w.kind)
	}
	if md["value"] != conc.Value {
		t.Errorf("%s: ScaledObject value %q, WORKER_CONCURRENCY %q", id, md["value"], conc.Value)
	}
	if so.Spec.MinReplicaCount == nil || int(*so.Spec.MinReplicaCount) != e.minReplicas ||
		so.Spec.MaxReplicaCount == nil || int(*so.Spec.MaxReplicaCount) != e.maxRepl {
		t.Errorf("%s: ScaledObject replicas %s..%s, want %d..%d", id, fmtPtr(so.Spec.MinReplicaCount), fmtPtr(so.Spec.MaxReplicaCount), e.minReplicas, e.maxRepl)
	}
	if got := so.Labels["careerops.io/job-kind"]; got != e.kind {
		t.Errorf("%s: ScaledObject label careerops.io/job-kind=%q, want %s", id, got, e.kind)
	}
}

// jobAlerts are the alerts the PrometheusRule has once per job kind.
var jobAlerts = []string{"CareerOpsDeadLetterGrowth", "CareerOpsDeadLetterQueueNotEmpty", "CareerOpsQueueWaitHigh", "CareerOpsJobFailureRatioHigh"}

// TestMonitoringPerKind: the PrometheusRule has each job alert once per kind whose workers
// run, labelled with the kind and reading only that kind's series (kind="<kind>", or its
// dead-letter queue <kind>.dlq), and none for a kind that has no workers; the metrics Service
// the worker ServiceMonitor scrapes selects the pods of every kind.
func TestMonitoringPerKind(t *testing.T) {
	t.Parallel()
	for name := range valuesSets {
		r := renderSet(t, name)
		workers := workersOf(t, name, r)
		for _, o := range r.Find("PrometheusRule", "") {
			pr, err := As[monitoringv1.PrometheusRule](o)
			if err != nil {
				t.Fatal(err)
			}
			checkAlertsPerKind(t, name, pr, workers)
		}
		for _, o := range r.Find("Service", "-worker-metrics") {
			svc, err := As[corev1.Service](o)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range workers {
				if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.deployment.Spec.Template.Labels)) {
					t.Errorf("%s: Service %s does not select the pods of %s: their metrics are not scraped", name, svc.Name, w.deployment.Name)
				}
			}
		}
	}
}

// TestCostBurnAlert: with metrics.prometheusRule.costPerHourBudget set (extra-kind: 2.5) the
// PrometheusRule has CareerOpsCostBurn on the usage cost counters, compared with that budget
// in currency units; without it (staging), none.
func TestCostBurnAlert(t *testing.T) {
	t.Parallel()
	for set, want := range map[string]string{"extra-kind": "/ 1e6 > 2.5", "staging": ""} {
		var found []string
		for _, o := range renderSet(t, set).Find("PrometheusRule", "") {
			pr, err := As[monitoringv1.PrometheusRule](o)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range pr.Spec.Groups {
				for _, rule := range g.Rules {
					if rule.Alert == "CareerOpsCostBurn" {
						found = append(found, rule.Expr.String())
					}
				}
			}
		}
		switch {
		case want == "" && len(found) > 0:
			t.Errorf("%s: CareerOpsCostBurn %v without a budget", set, found)
		case want != "" && (len(found) != 1 || !strings.Contains(found[0], "careerops_usage_cost_micros_total") || !strings.HasSuffix(strings.TrimSpace(found[0]), want)):
			t.Errorf("%s: CareerOpsCostBurn %v, want one on careerops_usage_cost_micros_total ending %q", set, found, want)
		}
	}
}

func checkAlertsPerKind(t *testing.T, set string, pr *monitoringv1.PrometheusRule, workers []kindWorkers) {
	t.Helper()
	count := map[string]int{} // "alert kind" → rules
	for _, g := range pr.Spec.Groups {
		for _, rule := range g.Rules {
			kind, ok := rule.Labels["kind"]
			if !ok {
				continue
			}
			count[rule.Alert+" "+kind]++
			expr := rule.Expr.String()
			if !strings.Contains(expr, `kind="`+kind+`"`) && !strings.Contains(expr, `queue="`+kind+`.dlq"`) {
				t.Errorf("%s: %s for %s reads %s, not the kind's series", set, rule.Alert, kind, expr)
			}
			if !slices.ContainsFunc(workers, func(w kindWorkers) bool { return w.kind == kind }) {
				t.Errorf("%s: %s for %s, which has no workers", set, rule.Alert, kind)
			}
		}
	}
	for _, w := range workers {
		for _, a := range jobAlerts {
			if n := count[a+" "+w.kind]; n != 1 {
				t.Errorf("%s: %d %s alerts for %s, want 1", set, n, a, w.kind)
			}
		}
	}
}

// fmtPtr prints *p, or "unset".
func fmtPtr(p *int32) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(int(*p))
}

// TestWorkerNamesFit: the longest full name (50 characters) with the longest kind key (24)
// still gives worker objects valid names of at most 63 characters, each ending with the
// whole key, so two kinds never share a name.
func TestWorkerNamesFit(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("k", 24)
	r, err := Render(nil, map[string]any{
		"fullnameOverride": strings.Repeat("f", 50),
		"worker": map[string]any{"kinds": map[string]any{
			key: map[string]any{"kind": "digests.weekly", "enabled": true},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range r.Objects {
		if o.Kind != "Deployment" && o.Kind != "ScaledObject" && o.Kind != "NetworkPolicy" || !strings.Contains(o.Name, "-worker-") {
			continue
		}
		n++
		whole := slices.ContainsFunc([]string{key, "cover-letter", "analytics", "export"}, func(k string) bool { return strings.HasSuffix(o.Name, "-worker-"+k) })
		if len(o.Name) > 63 || !whole {
			t.Errorf("%s: %d characters, or the key cut", o.ID(), len(o.Name))
		}
		for _, msg := range validation.IsDNS1123Label(o.Name) {
			t.Errorf("%s: %s", o.ID(), msg)
		}
	}
	if n != 12 {
		t.Errorf("%d worker objects, want 12 (Deployment, ScaledObject, NetworkPolicy of four kinds: the defaults and this one)", n)
	}
}
