package outbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/testkit"
)

// Whatever a caller hands Insert, what it stores can be published: header values are clipped
// and cleaned (a NUL would make PostgreSQL's JSONB refuse the row).
func TestInsertKeepsHeadersPublishable(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	ctx := context.Background()
	headers := map[string]string{job.HeaderDeathError: strings.Repeat("e", 300<<10), "a-tone": "a\x00b"}
	for i := range 200 {
		headers[strings.Repeat("k", 200)+string(rune('A'+i%26))+strings.Repeat("z", i)] = strings.Repeat("v", 900)
	}
	if err := outbox.Insert(ctx, pool, broker.Message{RoutingKey: "q", MessageID: "m", Headers: headers, Body: []byte("{}")}, time.Time{}); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	var size, deathError int
	var tone string
	err := pool.QueryRow(ctx, `SELECT length(headers::text), length(headers->>$1), headers->>'a-tone' FROM outbox_messages`,
		job.HeaderDeathError).Scan(&size, &deathError, &tone)
	if err != nil {
		t.Fatal(err)
	}
	if deathError > job.MaxErrorBytes || size > outbox.MaxHeaderBytes+1024 || strings.ContainsRune(tone, 0) {
		t.Fatalf("stored headers of %d bytes, death error of %d, tone %q", size, deathError, tone)
	}
}

// A row the broker can never take is parked at once, without stopping the others; a row it
// keeps refusing is parked after MaxAttempts. Parked rows wait for an operator's Replay.
func TestRelayParksRowsTheBrokerRefuses(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	url := testkit.NewVhostURL(t)
	ctx := context.Background()
	// A queue that refuses every message with a nack.
	ch := testkit.Channel(t, url)
	if _, err := ch.QueueDeclare("full", true, false, false, false, map[string]any{"x-max-length": int64(0), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	// An oversize row written before Insert clipped headers (or by hand).
	if _, err := pool.Exec(ctx, `INSERT INTO outbox_messages (routing_key, message_id, headers, body)
		VALUES ($1, 'huge', jsonb_build_object('x', repeat('x', 300000)), '{}')`, job.QueueCompleted); err != nil {
		t.Fatal(err)
	}
	for _, m := range []broker.Message{
		{RoutingKey: job.QueueCompleted, MessageID: "fine", Body: []byte("{}")},
		{RoutingKey: "full", MessageID: "nacked", Body: []byte("{}")},
	} {
		if err := outbox.Insert(ctx, pool, m, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	conn := dial(t, url)
	pub := broker.NewPublisher(conn)
	defer pub.Close()
	relay := outbox.NewRelay(pool, pub, outbox.RelayConfig{RetryDelay: time.Millisecond, MaxAttempts: 3})
	for range 5 {
		_ = relay.Flush(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	parked, err := outbox.ListParked(ctx, pool, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]outbox.ParkedRow{}
	for _, p := range parked {
		got[p.MessageID] = p
	}
	if len(got) != 2 || got["huge"].Attempts != 1 || !strings.Contains(got["huge"].LastError, "refused") || got["nacked"].Attempts != 3 {
		t.Fatalf("parked rows = %+v, want huge after 1 attempt and nacked after 3", parked)
	}
	if n := rows(t, pool); n != 2 {
		t.Fatalf("outbox holds %d rows, want the 2 parked ones (the fine one published)", n)
	}
	backlog, err := outbox.ReadBacklog(ctx, pool)
	if err != nil || backlog.Parked != 2 || backlog.Waiting != 0 {
		t.Fatalf("backlog = %+v, %v", backlog, err)
	}
	if !conn.Connected() {
		t.Fatal("the relay's connection was dropped")
	}

	// Replay puts a parked row back in line with a fresh budget.
	if _, err := ch.QueueDelete("full", false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("full", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := outbox.Replay(ctx, pool, got["nacked"].ID); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	if err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, pool); n != 1 {
		t.Fatalf("after the replay the outbox holds %d rows, want the huge one", n)
	}
	if n, err := outbox.Replay(ctx, pool, 0); err != nil || n != 1 {
		t.Fatalf("Replay(all) = %d, %v", n, err)
	}
	if err := relay.Flush(ctx); !errors.Is(err, broker.ErrRefused) {
		t.Fatalf("the huge row replayed: %v, want ErrRefused again", err)
	}
}
