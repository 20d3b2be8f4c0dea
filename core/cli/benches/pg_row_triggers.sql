-- Bench only (core/cli/benches/pg_dispatch.rs, CASCADE_BENCH_ROW_TRIGGERS):
-- puts back the outbox's per-row total and stamp triggers of
-- 20261213000000_initial.sql in place of the per-statement ones of
-- 20261216000000_outbox_counts_per_statement.sql, so that one run can
-- measure dispatch with each. Never applied to a real store.

DROP TRIGGER outbox_counts_inserted ON outbox;
DROP TRIGGER outbox_counts_updated ON outbox;
DROP TRIGGER outbox_counts_deleted ON outbox;

CREATE FUNCTION rollout_counts_outbox_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollout_counts
    SET sent = sent + (NEW.state = 'sent')::int, dead = dead + (NEW.state = 'dead')::int
    WHERE rollout_id = NEW.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER rollout_counts_outbox_added AFTER INSERT ON outbox
    FOR EACH ROW
    WHEN (NEW.state IN ('sent', 'dead'))
    EXECUTE FUNCTION rollout_counts_outbox_added();

CREATE FUNCTION rollout_counts_outbox_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollout_counts
    SET sent = sent + (NEW.state = 'sent')::int - (OLD.state = 'sent')::int,
        dead = dead + (NEW.state = 'dead')::int - (OLD.state = 'dead')::int
    WHERE rollout_id = NEW.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER rollout_counts_outbox_state AFTER UPDATE OF state ON outbox
    FOR EACH ROW
    WHEN (OLD.state <> NEW.state AND (OLD.state IN ('sent', 'dead') OR NEW.state IN ('sent', 'dead')))
    EXECUTE FUNCTION rollout_counts_outbox_state();

CREATE FUNCTION rollout_counts_outbox_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollout_counts
    SET sent = sent - (OLD.state = 'sent')::int, dead = dead - (OLD.state = 'dead')::int
    WHERE rollout_id = OLD.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER rollout_counts_outbox_removed AFTER DELETE ON outbox
    FOR EACH ROW
    WHEN (OLD.state IN ('sent', 'dead'))
    EXECUTE FUNCTION rollout_counts_outbox_removed();

-- Sent initial and escalation messages (the only outbox rows reports read).
CREATE FUNCTION report_stamps_send_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = NEW.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER report_stamps_send_added AFTER INSERT ON outbox
    FOR EACH ROW
    WHEN (NEW.state = 'sent' AND NEW.step_kind IN ('initial', 'escalation'))
    EXECUTE FUNCTION report_stamps_send_added();

CREATE FUNCTION report_stamps_send_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN (OLD.rollout_id, NEW.rollout_id);
    RETURN NULL;
END $$;
CREATE TRIGGER report_stamps_send_changed
    AFTER UPDATE OF rollout_id, person_id, step_kind, state, sent_at ON outbox
    FOR EACH ROW
    WHEN ((OLD.state = 'sent' AND OLD.step_kind IN ('initial', 'escalation')
           OR NEW.state = 'sent' AND NEW.step_kind IN ('initial', 'escalation'))
          AND (OLD.rollout_id IS DISTINCT FROM NEW.rollout_id
               OR OLD.person_id IS DISTINCT FROM NEW.person_id
               OR OLD.step_kind IS DISTINCT FROM NEW.step_kind
               OR OLD.state IS DISTINCT FROM NEW.state
               OR OLD.sent_at IS DISTINCT FROM NEW.sent_at))
    EXECUTE FUNCTION report_stamps_send_changed();

CREATE FUNCTION report_stamps_send_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = OLD.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER report_stamps_send_removed AFTER DELETE ON outbox
    FOR EACH ROW
    WHEN (OLD.state = 'sent' AND OLD.step_kind IN ('initial', 'escalation'))
    EXECUTE FUNCTION report_stamps_send_removed();
