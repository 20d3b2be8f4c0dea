-- A person's UK mobile number from the optional `mobile` column of
-- people.csv, normalised to +447…; also kept as their `mobile` identity,
-- which text-message channels (GOV.UK Notify) deliver to.
ALTER TABLE people ADD COLUMN mobile TEXT;
