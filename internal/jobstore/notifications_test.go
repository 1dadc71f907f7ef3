package jobstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/careerops/jobs/internal/jobstore"
)

func TestEmailNotificationsChoice(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	user := addUser(t, s, "ada@example.org")
	n, err := s.Notifications(ctx, user)
	if err != nil || n.Email || n.Address == nil || *n.Address != "ada@example.org" {
		t.Fatalf("a new user's notifications: %+v, %v; want off, with the address", n, err)
	}
	if got, err := jobstore.EmailRecipients(ctx, pool, []int64{user}); len(got) != 0 || err != nil {
		t.Fatalf("EmailRecipients before opting in = %v, %v", got, err)
	}
	if n, err = s.SetEmailNotifications(ctx, user, true); err != nil || !n.Email {
		t.Fatalf("opt in: %+v, %v", n, err)
	}
	if got, err := jobstore.EmailRecipients(ctx, pool, []int64{user, 900002}); err != nil || len(got) != 1 || got[user] != "ada@example.org" {
		t.Fatalf("EmailRecipients after opting in = %v, %v", got, err)
	}
	if n, err = s.SetEmailNotifications(ctx, user, false); err != nil || n.Email {
		t.Fatalf("opt out: %+v, %v", n, err)
	}

	// A user first seen in another service's message has no address: no opting in.
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email) VALUES (900001, NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetEmailNotifications(ctx, 900001, true); !errors.Is(err, jobstore.ErrNoEmailAddress) {
		t.Errorf("opting in without an address: %v, want ErrNoEmailAddress", err)
	}
	if n, err := s.SetEmailNotifications(ctx, 900001, false); err != nil || n.Email || n.Address != nil {
		t.Errorf("opting out without an address: %+v, %v", n, err)
	}
	if _, err := s.SetEmailNotifications(ctx, 900002, false); !errors.Is(err, jobstore.ErrUnknownUser) {
		t.Errorf("an unknown user: %v, want ErrUnknownUser", err)
	}
	if _, err := s.Notifications(ctx, 900002); !errors.Is(err, jobstore.ErrUnknownUser) {
		t.Errorf("an unknown user's notifications: %v, want ErrUnknownUser", err)
	}
}

func TestEmailDeliveryIsRecordedOnce(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	user := addUser(t, s, "ada@example.org")
	d := jobstore.EmailDelivery{MessageID: "<job-1.completed@example.com>", JobID: "job-1", Outcome: "completed",
		UserID: user, Recipient: "ada@example.org", SMTPReply: "250 ok"}
	if _, ok, err := jobstore.EmailDelivered(ctx, pool, d.MessageID); ok || err != nil {
		t.Fatalf("delivered before sending: %v, %v", ok, err)
	}
	for i, want := range []bool{true, false} {
		if recorded, err := jobstore.RecordEmailDelivery(ctx, pool, d); err != nil || recorded != want {
			t.Fatalf("record %d: %v, %v; want %v", i, recorded, err, want)
		}
	}
	got, ok, err := jobstore.EmailDelivered(ctx, pool, d.MessageID)
	if !ok || err != nil || got.JobID != "job-1" || got.SMTPReply != "250 ok" || got.SentAt.IsZero() {
		t.Fatalf("the record: %+v, %v, %v", got, ok, err)
	}
	// Deleting the user deletes their records.
	if _, err := pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, user); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := jobstore.EmailDelivered(ctx, pool, d.MessageID); ok || err != nil {
		t.Errorf("after the user was deleted: %v, %v", ok, err)
	}
}
