package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The raw consume modes: what a worker's delivery and ack cost RabbitMQ, apart from the
// publish. A consumer with the prefetch (RawResult.Concurrency) takes every message of the
// quorum queue, filled beforehand, and acks each (rawDeliver) or every fourth with multiple
// (rawDeliverMulti). A delivery's latency is its wait after the one before it was taken: at
// prefetch 1, the ack → next delivery round trip.
const (
	rawDeliver      rawMode = "deliver+ack"
	rawDeliverMulti rawMode = "deliver+ack ×4"
)

// runRawConsume fills the queue with n messages, then consumes them all, measuring from the
// first delivery to the last.
func runRawConsume(ctx context.Context, w *world, mode rawMode, prefetch, n int, comps []component) (RawResult, error) {
	res := RawResult{Mode: mode, Concurrency: prefetch}
	conn, ch, err := rawChannel(w, "careerops-bench-raw-consume")
	if err != nil {
		return res, err
	}
	defer conn.Close()
	defer func() { _, _ = ch.QueueDelete(rawQueue, false, false, false) }()
	if err := fillRaw(ctx, ch, n); err != nil {
		return res, err
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return res, err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, rawQueue, "", false, false, false, false, nil)
	if err != nil {
		return res, err
	}
	lats := make([]time.Duration, 0, n)
	var a cpuSnap
	last := time.Now()
	for i := range n {
		var d amqp.Delivery
		select {
		case d = <-deliveries:
		case <-time.After(5 * time.Second):
			return res, fmt.Errorf("%s: no delivery within 5 s after %d of %d", mode, i, n)
		}
		now := time.Now()
		if i == 0 {
			a = snapCPU(comps) // the clock starts at the first delivery
		} else {
			lats = append(lats, now.Sub(last))
		}
		if mode == rawDeliver {
			err = d.Ack(false)
		} else if i%4 == 3 || i == n-1 {
			err = d.Ack(true)
		}
		if err != nil {
			return res, fmt.Errorf("ack: %w", err)
		}
		last = time.Now()
	}
	b := snapCPU(comps)
	res.Window = b.at.Sub(a.at)
	res.Ops = len(lats)
	res.OpsPerSec = float64(len(lats)) / res.Window.Seconds()
	res.Latency = Summarise(lats)
	res.CPU = cpuBetween(a, b)
	return res, nil
}

// fillRaw publishes n generate messages to the raw queue, 256 awaiting their confirms at a time.
func fillRaw(ctx context.Context, ch *amqp.Channel, n int) error {
	if err := ch.Confirm(false); err != nil {
		return err
	}
	pending := make([]*amqp.DeferredConfirmation, 0, 256)
	wait := func() error {
		for _, dc := range pending {
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				return errors.Join(errors.New("fill the raw queue: a publish was not confirmed"), err)
			}
		}
		pending = pending[:0]
		return nil
	}
	for i := range n {
		id := uuid.NewString()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", rawQueue, false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: id + "/0",
			Body: rawBody(id, 1, i),
		})
		if err != nil {
			return fmt.Errorf("fill the raw queue: %w", err)
		}
		if pending = append(pending, dc); len(pending) == cap(pending) {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}
