-- Check questions (issue 19): a person's answers to the one to three
-- multiple-choice questions an item version may carry, asked before their
-- acknowledgement is recorded. One row per person, item version and
-- question. A row is written at the person's first answer and counts each
-- further try; it becomes evidence when the acknowledgement is recorded:
-- that transaction sets `acknowledgement_id` on the person's answered rows
-- and appends each to the evidence chain (kind `check-answer`). Rows
-- without an acknowledgement are answers in progress.
--
-- Answers are the practitioner's, never about a child. Option text is not
-- kept: options are numbered as the item version lists them.
CREATE TABLE check_answers (
    id                  INTEGER PRIMARY KEY,
    person_id           TEXT NOT NULL,
    item_id             TEXT NOT NULL,
    item_version        TEXT NOT NULL,
    -- 1, 2 or 3: the question's place in the item version.
    question            INTEGER NOT NULL CHECK (question BETWEEN 1 AND 3),
    -- The first 16 hex digits of SHA-256 over the question, its options
    -- and its answer: the same question in a later version has the same
    -- digest, so reports can follow it.
    question_digest     TEXT NOT NULL,
    -- The option chosen first (1-based).
    first_answer        INTEGER NOT NULL CHECK (first_answer >= 1),
    right_first_time    INTEGER NOT NULL CHECK (right_first_time IN (0, 1)),
    -- Answers given, the right one included.
    attempts            INTEGER NOT NULL CHECK (attempts >= 1),
    -- When the right answer was given; NULL while only wrong ones were.
    answered_at         INTEGER,
    -- The acknowledgement it was recorded with.
    acknowledgement_id  INTEGER REFERENCES acknowledgements (id),
    UNIQUE (person_id, item_id, item_version, question)
);

-- Reports read answers by acknowledgement; recording an acknowledgement
-- finds the answers waiting for one.
CREATE INDEX check_answers_acknowledgement ON check_answers (acknowledgement_id);

-- Kept reports (20261104000000_report_stamps): an answer counts once its
-- acknowledgement is set, in every rollout of the item version.
CREATE TRIGGER report_stamps_check_answer_added AFTER INSERT ON check_answers
WHEN NEW.acknowledgement_id IS NOT NULL
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id = NEW.item_id AND item_version = NEW.item_version);
END;

CREATE TRIGGER report_stamps_check_answer_changed AFTER UPDATE ON check_answers
WHEN OLD.acknowledgement_id IS NOT NULL OR NEW.acknowledgement_id IS NOT NULL
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts
         WHERE item_id = OLD.item_id AND item_version = OLD.item_version
            OR item_id = NEW.item_id AND item_version = NEW.item_version);
END;

CREATE TRIGGER report_stamps_check_answer_removed AFTER DELETE ON check_answers
WHEN OLD.acknowledgement_id IS NOT NULL
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id = OLD.item_id AND item_version = OLD.item_version);
END;
