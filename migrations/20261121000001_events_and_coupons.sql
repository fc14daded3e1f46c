-- Events and the coupons issued for them.
--
-- Postgres is the durable record: events are defined here first and published to Redis, and
-- every coupon the issue script hands out reaches this table through the writer. The unique
-- constraints are what make the writer idempotent: it inserts with ON CONFLICT DO NOTHING, so a
-- stream entry delivered twice is stored once.

CREATE TABLE events (
    id                   uuid        PRIMARY KEY,
    name                 text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- An IANA zone name, validated by the service (chrono-tz) before it gets here.
    timezone             text        NOT NULL,
    -- The event period, local dates, inclusive.
    starts_on            date        NOT NULL,
    ends_on              date        NOT NULL,
    -- The daily window as minutes after local midnight. close may be 1440 ("24:00"); a close
    -- below open crosses midnight. Minutes, not `time`, because sqlx maps `time` to a type that
    -- cannot hold 24:00.
    daily_open_minute    smallint    NOT NULL CHECK (daily_open_minute BETWEEN 0 AND 1439),
    daily_close_minute   smallint    NOT NULL CHECK (daily_close_minute BETWEEN 0 AND 1440),
    daily_limit          integer     NOT NULL CHECK (daily_limit >= 1),
    valid_days_after_end integer     NOT NULL CHECK (valid_days_after_end >= 0),
    -- {"kind": "percent", "value": 50} or {"kind": "amount", "value": 5000, "currency": "KRW"}
    discount             jsonb       NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on >= starts_on),
    CHECK (daily_open_minute <> daily_close_minute)
);

CREATE TABLE coupons (
    coupon_id   uuid        PRIMARY KEY,
    event_id    uuid        NOT NULL REFERENCES events (id),
    user_id     text        NOT NULL,
    -- The event day the coupon belongs to (the local date its window opened on).
    day         date        NOT NULL,
    -- Order of arrival that day, from the Redis counter.
    seq         integer     NOT NULL CHECK (seq >= 1),
    issued_at   timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    redeemed_at timestamptz,
    -- When the writer stored it: issued_at to stored_at is the writer's lag.
    stored_at   timestamptz NOT NULL DEFAULT now(),
    -- At most one coupon per user per event day, and one holder per number.
    CONSTRAINT coupons_one_per_user_per_day UNIQUE (event_id, day, user_id),
    CONSTRAINT coupons_one_per_seq UNIQUE (event_id, day, seq)
);

-- GET /v1/users/{user_id}/coupons
CREATE INDEX coupons_by_user ON coupons (user_id, issued_at DESC);
