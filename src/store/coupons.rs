//! Coupons in Postgres: the writer's batch insert, a user's coupons, and redemption.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{Coupon, CouponId, EventId, UserId};

/// A row of `coupons`, as the queries below select it (`query_as!` checks the columns against
/// these fields at build time).
struct CouponRow {
    coupon_id: Uuid,
    event_id: Uuid,
    user_id: String,
    day: NaiveDate,
    shard: i16,
    seq: i32,
    issued_at: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    redeemed_at: Option<DateTime<Utc>>,
}

impl TryFrom<CouponRow> for Coupon {
    type Error = StoreError;

    fn try_from(row: CouponRow) -> Result<Self, StoreError> {
        Ok(Coupon {
            coupon_id: row.coupon_id.into(),
            event_id: row.event_id.into(),
            user_id: UserId::parse(&row.user_id).map_err(|e| StoreError::BadRow(e.to_string()))?,
            day: row.day,
            shard: u16::try_from(row.shard)?,
            seq: u32::try_from(row.seq)?,
            issued_at: row.issued_at,
            valid_from: row.issued_at,
            valid_until: row.valid_until,
            redeemed_at: row.redeemed_at,
        })
    }
}

// The queries are checked against the schema at build time (`sqlx::query!`, with the data in
// `.sqlx/`, see `.cargo/config.toml`), so each names its columns in full: a macro takes one
// string literal.

/// Stores a batch in one statement and returns how many rows were new.
///
/// `ON CONFLICT DO NOTHING` makes it idempotent: the stream delivers at least once, so the same
/// coupon may arrive again after a crash between this commit and the acknowledgement; it is
/// then simply not inserted a second time. One `INSERT ... SELECT FROM UNNEST` of arrays costs
/// one round trip for the whole batch (measured faster here than COPY through sqlx 0.9). The
/// statement is prepared once per connection (sqlx's statement cache).
///
/// `db`: the pool, or a connection the caller holds (the writer keeps one while batches keep
/// coming, see `writer`).
#[tracing::instrument(skip_all, fields(batch = coupons.len()))]
pub async fn insert_batch<'e>(db: impl PgExecutor<'e>, coupons: &[Coupon]) -> Result<u64, StoreError> {
    if coupons.is_empty() {
        return Ok(0);
    }
    // One array per column, in the order of the UNNEST below.
    let coupon_ids: Vec<Uuid> = coupons.iter().map(|c| c.coupon_id.as_uuid()).collect();
    let event_ids: Vec<Uuid> = coupons.iter().map(|c| c.event_id.as_uuid()).collect();
    let user_ids: Vec<&str> = coupons.iter().map(|c| c.user_id.as_str()).collect();
    let days: Vec<NaiveDate> = coupons.iter().map(|c| c.day).collect();
    let shards: Vec<i16> = coupons.iter().map(|c| c.shard as i16).collect();
    let seqs: Vec<i32> = coupons.iter().map(|c| c.seq as i32).collect();
    let issued_at: Vec<DateTime<Utc>> = coupons.iter().map(|c| c.issued_at).collect();
    let valid_until: Vec<DateTime<Utc>> = coupons.iter().map(|c| c.valid_until).collect();
    let result = sqlx::query!(
        "INSERT INTO coupons (coupon_id, event_id, user_id, day, shard, seq, issued_at, valid_until) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::date[], $5::int2[], $6::int4[], \
                              $7::timestamptz[], $8::timestamptz[]) \
         ON CONFLICT DO NOTHING",
        &coupon_ids,
        &event_ids,
        &user_ids as &[&str],
        &days,
        &shards,
        &seqs,
        &issued_at,
        &valid_until,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// A user's coupons, newest first (at most 1,000).
#[tracing::instrument(skip(db))]
pub async fn for_user(db: &PgPool, user: &UserId) -> Result<Vec<Coupon>, StoreError> {
    let rows = sqlx::query_as!(
        CouponRow,
        "SELECT coupon_id, event_id, user_id, day, shard, seq, issued_at, valid_until, redeemed_at \
         FROM coupons WHERE user_id = $1 ORDER BY issued_at DESC LIMIT 1000",
        user.as_str()
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Coupon::try_from).collect()
}

/// An event's coupons from `first_day` on, to rebuild Redis from.
#[tracing::instrument(skip(db))]
pub async fn for_event_since(db: &PgPool, event: EventId, first_day: NaiveDate) -> Result<Vec<Coupon>, StoreError> {
    let rows = sqlx::query_as!(
        CouponRow,
        "SELECT coupon_id, event_id, user_id, day, shard, seq, issued_at, valid_until, redeemed_at \
         FROM coupons WHERE event_id = $1 AND day >= $2",
        event.as_uuid(),
        first_day
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Coupon::try_from).collect()
}

/// How many coupons of one event day are stored.
#[tracing::instrument(skip(db))]
pub async fn count_day(db: &PgPool, event: EventId, day: NaiveDate) -> Result<u64, StoreError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM coupons WHERE event_id = $1 AND day = $2"#,
        event.as_uuid(),
        day
    )
    .fetch_one(db)
    .await?;
    Ok(n as u64)
}

/// What became of a redemption.
#[derive(Debug)]
pub enum Redemption {
    Redeemed(Coupon),
    NotFound,
    NotOwner,
    AlreadyRedeemed(Coupon),
    Expired(Coupon),
}

/// Uses a coupon once, by its owner, before `valid_until` (by the Postgres clock). `valid_from` is
/// the issue instant, so a stored coupon is always past it; it is not compared across the Redis
/// and Postgres clocks, whose skew would refuse fresh coupons.
///
/// The conditional UPDATE is the whole guarantee: Postgres locks the row, so of two concurrent
/// redemptions exactly one finds `redeemed_at IS NULL`. Only when it changes nothing does a
/// second query find out why, to give the right answer.
#[tracing::instrument(skip(db))]
pub async fn redeem(db: &PgPool, coupon: CouponId, user: &UserId) -> Result<Redemption, StoreError> {
    let redeemed = sqlx::query_as!(
        CouponRow,
        "UPDATE coupons SET redeemed_at = now() \
         WHERE coupon_id = $1 AND user_id = $2 AND redeemed_at IS NULL AND now() < valid_until \
         RETURNING coupon_id, event_id, user_id, day, shard, seq, issued_at, valid_until, redeemed_at",
        coupon.as_uuid(),
        user.as_str()
    )
    .fetch_optional(db)
    .await?;
    if let Some(row) = redeemed {
        return Ok(Redemption::Redeemed(row.try_into()?));
    }
    let row = sqlx::query_as!(
        CouponRow,
        "SELECT coupon_id, event_id, user_id, day, shard, seq, issued_at, valid_until, redeemed_at \
         FROM coupons WHERE coupon_id = $1",
        coupon.as_uuid()
    )
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(Redemption::NotFound);
    };
    let found = Coupon::try_from(row)?;
    Ok(if found.user_id != *user {
        Redemption::NotOwner
    } else if found.redeemed_at.is_some() {
        Redemption::AlreadyRedeemed(found)
    } else {
        // Owned and unused, yet the update did not apply: past its validity.
        Redemption::Expired(found)
    })
}
