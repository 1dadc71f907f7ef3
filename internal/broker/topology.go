package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/job"
)

// DeliveryLimit is how often RabbitMQ delivers one message of a kind's queue before it
// dead-letters it to the kind's DLQ (reason "delivery_limit" in its x-death header). It only catches
// messages that crash or hang their workers: the worker acks every message it can handle and
// counts retries itself. Set explicitly because RabbitMQ 4 defaults to 20 and 3.x to none.
const DeliveryLimit = 10

// Queue describes one durable quorum queue of the topology.
type Queue struct {
	Name string
	Args amqp.Table
}

// Topology is every queue the system uses with the given job kinds: each kind's queue and its
// DLQ, and cover-letter.completed. Declaring is idempotent, so every program declares what it
// touches whenever it opens a channel; cover-letter.completed, whose arguments depend on a
// setting, only the publisher declares (DeclareCompleted).
func Topology(kinds []string) []Queue {
	var qs []Queue
	for _, k := range kinds {
		qs = append(qs, Queue{Name: k, Args: amqp.Table{
			amqp.QueueTypeArg:           amqp.QueueTypeQuorum,
			"x-delivery-limit":          int64(DeliveryLimit),
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": job.DLQ(k),
		}}, Queue{Name: job.DLQ(k), Args: amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}})
	}
	return append(qs, Queue{Name: job.QueueCompleted, Args: completedArgs(0)})
}

// DeclareExchange declares the progress exchange on ch.
func DeclareExchange(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(job.ExchangeProgress, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("broker: declare exchange %s: %w", job.ExchangeProgress, err)
	}
	return nil
}

// Declare declares the topology of the given job kinds on ch, but cover-letter.completed.
func Declare(ch *amqp.Channel, kinds []string) error {
	if err := DeclareExchange(ch); err != nil {
		return err
	}
	for _, q := range Topology(kinds) {
		if q.Name == job.QueueCompleted {
			continue
		}
		if _, err := ch.QueueDeclare(q.Name, true, false, false, false, q.Args); err != nil {
			return fmt.Errorf("broker: declare queue %s: %w", q.Name, err)
		}
	}
	return nil
}

// completedArgs are cover-letter.completed's arguments: a quorum queue, capped at maxLength
// messages (0: no cap), dropping the oldest past it.
func completedArgs(maxLength int) amqp.Table {
	args := amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}
	if maxLength > 0 {
		args["x-max-length"] = int64(maxLength)
		args["x-overflow"] = "drop-head"
	}
	return args
}

// DeclareCompleted declares cover-letter.completed on a channel of its own. A queue declared
// earlier with other arguments (before the cap, or with another cap) is left as it is:
// RabbitMQ refuses to change arguments and closes the channel; warn says so, with the policy
// that caps such a queue.
func DeclareCompleted(ctx context.Context, conn *Connection) error {
	ch, err := conn.Channel(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = ch.Close() }()
	_, err = ch.QueueDeclare(job.QueueCompleted, true, false, false, false, completedArgs(conn.cfg.CompletedMaxLength))
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.PreconditionFailed {
		conn.cfg.Logger.WarnContext(ctx, "broker: "+job.QueueCompleted+" was declared with other arguments and is left as it is; "+
			"cap it with a policy: rabbitmqctl set_policy careerops-completed '^cover-letter\\.completed$' "+
			"'{\"max-length\":100000,\"overflow\":\"drop-head\"}' --apply-to queues",
			slog.Int("completed_max_length", conn.cfg.CompletedMaxLength))
		return nil
	}
	if err != nil {
		return fmt.Errorf("broker: declare queue %s: %w", job.QueueCompleted, err)
	}
	return nil
}
