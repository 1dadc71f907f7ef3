//go:build cluster

package chartcheck

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	amqp "github.com/rabbitmq/amqp091-go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// hpaSyncPeriod is kube-controller-manager's --horizontal-pod-autoscaler-sync-period default.
const hpaSyncPeriod = 15 * time.Second

// statsInterval is RabbitMQ's collect_statistics_interval default: the queue depth the
// management API reports (KEDA reads it: protocol http) lags the queue by up to this.
const statsInterval = 5 * time.Second

// TestClusterKEDA installs the dev values against the machine's RabbitMQ (a vhost of its own)
// and, for every ScaledObject of the release (one per job kind), with the numbers taken from
// that ScaledObject: it becomes Ready; a backlog wakes the worker from zero and scales it to
// ceil(depth / value), then to maxReplicaCount; with depth back under one worker's share the
// HPA removes at most one pod per policy period after the stabilization window; an empty
// queue returns it to zero after cooldownPeriod; a broken trigger (its queue deleted) holds
// fallback.replicas, whether the worker was running or idle at zero. It logs the timeline of
// every change.
func TestClusterKEDA(t *testing.T) {
	t.Parallel()
	c := getCluster(t)
	ns := c.namespace(t, "keda")
	vhost := freshVhost(t)
	c.devSecret(t, ns)
	c.brokerSecret(t, ns, vhost)
	vals, err := LoadValues(valuesSets["dev"], externalBroker(vhost))
	if err != nil {
		t.Fatal(err)
	}
	c.install(t, ns, "careerops", vals)

	list, err := c.dyn.Resource(schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}).
		Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=careerops"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) == 0 {
		t.Fatal("the release has no ScaledObject")
	}
	conn, err := amqp.Dial(strings.TrimSuffix(testAMQPURL, "/") + "/" + url.PathEscape(vhost))
	if err != nil {
		t.Fatalf("RabbitMQ at %s: %v (run make services)", testAMQPURL, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	for _, item := range list.Items {
		var so kedav1alpha1.ScaledObject
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &so); err != nil {
			t.Fatal(err)
		}
		t.Run(so.Name, func(t *testing.T) {
			t.Parallel()
			k := newKindUnderTest(t, c, conn, vhost, &so)
			k.run(t)
		})
	}
}

// kindUnderTest is one ScaledObject, its worker Deployment and its queue.
type kindUnderTest struct {
	c                         *cluster
	so                        *kedav1alpha1.ScaledObject
	ch                        *amqp.Channel
	vhost, queue, deployment  string
	value, activation         float64
	minR, maxR, fallbackR     int
	polling, cooldown, stabil time.Duration
	scaleIn                   ScaleInRule

	mu       sync.Mutex
	start    time.Time
	replicas int
	timeline []ReplicaChange
}

