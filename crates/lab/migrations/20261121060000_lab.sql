-- The strategy lab (crates/lab/): one rule -- a coupon with N units, at most one per user --
-- handed out by eight strategies side by side, so that their safety and cost can be measured.
--
-- Applied by `coupon-lab serve`, never by the service: everything lives in the schema `lab`, and
-- the lab's migrations are recorded in `lab._sqlx_migrations` (see src/store.rs), so a database
-- the lab shares with the service keeps the two histories apart. (Until issue 16 this file was
-- the service's migration 20261121060000 and created lab_* objects in every service database;
-- the service's 20261204000000_retire_lab.sql drops those.)
--
-- Which constraint each strategy may lean on is the point of the lab, so it is spelled out:
--
--   naive                  nothing. It must be free to oversell and to give a user two.
--   pg-for-update          the row lock alone: the user check and the decrement run under it.
--   pg-function            the same, inside lab.give().
--   queue, redis-lock      their own exclusion (one consumer; a lock): no constraint at all.
--   pg-conditional-update  the atomic `quantity > 0` UPDATE for the count, and the unique index
--   pg-optimistic          below for "one per user": without a lock held across the check and
--                          the insert, nothing else can stop one user's two requests.
--
-- So there is deliberately no CHECK (quantity >= 0) and no table-wide UNIQUE (coupon_id,
-- user_id): each safe strategy must hold by itself, and the tests check that it does.

CREATE TABLE lab.coupons (
    id         uuid        PRIMARY KEY,
    -- N, as last set up (PUT /v1/lab/coupons/{id}).
    initial    integer     NOT NULL CHECK (initial >= 0),
    -- Units left. A lost update (naive) leaves it too high, never negative.
    quantity   integer     NOT NULL,
    -- Bumped by every safe writer; pg-optimistic updates only the version it read.
    version    bigint      NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lab.claims (
    id         bigserial   PRIMARY KEY,
    coupon_id  uuid        NOT NULL REFERENCES lab.coupons (id) ON DELETE CASCADE,
    user_id    text        NOT NULL,
    -- Which strategy handed it out, so the partial index below applies to its rows only.
    strategy   text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- The user checks of the serialising strategies and the lab's reports.
CREATE INDEX claims_by_user ON lab.claims (coupon_id, user_id);

-- "One per user" for the two strategies that hold no lock across check and insert. Their
-- INSERT names the same predicate in ON CONFLICT.
CREATE UNIQUE INDEX claims_one_per_user ON lab.claims (coupon_id, user_id)
    WHERE strategy IN ('pg-conditional-update', 'pg-optimistic');

-- pg-function: seed 000's give_coupon_to_user, with the user rule added. One round trip.
--
-- p_coupon: the lab coupon; p_user: the user (validated by the service).
-- Returns 'issued' or 'not_found'. Raises SQLSTATE LAB01 (the user already holds one) or LAB02
-- (sold out).
--
-- Refusals raise (as seed 000 does) so that their transaction rolls back. Returning normally
-- would commit it, and a transaction that took a row lock has written WAL, so its commit waits
-- for a WAL flush -- while still holding the lock. Measured: returning 'sold_out' made every
-- refusal pay an fsync under the lock, and this strategy ran 3x slower than pg-for-update
-- (whose refusals roll back).
--
-- Each statement of a VOLATILE plpgsql function takes a fresh snapshot (READ COMMITTED), so the
-- claim check, run after the row lock is granted, sees the claim of the transaction that held
-- the lock before. Folding the check into the locking SELECT would evaluate it against the
-- snapshot taken before the wait and could miss that claim.
CREATE FUNCTION lab.give(p_coupon uuid, p_user text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    remaining integer;
BEGIN
    -- 1. Take the coupon's row lock: every give of this coupon queues here.
    SELECT quantity INTO remaining FROM lab.coupons WHERE id = p_coupon FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    -- 2. A holder gets "already issued", whatever is left.
    IF EXISTS (SELECT 1 FROM lab.claims WHERE coupon_id = p_coupon AND user_id = p_user) THEN
        RAISE EXCEPTION USING ERRCODE = 'LAB01', MESSAGE = 'already_issued';
    END IF;
    -- 3. The count.
    IF remaining < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'LAB02', MESSAGE = 'sold_out';
    END IF;
    -- 4. Write both; the lock is released when the caller's statement commits.
    UPDATE lab.coupons SET quantity = quantity - 1, version = version + 1 WHERE id = p_coupon;
    INSERT INTO lab.claims (coupon_id, user_id, strategy) VALUES (p_coupon, p_user, 'pg-function');
    RETURN 'issued';
END
$$;
