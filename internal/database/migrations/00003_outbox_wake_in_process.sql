-- +goose Up
-- NOTIFY takes a cluster-wide lock held until the commit is flushed, serialising every job's
-- commit (measured: half of the busy backends' waits). The process that writes outbox rows
-- now wakes its own relay; other relays find the rows by polling, or by an explicit
-- pg_notify('outbox_messages', '') from rare writers such as careeropsctl.
DROP TRIGGER outbox_messages_notify ON outbox_messages;
DROP FUNCTION outbox_messages_notify;

-- +goose Down
-- +goose StatementBegin
CREATE FUNCTION outbox_messages_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_messages', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER outbox_messages_notify AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_messages_notify();
