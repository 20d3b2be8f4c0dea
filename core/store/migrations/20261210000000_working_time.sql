-- Each person's own time (issue 19): when they work, as the canonical
-- form of people.csv's `works` column (e.g. "Mon-Fri 08:00-18:00"), and
-- the day they are back from an absence, "YYYY-MM-DD" (`absent_until`).
-- Both empty for most people; planning groups the audience by them with
-- `time_zone`.
ALTER TABLE people ADD COLUMN works TEXT;
ALTER TABLE people ADD COLUMN absent_until TEXT;
