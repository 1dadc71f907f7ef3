//go:build cluster

package chartcheck

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// externalBroker is the values of an install against an external broker (the machine's
// RabbitMQ: KEDA, a host process here, reads its management API) in vhost, with the Secret
// "broker" that brokerSecret creates.
func externalBroker(vhost string) map[string]any {
	return map[string]any{"rabbitmq": map[string]any{
		"vhost":   vhost,
		"cluster": map[string]any{"enabled": false},
		"external": map[string]any{
			"existingSecret": "broker", "managementURL": testMgmtURL,
		},
	}}
}

// brokerSecret is the external broker's Secret for vhost, keys as values.yaml names them.
func (c *cluster) brokerSecret(t *testing.T, ns, vhost string) {
	t.Helper()
	c.secret(t, ns, "broker", map[string]string{
		"RABBITMQ_URL": strings.TrimSuffix(testAMQPURL, "/") + "/" + vhost,
		"username":     "guest", "password": "guest",
	})
}

// TestClusterServerSideDryRun: every object of every values set (hooks and the test pod too)
// is accepted by the real API server on a server-side dry-run create with strict field
// validation: admission, the built-in types' validation (NetworkPolicy, PDB, probes, security
// context...) and the CRDs' schemas and CEL rules as served. No warnings either.
func TestClusterServerSideDryRun(t *testing.T) {
	t.Parallel()
	c := getCluster(t)
	sets := map[string][]string{}
	for name, files := range valuesSets {
		sets[name] = files
	}
	sets["dev+external-broker"] = valuesSets["dev"]
	for _, name := range slices.Sorted(maps.Keys(sets)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var extra map[string]any
			if strings.HasSuffix(name, "external-broker") {
				extra = externalBroker("/")
			}
			r, err := Render(sets[name], extra)
			if err != nil {
				t.Fatal(err)
			}
			ns := c.namespace(t, "dryrun")
			cw, warnings := c.warned(t)
			// Pods are admitted only with their ServiceAccount in place: create those for real.
			for _, pass := range []bool{true, false} {
				for _, o := range r.Objects {
					if (o.Kind == "ServiceAccount") == pass {
						cw.create(t, ns, o, !pass)
					}
				}
			}
			if w := warnings.take(); len(w) > 0 {
				t.Errorf("API server warnings: %q", w)
			}
			t.Logf("%d objects accepted: %s", len(r.Objects), strings.Join(r.Kinds(), ", "))
		})
	}
}

// create creates o in ns (a server-side dry-run when dryRun) with strict field validation.
func (c *cluster) create(t *testing.T, ns string, o Object, dryRun bool) {
	t.Helper()
	u := &unstructured.Unstructured{Object: o.Map}
	gvk := schema.FromAPIVersionAndKind(o.APIVersion, o.Kind)
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Errorf("%s (%s): no such API on the server: %v", o.ID(), o.Source, err)
		return
	}
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	res := c.dyn.Resource(m.Resource)
	if m.Scope.Name() == "namespace" {
		u.SetNamespace(ns)
		_, err = res.Namespace(ns).Create(context.Background(), u, opts)
	} else {
		_, err = res.Create(context.Background(), u, opts)
	}
	if err != nil {
		t.Errorf("%s (%s): rejected: %v", o.ID(), o.Source, err)
	}
}

// TestClusterHelmLifecycle: the dev values install (with the migrations hook, against the
// RabbitMQ cluster operator), upgrade with a changed value (rolling update, hook re-run), pass
// helm test, roll back, and uninstall leaving only what docs/deploy.md says; staging installs
// with the Prometheus-operator CRDs; a second dev release installs in the same cluster.
func TestClusterHelmLifecycle(t *testing.T) {
	t.Parallel()
	c := getCluster(t)
	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		c.devLifecycle(t)
	})
	t.Run("staging", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "staging")
		vals, err := LoadValues(valuesSets["staging"], nil)
		if err != nil {
			t.Fatal(err)
		}
		c.install(t, ns, "careerops", vals)
		for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
			if n := countKind(c.inventory(t, ns), kind); n == 0 {
				t.Errorf("staging installed no %s", kind)
			}
		}
	})
	t.Run("two-dev-releases", func(t *testing.T) {
		t.Parallel()
		// A second dev release in the same cluster (the dev values once fixed nodePort 30080,
		// which the API server refuses twice: "provided port is already allocated").
		for i := range 2 {
			ns := c.namespace(t, fmt.Sprintf("dev%d", i))
			c.devSecret(t, ns)
			vals, err := LoadValues(valuesSets["dev"], nil)
			if err != nil {
				t.Fatal(err)
			}
			c.install(t, ns, "careerops", vals)
		}
	})
}

func countKind(inv []string, kind string) int {
	n := 0
	for _, id := range inv {
		if strings.HasPrefix(id, kind+"/") {
			n++
		}
	}
	return n
}

