package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/testkit"
)

// insertHeld commits n rows as a hand-off's writer does (due only after hold) and returns them.
func insertHeld(t *testing.T, pool *pgxpool.Pool, first, n int, hold time.Duration) []outbox.Row {
	t.Helper()
	held := make([]outbox.Row, n)
	for i := range held {
		m := broker.Message{RoutingKey: job.QueueCompleted, MessageID: fmt.Sprint(first + i), Body: []byte("{}"),
			Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
		held[i].Message = m
		if err := pool.QueryRow(context.Background(), `
			INSERT INTO outbox_messages (exchange, routing_key, message_id, headers, body, available_at)
			VALUES ('', $1, $2, '{}', $3, now() + make_interval(secs => $4)) RETURNING id`,
			m.RoutingKey, m.MessageID, m.Body, hold.Seconds()).Scan(&held[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	return held
}

// drain takes every message off the completed queue of the vhost url.
func drain(t *testing.T, url string) []amqp.Delivery {
	t.Helper()
	ch := testkit.Channel(t, url)
	var got []amqp.Delivery
	for {
		m, ok, err := ch.Get(job.QueueCompleted, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		got = append(got, m)
	}
}

// received drains the completed queue and counts each message id.
func received(t *testing.T, url string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, m := range drain(t, url) {
		seen[m.MessageId]++
	}
	return seen
}

// Rows handed over after their commit are published from memory and deleted, well before
// they are due: a relay running beside the hand-off leaves them alone, so each goes out once.
func TestHandoffPublishesRowsBeforeTheRelaysMay(t *testing.T) {
	pool, url, pub := setup(t)
	h := outbox.NewHandoff(pool, pub, outbox.HandoffConfig{Hold: time.Minute, DeleteAfter: 20 * time.Millisecond})
	run(t, h)
	run(t, outbox.NewRelay(pool, pub, outbox.RelayConfig{PollInterval: 50 * time.Millisecond}))

	const n = 200
	start := time.Now()
	for i := 0; i < n; i += 20 {
		if !h.Send(insertHeld(t, pool, i, 20, h.Hold())) {
			t.Fatal("Send refused with room in the queue")
		}
	}
	waitRows(t, pool, 0)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the hand-off took %v", took)
	}
	seen := received(t, url)
	for i := range n {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("message %d published %d times, want once (all: %d ids)", i, seen[fmt.Sprint(i)], len(seen))
		}
	}
}

// What the hand-off could not publish is still published, by a relay: a row RabbitMQ refused
// at once (the hand-off makes it due), a row never handed over (its process died after the
// commit) once due.
func TestRowsTheHandoffCouldNotPublishAreTheRelays(t *testing.T) {
	pool, url, pub := setup(t)
	const hold = 700 * time.Millisecond
	h := outbox.NewHandoff(pool, &failingPublisher{}, outbox.HandoffConfig{Hold: hold}) // refuses every other message
	lost := insertHeld(t, pool, 0, 1, hold)
	handed := insertHeld(t, pool, 1, 2, hold) // 1 is confirmed, 2 refused
	h.Send(handed)
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, pool); n != 2 {
		t.Fatalf("%d rows left after the hand-off, want the 2 it could not publish", n)
	}

	relay := outbox.NewRelay(pool, pub, outbox.RelayConfig{PollInterval: 100 * time.Millisecond})
	if err := relay.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seen := received(t, url); seen[handed[1].MessageID] != 1 || len(seen) != 1 {
		t.Fatalf("before the hold ended a relay published %v, want the refused message 2 alone", seen)
	}
	run(t, relay)
	waitRows(t, pool, 0)
	if seen := received(t, url); seen[lost[0].MessageID] != 1 || len(seen) != 1 {
		t.Fatalf("once due the relay published %v, want message 0", seen)
	}
}

// A hand-off's queue is bounded: past it Send refuses at once instead of blocking the writer.
func TestHandoffSendNeverBlocks(t *testing.T) {
	t.Parallel()
	h := outbox.NewHandoff(nil, &failingPublisher{}, outbox.HandoffConfig{Queue: 2})
	for i, want := range []bool{true, true, false} {
		if got := h.Send([]outbox.Row{{ID: int64(i)}}); got != want {
			t.Fatalf("Send %d = %v, want %v", i, got, want)
		}
	}
}
