package chartcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/job"
)

// The local RabbitMQ (make services): AMQP and the management API, guest/guest.
var (
	testAMQPURL = envOr("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
	testMgmtURL = envOr("TEST_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// mgmt calls the management API as guest.
func mgmt(t *testing.T, method, p string, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, testMgmtURL+p, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("RabbitMQ management API at %s: %v (run make services)", testMgmtURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, p, resp.Status, b)
	}
	return b
}

// freshVhost creates a vhost for this test, lets guest use it, and deletes it at the end.
func freshVhost(t *testing.T) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	vhost := "chartcheck-" + hex.EncodeToString(b[:])
	mgmt(t, http.MethodPut, "/api/vhosts/"+url.PathEscape(vhost), `{}`)
	t.Cleanup(func() { mgmt(t, http.MethodDelete, "/api/vhosts/"+url.PathEscape(vhost), "") })
	mgmt(t, http.MethodPut, "/api/permissions/"+url.PathEscape(vhost)+"/guest", `{"configure":".*","write":".*","read":".*"}`)
	return vhost
}

// kedaQueueURL builds the URL KEDA's rabbitmq scaler (protocol http, useRegex false) reads,
// from the trigger's host and vhostName and the username/password its TriggerAuthentication
// resolves: a transcription of getVhostAndPathFromURL and getQueueInfoViaHTTP in
// github.com/kedacore/keda/v2@v2.21.0/pkg/scalers/rabbitmq_scaler.go.
func kedaQueueURL(host, vhostName, queueName, username, password string) (string, error) {
	parsedURL, err := url.Parse(host)
	if err != nil {
		return "", err
	}
	rawPath := parsedURL.RawPath
	if rawPath == "" {
		rawPath = parsedURL.Path
	}
	pathParts := strings.Split(rawPath, "/")
	vhost := "/" + pathParts[len(pathParts)-1]
	subpaths := path.Join(pathParts[:len(pathParts)-1]...)
	if len(subpaths) > 0 {
		subpaths = "/" + subpaths
	}
	if vhostName != "" {
		vhost = "/" + url.QueryEscape(vhostName)
	}
	if vhost == "" || vhost == "/" {
		vhost = "/%2F"
	}
	parsedURL.Path = subpaths
	if username != "" && password != "" {
		parsedURL.User = url.UserPassword(username, password)
	}
	return fmt.Sprintf("%s/api/queues%s/%s", parsedURL.String(), vhost, url.QueryEscape(queueName)), nil
}

// queueInfo is the part of GET /api/queues/{vhost}/{queue} KEDA reads.
type queueInfo struct {
	Messages               int `json:"messages"`
	MessagesReady          int `json:"messages_ready"`
	MessagesUnacknowledged int `json:"messages_unacknowledged"`
}

// kedaReplicas is the replica count KEDA's documented behaviour gives for a QueueLength
// trigger (metricType AverageValue): below or at the activation value with minReplicaCount 0,
// the workload is scaled to zero; otherwise the HPA aims at ceil(depth / value), clamped to
// [max(min,1), max]. (keda.sh docs: "Scaling Deployments" and the RabbitMQ scaler page.)
func kedaReplicas(depth, value, activation float64, minReplicas, maxReplicas int) int {
	if depth <= activation && minReplicas == 0 {
		return 0
	}
	n := int(math.Ceil(depth / value))
	n = max(n, minReplicas, 1)
	return min(n, maxReplicas)
}

// TestKEDAQueueDepthOnRealRabbitMQ: for the ScaledObject of every job kind (the two of
// values.yaml, email on, and a throwaway third), with N ready and M unacknowledged messages
// on that kind's queue, the depth KEDA reads with the chart's trigger (protocol http, the
// management API's "messages") is N+M, where the amqp protocol would see only N; and the
// replicas KEDA's formula gives for it with the kind's values are ceil((N+M)/concurrency).
// Each kind's queue holds different counts (12, 13, 14), so a trigger reading another kind's
// queue fails.
func TestKEDAQueueDepthOnRealRabbitMQ(t *testing.T) {
	t.Parallel()
	vhost := freshVhost(t)

	// The chart, as installed against this broker.
	r, err := Render(nil, map[string]any{
		"rabbitmq": map[string]any{
			"vhost":   vhost,
			"cluster": map[string]any{"enabled": false},
			"external": map[string]any{
				"existingSecret": "broker", "managementURL": testMgmtURL,
			},
		},
		"email": map[string]any{"smtp": map[string]any{"host": "smtp.example.com"}},
		"worker": map[string]any{"kinds": map[string]any{
			"digests": map[string]any{"kind": "digests.weekly", "enabled": true, "concurrency": 3},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ta, err := As[kedav1alpha1.TriggerAuthentication](r.Find("TriggerAuthentication", "")[0])
	if err != nil {
		t.Fatal(err)
	}
	// The Secret KEDA resolves the TriggerAuthentication from.
	secret := map[string]map[string]string{"broker": {"username": "guest", "password": "guest"}}
	auth := map[string]string{}
	for _, ref := range ta.Spec.SecretTargetRef {
		v, ok := secret[ref.Name][ref.Key]
		if !ok {
			t.Fatalf("TriggerAuthentication wants %s/%s, not in the broker Secret", ref.Name, ref.Key)
		}
		auth[ref.Parameter] = v
	}
	conn, err := amqp.Dial(strings.TrimSuffix(testAMQPURL, "/") + "/" + url.PathEscape(vhost))
	if err != nil {
		t.Fatalf("RabbitMQ at %s: %v (run make services)", testAMQPURL, err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	sos := r.Find("ScaledObject", "")
	if len(sos) != 5 {
		t.Fatalf("%d ScaledObjects, want 5 (cover letters, email, analytics, exports, the throwaway kind)", len(sos))
	}
	for i, o := range sos {
		so, err := As[kedav1alpha1.ScaledObject](o)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(so.Name, func(t *testing.T) {
			t.Parallel()
			checkKEDADepth(t, conn, so, auth, 7+2*i, 5-i)
		})
	}
}

// checkKEDADepth puts ready + unacked messages on the queue of so's trigger (a consumer holds
// the unacked ones) and checks what KEDA would read and how many workers it would run.
func checkKEDADepth(t *testing.T, conn *amqp.Connection, so *kedav1alpha1.ScaledObject, auth map[string]string, ready, unacked int) {
	t.Helper()
	tr := so.Spec.Triggers[0]
	queue := tr.Metadata["queueName"]
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range ready + unacked {
		err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, `{"n":%d}`, i),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := consumer.Qos(unacked, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := consumer.Consume(queue, "chartcheck", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range unacked {
		select {
		case <-deliveries:
		case <-ctx.Done():
			t.Fatal("no deliveries")
		}
	}

	// What the amqp protocol would count (a passive declare): the ready messages only. The
	// publishes were not confirmed, so the quorum queue may not have applied them all yet:
	// ask until it has (never more than the ready ones).
	var q amqp.Queue
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if q, err = ch.QueueDeclarePassive(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			t.Fatal(err)
		}
		if q.Messages >= ready || time.Now().After(deadline) {
			break
		}
	}
	if q.Messages != ready {
		t.Errorf("%s: amqp protocol count %d, want the %d ready", queue, q.Messages, ready)
	}

	// What KEDA's http protocol reads, at the URL it builds from the rendered trigger. The
	// management API refreshes queue statistics every few seconds: poll until it has both.
	u, err := kedaQueueURL(tr.Metadata["host"], tr.Metadata["vhostName"], queue, auth["username"], auth["password"])
	if err != nil {
		t.Fatal(err)
	}
	info := pollQueueInfo(ctx, t, u, ready, unacked)
	if info.Messages != ready+unacked {
		t.Errorf("%s: KEDA (protocol http) reads messages=%d, want ready+unacked=%d", queue, info.Messages, ready+unacked)
	}

	// Replicas for that depth with the kind's trigger and bounds.
	value, _ := strconv.ParseFloat(tr.Metadata["value"], 64)
	activation, _ := strconv.ParseFloat(tr.Metadata["activationValue"], 64)
	got := kedaReplicas(float64(info.Messages), value, activation, int(*so.Spec.MinReplicaCount), int(*so.Spec.MaxReplicaCount))
	want := min(int(math.Ceil(float64(ready+unacked)/value)), int(*so.Spec.MaxReplicaCount))
	if got != want {
		t.Errorf("%s: KEDA would run %d workers for %d messages, want min(ceil(%d/%v), %d) = %d", queue, got, info.Messages, ready+unacked, value, *so.Spec.MaxReplicaCount, want)
	}
	t.Logf("%s: depth %d (ready %d + unacked %d; amqp would see %d) → %d workers at %v jobs each", queue, info.Messages, info.MessagesReady, info.MessagesUnacknowledged, q.Messages, got, value)
}

// pollQueueInfo reads u until the management API reports ready and unacked messages.
func pollQueueInfo(ctx context.Context, t *testing.T, u string, ready, unacked int) queueInfo {
	t.Helper()
	var info queueInfo
	for {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", regexp.MustCompile(`//[^@]*@`).ReplaceAllString(u, "//"), resp.Status, body)
		}
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatal(err)
		}
		if info.MessagesReady == ready && info.MessagesUnacknowledged == unacked {
			return info
		}
		if ctx.Err() != nil {
			t.Fatalf("management API still reports %+v", info)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestScalingTableInDocs: every row of the scaling table in docs/deploy.md is what KEDA's
// formula gives with the default chart's trigger for cover letters.
func TestScalingTableInDocs(t *testing.T) {
	t.Parallel()
	var so *kedav1alpha1.ScaledObject
	for _, w := range workersOf(t, "default", renderSet(t, "default")) {
		if w.kind == job.QueueGenerate {
			so = w.scaled
		}
	}
	if so == nil {
		t.Fatalf("default: no ScaledObject for %s", job.QueueGenerate)
	}
	md := so.Spec.Triggers[0].Metadata
	value, _ := strconv.ParseFloat(md["value"], 64)
	activation, _ := strconv.ParseFloat(md["activationValue"], 64)
	doc, err := os.ReadFile(RepoRoot() + "/docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- scaling-table:begin -->")
	table, _, ok2 := strings.Cut(rest, "<!-- scaling-table:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/deploy.md lacks the scaling-table markers")
	}
	row := regexp.MustCompile(`(?m)^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|`)
	rows := row.FindAllStringSubmatch(table, -1)
	if len(rows) < 4 {
		t.Fatalf("scaling table has %d rows", len(rows))
	}
	for _, m := range rows {
		ready, _ := strconv.Atoi(m[1])
		unacked, _ := strconv.Atoi(m[2])
		depth, _ := strconv.Atoi(m[3])
		want, _ := strconv.Atoi(m[4])
		if depth != ready+unacked {
			t.Errorf("docs row %q: depth %d is not ready + unacked", strings.TrimSpace(m[0]), depth)
		}
		if got := kedaReplicas(float64(depth), value, activation, int(*so.Spec.MinReplicaCount), int(*so.Spec.MaxReplicaCount)); got != want {
			t.Errorf("docs row %q promises %d workers; KEDA's formula with the chart gives %d", strings.TrimSpace(m[0]), want, got)
		}
	}
}