func (c *cluster) devLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := c.namespace(t, "dev")
	c.devSecret(t, ns)
	vals, err := LoadValues(valuesSets["dev"], nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.helm(t, ns)
	c.install(t, ns, "careerops", vals)
	hook1 := c.job(t, ns, "careerops-migrations")
	api1 := c.deployment(t, ns, "careerops-api")

	t.Run("rabbitmq-operator", func(t *testing.T) { c.checkRabbitmqCluster(t, ns) })

	// Upgrade: a changed value rolls the api's pods and runs the migrations hook again.
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Wait, up.WaitForJobs, up.Timeout = ns, true, true, helmTimeout
	vals2, err := LoadValues(valuesSets["dev"], map[string]any{"api": map[string]any{"logLevel": "info"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := up.Run("careerops", loadChart(t), vals2); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	t.Logf("helm upgrade --wait: %s", time.Since(start).Round(time.Millisecond))
	if hook2 := c.job(t, ns, "careerops-migrations"); hook2.UID == hook1.UID {
		t.Error("helm upgrade did not run the migrations hook again")
	}
	api2 := c.deployment(t, ns, "careerops-api")
	if api2.Generation == api1.Generation || logLevel(api2) != "info" {
		t.Errorf("upgrade: api generation %d→%d, LOG_LEVEL %q", api1.Generation, api2.Generation, logLevel(api2))
	}
	rs, err := c.kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Items) < 2 {
		t.Errorf("upgrade: %d api ReplicaSets, want a rolling update to a second one", len(rs.Items))
	}

	// helm test: the test pod is admitted, scheduled and (kwok) completed.
	ht := action.NewReleaseTesting(cfg)
	ht.Namespace, ht.Timeout = ns, helmTimeout
	if _, err := ht.Run("careerops"); err != nil {
		t.Errorf("helm test: %v", err)
	}

	rb := action.NewRollback(cfg)
	rb.Version, rb.Wait, rb.WaitForJobs, rb.Timeout = 1, true, true, helmTimeout
	if err := rb.Run("careerops"); err != nil {
		t.Fatalf("helm rollback: %v", err)
	}
	if got := logLevel(c.deployment(t, ns, "careerops-api")); got != "debug" {
		t.Errorf("after rollback the api's LOG_LEVEL is %q, want the dev values' debug", got)
	}

	un := action.NewUninstall(cfg)
	un.Wait, un.Timeout = true, helmTimeout
	if _, err := un.Run("careerops"); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	// Garbage collection takes a moment, and pods take up to their
	// terminationGracePeriodSeconds to go (the worker's is 105 s by default; kwok deletes a
	// terminating pod at a random moment within it, as a kubelet would when the drain ends).
	var left []string
	eventually(t, 3*time.Minute, time.Second, func() (bool, error) {
		left = c.inventory(t, ns)
		return slices.Equal(unexpectedLeftovers(left), nil), nil
	}, func() string { return fmt.Sprintf("left after helm uninstall: %q", unexpectedLeftovers(left)) })
	t.Logf("left after helm uninstall: %q", left)
}

// unexpectedLeftovers drops from inv what docs/deploy.md says helm uninstall leaves: the
// Secret the release did not create (careerops-dev) and the migrations hook's objects (hooks
// are not release objects; each is deleted before the next hook run): its Job and the Job's
// pods, its ServiceAccount and its NetworkPolicy.
func unexpectedLeftovers(inv []string) []string {
	var out []string
	for _, id := range inv {
		switch {
		case id == "Secret/careerops-dev", strings.HasPrefix(id, "Pod/careerops-migrations-"),
			slices.Contains([]string{"Job", "ServiceAccount", "NetworkPolicy"}, strings.Split(id, "/")[0]) &&
				strings.HasSuffix(id, "/careerops-migrations"):
		default:
			out = append(out, id)
		}
	}
	return out
}

func (c *cluster) job(t *testing.T, ns, name string) *batchv1.Job {
	t.Helper()
	j, err := c.kube.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (c *cluster) deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := c.kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// logLevel is LOG_LEVEL of the Deployment's first container.
func logLevel(d *appsv1.Deployment) string {
	e, _ := envValue(d.Spec.Template.Spec.Containers[0], "LOG_LEVEL")
	return e.Value
}

// checkRabbitmqCluster: the operator reconciles the chart's RabbitmqCluster into a
// StatefulSet, its Services and the <name>-default-user Secret, and that Secret has every key
// the chart's workloads (env secretKeyRef) and TriggerAuthentication (secretTargetRef) read.
func (c *cluster) checkRabbitmqCluster(t *testing.T, ns string) {
	ctx := context.Background()
	name := "careerops-rabbitmq"
	secretName := name + "-default-user"
	var sec *corev1.Secret
	took := eventually(t, 90*time.Second, time.Second, func() (bool, error) {
		s, err := c.kube.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not reconciled yet
		}
		sec = s
		return true, nil
	}, func() string { return "the RabbitMQ operator created no " + secretName })
	t.Logf("the operator's Secret was there %s after helm install returned", took.Round(time.Millisecond))
	for _, obj := range []string{"StatefulSet/" + name + "-server", "Service/" + name, "Service/" + name + "-nodes"} {
		if !slices.Contains(c.inventory(t, ns), obj) {
			t.Errorf("the operator did not create %s", obj)
		}
	}
	want := map[string]string{} // key → who reads it
	deps, err := c.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		for _, ct := range d.Spec.Template.Spec.Containers {
			for _, e := range ct.Env {
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil && ref.SecretKeyRef.Name == secretName {
					want[ref.SecretKeyRef.Key] = "Deployment/" + d.Name + " env " + e.Name
				}
			}
		}
	}
	tas, err := c.dyn.Resource(schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "triggerauthentications"}).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ta := range tas.Items {
		refs, _, _ := unstructured.NestedSlice(ta.Object, "spec", "secretTargetRef")
		for _, r := range refs {
			m, _ := r.(map[string]any)
			if m["name"] == secretName {
				want[fmt.Sprint(m["key"])] = "TriggerAuthentication/" + ta.GetName() + " " + fmt.Sprint(m["parameter"])
			}
		}
	}
	if len(want) == 0 {
		t.Fatalf("nothing in the release reads %s", secretName)
	}
	for key, who := range want {
		if _, ok := sec.Data[key]; !ok {
			t.Errorf("%s reads key %q of %s; the operator's Secret has %q", who, key, secretName, slices.Sorted(maps.Keys(sec.Data)))
		}
	}
	t.Logf("%s has the %d keys the release reads", secretName, len(want))
}
