package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// A message whose header frame RabbitMQ would refuse (FRAME_ERROR, after which the broker
// closes the whole connection) is refused before it is sent: the rest of its batch is
// published and the shared connection stays up.
func TestPublisherRefusesAHeaderFrameTheBrokerWouldReject(t *testing.T) {
	t.Parallel()
	url := testkit.NewVhostURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := broker.Dial(ctx, broker.ConnectionConfig{URL: url, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { conn.Close(); conn.Wait() }()
	pub := broker.NewPublisher(conn)
	defer pub.Close()
	ok := broker.Message{RoutingKey: job.QueueCompleted, MessageID: "ok", Body: []byte(`{}`)}
	poison := broker.Message{RoutingKey: job.QueueCompleted, MessageID: "poison", Body: []byte(`{}`),
		Headers: map[string]string{job.HeaderDeathError: strings.Repeat("x", 300<<10)}}
	errs := pub.Publish(ctx, []broker.Message{ok, poison, ok})
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("the valid messages of the batch were not confirmed: %v", errs)
	}
	if !errors.Is(errs[1], broker.ErrRefused) {
		t.Fatalf("the oversize message: %v, want ErrRefused", errs[1])
	}
	time.Sleep(200 * time.Millisecond) // a connection.close from the broker would have come by now
	if !conn.Connected() {
		t.Fatal("the connection was dropped")
	}
	if errs := pub.Publish(ctx, []broker.Message{ok}); errs[0] != nil {
		t.Fatalf("publishing after the refusal: %v", errs[0])
	}
	ch := testkit.Channel(t, url)
	q, err := ch.QueueDeclarePassive(job.QueueCompleted, true, false, false, false, nil)
	if err != nil || q.Messages != 3 {
		t.Fatalf("queue holds %d messages (%v), want 3", q.Messages, err)
	}
}

// Nobody may consume cover-letter.completed: it keeps at most CompletedMaxLength messages,
// dropping the oldest, instead of growing until RabbitMQ blocks every publisher. A queue
// declared before the cap existed keeps working (RabbitMQ refuses to change a queue's
// arguments): the publisher warns and publishes on.
func TestCompletedQueueIsBounded(t *testing.T) {
	t.Parallel()
	ok := broker.Message{RoutingKey: job.QueueCompleted, Body: []byte(`{}`)}
	publishN := func(t *testing.T, url string, maxLength, n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := broker.Dial(ctx, broker.ConnectionConfig{URL: url, Name: t.Name(), CompletedMaxLength: maxLength})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { conn.Close(); conn.Wait() }()
		pub := broker.NewPublisher(conn)
		defer pub.Close()
		for i := range n {
			m := ok
			m.MessageID = fmt.Sprint(i)
			if errs := pub.Publish(ctx, []broker.Message{m}); errs[0] != nil {
				t.Fatalf("publish %d: %v", i, errs[0])
			}
		}
	}
	t.Run("capped", func(t *testing.T) {
		t.Parallel()
		url := testkit.NewVhostURL(t)
		publishN(t, url, 10, 15)
		testkit.QueueLen(t, testkit.Channel(t, url), job.QueueCompleted, 10, 10*time.Second)
	})
	t.Run("declared before the cap", func(t *testing.T) {
		t.Parallel()
		url := testkit.NewVhostURL(t)
		if _, err := testkit.Channel(t, url).QueueDeclare(job.QueueCompleted, true, false, false, false,
			map[string]any{"x-queue-type": "quorum"}); err != nil {
			t.Fatal(err)
		}
		publishN(t, url, 10, 15)
		testkit.QueueLen(t, testkit.Channel(t, url), job.QueueCompleted, 15, 10*time.Second)
	})
}

// A process that announces completions declares cover-letter.completed as soon as it is
// connected: another service may consume it before the first announcement.
func TestCompletedQueueExistsOnceConnected(t *testing.T) {
	t.Parallel()
	url := testkit.NewVhostURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := broker.Dial(ctx, broker.ConnectionConfig{URL: url, Name: t.Name(), CompletedMaxLength: 10, DeclareCompleted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { conn.Close(); conn.Wait() }()
	testkit.Eventually(t, 10*time.Second, func() bool {
		ch, err := conn.Channel(ctx)
		if err != nil {
			return false
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive(job.QueueCompleted, true, false, false, false, nil)
		return err == nil
	}, "cover-letter.completed was not declared")
}
