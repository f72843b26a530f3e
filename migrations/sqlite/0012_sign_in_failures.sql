-- Failed sign-ins per client address (an IPv6 address by its /64), in the database so that
-- every replica counts the same failures however a balancer spreads the requests. One row
-- per address: the window it is in and its failures so far; the sweep removes old windows.
CREATE TABLE sign_in_failures (
    address TEXT PRIMARY KEY NOT NULL,
    window_started BIGINT NOT NULL,
    failures INTEGER NOT NULL
);