func newKindUnderTest(t *testing.T, c *cluster, conn *amqp.Connection, vhost string, so *kedav1alpha1.ScaledObject) *kindUnderTest {
	t.Helper()
	k := &kindUnderTest{c: c, so: so, vhost: vhost, deployment: so.Spec.ScaleTargetRef.Name, replicas: -1}
	var tr *kedav1alpha1.ScaleTriggers
	for i := range so.Spec.Triggers {
		if so.Spec.Triggers[i].Type == "rabbitmq" {
			tr = &so.Spec.Triggers[i]
		}
	}
	if tr == nil || so.Spec.Fallback == nil || so.Spec.Advanced == nil || so.Spec.Advanced.HorizontalPodAutoscalerConfig == nil {
		t.Fatalf("%s: want a rabbitmq trigger, a fallback and an HPA behavior", so.Name)
	}
	k.queue = tr.Metadata["queueName"]
	k.value, _ = strconv.ParseFloat(tr.Metadata["value"], 64)
	k.activation, _ = strconv.ParseFloat(tr.Metadata["activationValue"], 64)
	k.minR, k.maxR, k.fallbackR = int(*so.Spec.MinReplicaCount), int(*so.Spec.MaxReplicaCount), int(so.Spec.Fallback.Replicas)
	k.polling = time.Duration(*so.Spec.PollingInterval) * time.Second
	k.cooldown = time.Duration(*so.Spec.CooldownPeriod) * time.Second
	down := so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown
	if len(down.Policies) != 1 || down.Policies[0].Type != "Pods" {
		t.Fatalf("%s: want one Pods scale-down policy, have %+v", so.Name, down.Policies)
	}
	k.stabil = time.Duration(*down.StabilizationWindowSeconds) * time.Second
	k.scaleIn = ScaleInRule{
		Stabilization: k.stabil, PodsPerPeriod: int(down.Policies[0].Value),
		Period: time.Duration(down.Policies[0].PeriodSeconds) * time.Second, Tolerance: 2 * time.Second,
	}
	if k.value < 1 || (k.minR != 0 && k.minR != k.maxR) || (k.minR == 0 && k.maxR < 2) {
		t.Fatalf("%s: the test wants value >= 1, and minReplicaCount 0 with maxReplicaCount >= 2 or both equal", so.Name)
	}
	var err error
	if k.ch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	if err := k.ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ch.QueueDeclare(k.queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *kindUnderTest) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k.start = time.Now()
	go k.watch(ctx)
	t.Cleanup(func() { t.Logf("%s timeline (from install): %s", k.so.Name, k.timelineString(0)) })

	took := eventually(t, time.Minute, time.Second, k.ready, func() string { return k.so.Name + " never became Ready" })
	t.Logf("ScaledObject Ready %s after the install", took.Round(time.Second))
	if k.minR == k.maxR {
		k.holds(t)
		return
	}
	k.waitReplicas(t, 0, k.cooldown+time.Minute, "idle at install")

	// Wake from zero: a backlog that wants maxReplicaCount-1 workers, then one beyond max.
	upBound := statsInterval + k.polling + 2*hpaSyncPeriod + 15*time.Second
	d1 := int(k.value) * (k.maxR - 1)
	k.publish(t, d1)
	t.Logf("published %d: KEDA's formula gives %d", d1, kedaReplicas(float64(d1), k.value, k.activation, k.minR, k.maxR))
	k.waitReplicas(t, kedaReplicas(float64(d1), k.value, k.activation, k.minR, k.maxR), upBound, "scale-up to ceil(depth/value)")
	d2 := int(k.value)*k.maxR + int(k.value)
	k.publish(t, d2-d1)
	k.waitReplicas(t, k.maxR, upBound, "scale-up capped at maxReplicaCount")

	// The scale-in pace: once the HPA's own scale-up has left the policy's period, bring the
	// depth down to one message (still active, so KEDA leaves the count to the HPA).
	time.Sleep(k.scaleIn.Period + hpaSyncPeriod)
	k.purge(t)
	k.publish(t, 1)
	fell := time.Since(k.start)
	bound := k.stabil + time.Duration(k.maxR)*k.scaleIn.Period + k.polling + 2*hpaSyncPeriod
	k.waitReplicas(t, 1, bound, "HPA scale-in to one worker")
	phase := k.changesSince(fell)
	for _, v := range ScaleInViolations(k.scaleIn, phase) {
		t.Errorf("scale-in pace: %s (phase: %v)", v, phase)
	}

	// Idle: KEDA itself scales to zero once the queue has been empty for cooldownPeriod.
	k.purge(t)
	emptied := time.Now()
	k.waitReplicas(t, 0, statsInterval+k.cooldown+k.polling+15*time.Second, "idle back to zero")
	if took := time.Since(emptied); took < k.cooldown-k.polling {
		t.Errorf("scaled to zero %s after the queue emptied, before cooldownPeriod %s", took.Round(time.Second), k.cooldown)
	}

	// A broken trigger: the queue is deleted under a running worker; after
	// fallback.failureThreshold failed reads KEDA holds fallback.replicas.
	k.publish(t, d2)
	k.waitReplicas(t, k.maxR, upBound, "scale-up before the fallback")
	if _, err := k.ch.QueueDelete(k.queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	// KEDA notices after failureThreshold polls; the HPA then scales in at its usual pace.
	fbNotice := time.Duration(k.so.Spec.Fallback.FailureThreshold+1)*k.polling + 2*hpaSyncPeriod + 15*time.Second
	fbBound := fbNotice + k.stabil + time.Duration(max(k.maxR-k.fallbackR, 0))*k.scaleIn.Period
	k.waitReplicas(t, k.fallbackR, fbBound, "fallback.replicas with the trigger broken")

	// From zero too: KEDA (2.21) counts a trigger in fallback as active, so it wakes an idle
	// worker whose queue becomes unreadable, and the HPA then holds fallback.replicas
	// (docs/deploy.md says so; older KEDA left it at zero).
	if _, err := k.ch.QueueDeclare(k.queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	k.waitReplicas(t, 0, statsInterval+k.cooldown+k.polling+2*hpaSyncPeriod+15*time.Second, "idle at zero before breaking the trigger")
	if _, err := k.ch.QueueDelete(k.queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	k.waitReplicas(t, k.fallbackR, fbNotice+k.polling, "fallback.replicas from zero with the trigger broken")
}

// holds checks a kind whose worker count is fixed (minReplicaCount = maxReplicaCount: the
// analytics worker keeps one pod up to serve its counters): a backlog, an idle queue past
// cooldownPeriod and a broken trigger all leave it at that count.
func (k *kindUnderTest) holds(t *testing.T) {
	settle := k.polling + 2*hpaSyncPeriod + 15*time.Second
	k.waitReplicas(t, k.minR, settle, "the fixed count at install")
	steps := []struct {
		what string
		do   func()
		wait time.Duration
	}{
		{"a backlog", func() { k.publish(t, int(k.value)*(k.maxR+2)) }, settle},
		{"an idle queue past cooldownPeriod", func() { k.purge(t) }, k.cooldown + settle},
		{"a broken trigger", func() {
			if _, err := k.ch.QueueDelete(k.queue, false, false, false); err != nil {
				t.Fatal(err)
			}
		}, time.Duration(k.so.Spec.Fallback.FailureThreshold+1)*k.polling + settle},
	}
	for _, s := range steps {
		from := time.Since(k.start)
		s.do()
		time.Sleep(s.wait)
		if changes := k.changesSince(from); len(changes) > 0 || k.current() != k.minR {
			t.Errorf("%s: %s moved the fixed count %d: %v", k.so.Name, s.what, k.minR, changes)
		}
	}
}

// ready is the ScaledObject's Ready condition.
func (k *kindUnderTest) ready() (bool, error) {
	u, err := k.c.dyn.Resource(schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}).
		Namespace(k.so.Namespace).Get(context.Background(), k.so.Name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	var so kedav1alpha1.ScaledObject
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &so); err != nil {
		return false, err
	}
	ready := so.Status.Conditions.GetReadyCondition()
	return so.Status.Conditions.AreInitialized() && ready.IsTrue(), nil
}

// watch records every change of the Deployment's spec.replicas (polled every 250 ms).
func (k *kindUnderTest) watch(ctx context.Context) {
	for ctx.Err() == nil {
		d, err := k.c.kube.AppsV1().Deployments(k.so.Namespace).Get(ctx, k.deployment, metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil {
			n := int(*d.Spec.Replicas)
			k.mu.Lock()
			if n != k.replicas {
				if k.replicas >= 0 {
					k.timeline = append(k.timeline, ReplicaChange{At: time.Since(k.start), From: k.replicas, To: n})
				}
				k.replicas = n
			}
			k.mu.Unlock()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (k *kindUnderTest) current() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.replicas
}

// changesSince returns the changes at or after offset, re-based to it.
func (k *kindUnderTest) changesSince(offset time.Duration) []ReplicaChange {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []ReplicaChange
	for _, c := range k.timeline {
		if c.At >= offset {
			c.At -= offset
			out = append(out, c)
		}
	}
	return out
}

func (k *kindUnderTest) timelineString(offset time.Duration) string {
	var parts []string
	for _, c := range k.changesSince(offset) {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

func (k *kindUnderTest) waitReplicas(t *testing.T, want int, timeout time.Duration, what string) {
	t.Helper()
	took := eventually(t, timeout, 250*time.Millisecond, func() (bool, error) { return k.current() == want, nil },
		func() string {
			return fmt.Sprintf("%s: %s wants %d replicas, has %d; timeline %s", k.so.Name, what, want, k.current(), k.timelineString(0))
		})
	t.Logf("%s: %d replicas after %s (at +%s)", what, want, took.Round(100*time.Millisecond), time.Since(k.start).Round(time.Second))
}

// publish puts n persistent messages on the queue, confirmed by the broker.
func (k *kindUnderTest) publish(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		dc, err := k.ch.PublishWithDeferredConfirmWithContext(ctx, "", k.queue, false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, `{"n":%d}`, i),
		})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("publish not confirmed: %v", err)
		}
	}
}

// purge empties the queue (through the management API, as an operator would).
func (k *kindUnderTest) purge(t *testing.T) {
	t.Helper()
	mgmt(t, http.MethodDelete, "/api/queues/"+url.PathEscape(k.vhost)+"/"+url.PathEscape(k.queue)+"/contents", "")
}
