-- Named leases: which process does a job only one may do at a time (a
-- Telegram long poll), and which serves are alive (`serve:<owner>`).
-- `until_ms` is when the lease runs out unless its holder renews it.
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
