//go:build cluster

// The tests in the cluster_*_test.go files run against a real control plane (etcd,
// kube-apiserver, controller-manager, scheduler, kwok, KEDA, the RabbitMQ cluster operator)
// that scripts/cluster/up.sh starts on 127.0.0.1: `make cluster-test`. Pods are scheduled to a
// kwok node and reported Running and Ready, but run no code.
//
//	make cluster-test                                  (or, with a plane already up:)
//	CLUSTER_KUBECONFIG=... go test -tags cluster -run TestCluster ./...

package chartcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// cluster is the control plane the tests share.
type cluster struct {
	kubeconfig string
	config     *rest.Config
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper
	disco      discovery.DiscoveryInterface
}

// warningLog keeps the API server's warnings (deprecations, unknown fields).
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

var (
	clusterOnce sync.Once
	theCluster  *cluster
	clusterErr  error
)

// getCluster connects to the plane named by CLUSTER_KUBECONFIG (make cluster-test sets it).
func getCluster(t *testing.T) *cluster {
	t.Helper()
	clusterOnce.Do(func() { theCluster, clusterErr = connect(os.Getenv("CLUSTER_KUBECONFIG")) })
	if clusterErr != nil {
		t.Fatalf("cluster: %v (run make cluster-test, or scripts/cluster/up.sh and set CLUSTER_KUBECONFIG)", clusterErr)
	}
	return theCluster
}

func connect(kubeconfig string) (*cluster, error) {
	if kubeconfig == "" {
		return nil, fmt.Errorf("CLUSTER_KUBECONFIG is not set")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	c := &cluster{kubeconfig: kubeconfig, config: cfg}
	cfg.QPS, cfg.Burst = 100, 200
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	c.disco = c.kube.Discovery()
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.disco))
	if _, err := c.disco.ServerVersion(); err != nil {
		return nil, err
	}
	return c, nil
}

// warned returns a copy of c whose dynamic client keeps the API server's warnings in the
// returned log: one per test, as the tests run in parallel.
func (c *cluster) warned(t *testing.T) (*cluster, *warningLog) {
	t.Helper()
	cfg := rest.CopyConfig(c.config)
	w := &warningLog{}
	cfg.WarningHandler = w
	cw := *c
	var err error
	if cw.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return &cw, w
}

// namespace creates a namespace named prefix-<random> and deletes it when the test ends.
func (c *cluster) namespace(t *testing.T, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := prefix + "-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	_, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("CLUSTER_KEEP") != "" {
			return
		}
		err := c.kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return name
}

// secret creates a Secret of string data.
func (c *cluster) secret(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	_, err := c.kube.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// devSecret is k8s/dev/secrets.yaml's careerops-dev (throwaway dev values) in ns.
func (c *cluster) devSecret(t *testing.T, ns string) {
	t.Helper()
	c.secret(t, ns, "careerops-dev", map[string]string{
		"DATABASE_URL": "postgres://careerops:careerops@postgres:5432/careerops?sslmode=disable",
		"JWT_SECRET":   "cluster-test-only-jwt-secret-0123456789abcdef", "OPENAI_API_KEY": "sk-fake",
	})
}

// helm is a Helm SDK configuration for one namespace of the cluster.
func (c *cluster) helm(t *testing.T, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &c.kubeconfig
	flags.Namespace = &ns
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", func(format string, v ...any) { t.Logf("helm: "+format, v...) }); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// loadChart loads charts/careerops.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(ChartDir())
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// helmTimeout bounds one helm install/upgrade/rollback --wait here (pods start in about a second).
const helmTimeout = 3 * time.Minute

// install runs helm install --wait of the chart with values as release in ns.
func (c *cluster) install(t *testing.T, ns, release string, vals map[string]any) {
	t.Helper()
	in := action.NewInstall(c.helm(t, ns))
	in.ReleaseName, in.Namespace = release, ns
	in.Wait, in.WaitForJobs, in.Timeout = true, true, helmTimeout
	start := time.Now()
	if _, err := in.Run(loadChart(t), vals); err != nil {
		t.Fatalf("helm install %s -n %s: %v", release, ns, err)
	}
	t.Logf("helm install %s -n %s --wait: %s", release, ns, time.Since(start).Round(time.Millisecond))
}

// eventually polls cond every interval until it returns true or timeout passes; it returns how
// long that took, and fails the test with what() on timeout.
func eventually(t *testing.T, timeout, interval time.Duration, cond func() (bool, error), what func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("after %s: %s", timeout, what())
		}
		time.Sleep(interval)
	}
}

// inventory lists every namespaced object in ns as "Kind/name", sorted, skipping Events and
// the objects every namespace has (the default ServiceAccount, kube-root-ca.crt).
func (c *cluster) inventory(t *testing.T, ns string) []string {
	t.Helper()
	lists, err := c.disco.ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.APIResources {
			if !strings.Contains(strings.Join(r.Verbs, ","), "list") || r.Kind == "Event" {
				continue
			}
			items, err := c.dyn.Resource(gv.WithResource(r.Name)).Namespace(ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				continue // e.g. an aggregated API without lists
			}
			for _, it := range items.Items {
				id := r.Kind + "/" + it.GetName()
				if id == "ServiceAccount/default" || id == "ConfigMap/kube-root-ca.crt" {
					continue
				}
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}
