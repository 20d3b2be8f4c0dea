-- Spaced refreshers (issue 19): a rollout may send those who acknowledged
-- a short nudge some calendar days after their own acknowledgement (its
-- definition's `refreshers`, in days). Members carry the number of their
-- next refresher and when the scheduler should next look at them; the
-- scheduler works out each refresher's time in the partnership's calendar
-- from `acknowledged_at`, queues it as an outbox row (step kind
-- `refresher`) and moves them on. Triggers start a member's refreshers
-- when they acknowledge, stop them when an import takes them out (a
-- leaver or a mover), and start them again if they come back.

-- How many refreshers the rollout's definition has, kept for the
-- triggers so they need not read the definition.
ALTER TABLE rollouts ADD COLUMN refreshers INTEGER NOT NULL DEFAULT 0;
UPDATE rollouts SET refreshers = COALESCE(json_array_length(definition, '$.refreshers'), 0);

CREATE TRIGGER rollouts_refreshers AFTER INSERT ON rollouts
BEGIN
    UPDATE rollouts SET refreshers = COALESCE(json_array_length(NEW.definition, '$.refreshers'), 0)
    WHERE id = NEW.id;
END;

-- The member's next refresher (1-based) and when to look at it; NULL when
-- none is waiting (not acknowledged, out, or every refresher queued).
ALTER TABLE rollout_members ADD COLUMN refresher_next INTEGER NOT NULL DEFAULT 1;
ALTER TABLE rollout_members ADD COLUMN refresher_due_at INTEGER;

CREATE INDEX rollout_members_refresher_due ON rollout_members (refresher_due_at)
    WHERE refresher_due_at IS NOT NULL;

-- Every route that records an acknowledgement sets `acknowledged_at`: the
-- scheduler looks at once and finds the first refresher's time. A
-- cancelled rollout sends nothing more (its cancel clears them too).
CREATE TRIGGER refreshers_after_acknowledgement AFTER UPDATE OF acknowledged_at ON rollout_members
WHEN OLD.acknowledged_at IS NULL AND NEW.acknowledged_at IS NOT NULL AND NEW.out_reason IS NULL
    AND (SELECT refreshers FROM rollouts WHERE id = NEW.rollout_id AND state <> 'cancelled')
        >= NEW.refresher_next
BEGIN
    UPDATE rollout_members SET refresher_due_at = NEW.acknowledged_at
    WHERE rollout_id = NEW.rollout_id AND person_id = NEW.person_id;
END;

-- A leaver or mover gets no refresher (their queued ones are cancelled
-- with their other queued messages by the import).
CREATE TRIGGER refreshers_stop_when_out AFTER UPDATE OF out_reason ON rollout_members
WHEN NEW.out_reason IS NOT NULL AND NEW.refresher_due_at IS NOT NULL
BEGIN
    UPDATE rollout_members SET refresher_due_at = NULL
    WHERE rollout_id = NEW.rollout_id AND person_id = NEW.person_id;
END;

-- Back in the audience: the refreshers still to come go on.
CREATE TRIGGER refreshers_resume_when_back AFTER UPDATE OF out_reason ON rollout_members
WHEN OLD.out_reason IS NOT NULL AND NEW.out_reason IS NULL AND NEW.acknowledged_at IS NOT NULL
    AND (SELECT refreshers FROM rollouts WHERE id = NEW.rollout_id AND state <> 'cancelled')
        >= NEW.refresher_next
BEGIN
    UPDATE rollout_members SET refresher_due_at = NEW.acknowledged_at
    WHERE rollout_id = NEW.rollout_id AND person_id = NEW.person_id;
END;

-- Answers to refreshers' check questions: one row per person and
-- refresher of a rollout, counting tries as `check_answers` does, linked
-- to the refresher (its rollout, number and outbox row), never to an
-- acknowledgement. Option text is not kept.
CREATE TABLE refresher_answers (
    id                INTEGER PRIMARY KEY,
    rollout_id        TEXT NOT NULL REFERENCES rollouts (id),
    person_id         TEXT NOT NULL,
    -- 1-based, in the rollout's `refreshers`.
    refresher         INTEGER NOT NULL CHECK (refresher >= 1),
    -- The outbox row that asked it.
    delivery_id       INTEGER NOT NULL,
    item_id           TEXT NOT NULL,
    item_version      TEXT NOT NULL,
    -- The check question's place in the item version, and its digest.
    question          INTEGER NOT NULL CHECK (question BETWEEN 1 AND 3),
    question_digest   TEXT NOT NULL,
    first_answer      INTEGER NOT NULL CHECK (first_answer >= 1),
    right_first_time  INTEGER NOT NULL CHECK (right_first_time IN (0, 1)),
    attempts          INTEGER NOT NULL CHECK (attempts >= 1),
    answered_at       INTEGER,
    -- The channel instance, or `web`, of the first answer.
    channel           TEXT NOT NULL,
    at                INTEGER NOT NULL,
    UNIQUE (rollout_id, person_id, refresher)
);

CREATE TRIGGER report_stamps_refresher_answer_added AFTER INSERT ON refresher_answers
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = NEW.rollout_id;
END;

CREATE TRIGGER report_stamps_refresher_answer_changed AFTER UPDATE ON refresher_answers
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN (OLD.rollout_id, NEW.rollout_id);
END;

CREATE TRIGGER report_stamps_refresher_answer_removed AFTER DELETE ON refresher_answers
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = OLD.rollout_id;
END;
