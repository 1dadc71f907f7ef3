package broker

import (
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/job"
)

// DeliveryLimit is how often RabbitMQ delivers one message of the generate queue before it
// dead-letters it to the DLQ (reason "delivery_limit" in its x-death header). It only catches
// messages that crash or hang their workers: the worker acks every message it can handle and
// counts retries itself. Set explicitly because RabbitMQ 4 defaults to 20 and 3.x to none.
const DeliveryLimit = 10

// Queue describes one durable quorum queue of the topology.
type Queue struct {
	Name string
	Args amqp.Table
}

// Topology is every queue the system uses. Declaring is idempotent, so every program declares
// what it touches whenever it opens a channel.
func Topology() []Queue {
	return []Queue{
		{Name: job.QueueGenerate, Args: amqp.Table{
			amqp.QueueTypeArg:           amqp.QueueTypeQuorum,
			"x-delivery-limit":          int64(DeliveryLimit),
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": job.QueueDLQ,
		}},
		{Name: job.QueueCompleted, Args: amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}},
		{Name: job.QueueDLQ, Args: amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}},
	}
}

// Declare declares the whole topology on ch.
func Declare(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(job.ExchangeProgress, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("broker: declare exchange %s: %w", job.ExchangeProgress, err)
	}
	for _, q := range Topology() {
		if _, err := ch.QueueDeclare(q.Name, true, false, false, false, q.Args); err != nil {
			return fmt.Errorf("broker: declare queue %s: %w", q.Name, err)
		}
	}
	return nil
}
