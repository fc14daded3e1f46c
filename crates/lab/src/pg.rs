//! The Postgres strategies. Each function is one way to apply the lab's rule; the SQL is inline
//! because each is a few statements whose order *is* the strategy.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::LabError;
use crate::lab::PgReport;
use crate::strategy::{Given, Outcome, Strategy};

/// Read the quantity and whether the user holds one, then write `quantity = <read> - 1` and the
/// claim, in separate autocommitted statements, with `delay` in between.
///
/// On its own (`naive`) this is the textbook race: two requests both read 99, both write 98 (a
/// lost update) and both insert a claim, so more than N are handed out and a user's two clicks
/// can both win. `queue` and `redis-lock` run this very function, but only ever one at a time
/// per coupon, and that alone makes it correct.
#[tracing::instrument(skip_all, fields(strategy = %strategy))]
pub async fn read_then_write(
    db: &PgPool,
    strategy: Strategy,
    coupon: Uuid,
    user: &str,
    delay: Duration,
) -> Result<Outcome, LabError> {
    let read: Option<(i32, bool)> = sqlx::query_as(
        "SELECT c.quantity, EXISTS (SELECT 1 FROM lab.claims l WHERE l.coupon_id = c.id AND l.user_id = $2) \
         FROM lab.coupons c WHERE c.id = $1",
    )
    .bind(coupon)
    .bind(user)
    .fetch_optional(db)
    .await?;
    let Some((quantity, held)) = read else {
        return Ok(Outcome::NotFound);
    };
    if held {
        return Ok(Outcome::AlreadyIssued);
    }
    if quantity < 1 {
        return Ok(Outcome::SoldOut);
    }
    if !delay.is_zero() {
        // The race window, widened on purpose: everyone who read meanwhile read the same value.
        tokio::time::sleep(delay).await;
    }
    sqlx::query("UPDATE lab.coupons SET quantity = $2 WHERE id = $1")
        .bind(coupon)
        .bind(quantity - 1)
        .execute(db)
        .await?;
    insert_claim(db, coupon, user, strategy).await?;
    Ok(Outcome::Issued)
}

/// One transaction: `SELECT ... FOR UPDATE` takes the coupon's row lock, then the user check,
/// the decrement and the claim run while every other give of this coupon waits for the lock.
pub async fn for_update(db: &PgPool, coupon: Uuid, user: &str) -> Result<Outcome, LabError> {
    let mut tx = db.begin().await?;
    let quantity: Option<i32> = sqlx::query_scalar("SELECT quantity FROM lab.coupons WHERE id = $1 FOR UPDATE")
        .bind(coupon)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(quantity) = quantity else {
        return Ok(Outcome::NotFound);
    };
    // A separate statement, so that it reads a snapshot taken after the lock was granted (READ
    // COMMITTED): it sees the claim of whoever held the lock before us. Inside the locking
    // SELECT it would read the snapshot from before the wait and could miss that claim.
    let held: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM lab.claims WHERE coupon_id = $1 AND user_id = $2)")
            .bind(coupon)
            .bind(user)
            .fetch_one(&mut *tx)
            .await?;
    if held {
        return Ok(Outcome::AlreadyIssued); // the rollback (on drop) releases the lock
    }
    if quantity < 1 {
        return Ok(Outcome::SoldOut);
    }
    sqlx::query("UPDATE lab.coupons SET quantity = quantity - 1, version = version + 1 WHERE id = $1")
        .bind(coupon)
        .execute(&mut *tx)
        .await?;
    insert_claim(&mut *tx, coupon, user, Strategy::PgForUpdate).await?;
    tx.commit().await?;
    Ok(Outcome::Issued)
}

/// The same steps inside `lab.give()` (crates/lab/migrations/20261121060000_lab.sql): one round trip, so
/// the row lock is held for the function's run time instead of five network round trips.
///
/// A refusal comes back as an error with SQLSTATE `LAB01` (already issued) or `LAB02` (sold
/// out): raising rolls the transaction back instead of committing a row lock (see the
/// function's header for why that matters).
pub async fn function(db: &PgPool, coupon: Uuid, user: &str) -> Result<Outcome, LabError> {
    let answer = sqlx::query_scalar::<_, String>("SELECT lab.give($1, $2)")
        .bind(coupon)
        .bind(user)
        .fetch_one(db)
        .await;
    let code = match answer {
        Ok(code) => code,
        Err(e) => {
            let state = e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
            return match state.as_deref() {
                Some("LAB01") => Ok(Outcome::AlreadyIssued),
                Some("LAB02") => Ok(Outcome::SoldOut),
                _ => Err(e.into()),
            };
        }
    };
    Outcome::from_code(&code)
        .ok_or_else(|| LabError::Postgres(sqlx::Error::Protocol(format!("lab.give returned {code}"))))
}

/// One transaction: claim first (the partial unique index turns a second claim by the same user
/// into a no-op), then `UPDATE ... WHERE quantity > 0`, which Postgres applies atomically to the
/// latest row version. The hot row is locked only from that UPDATE to the commit.
pub async fn conditional_update(db: &PgPool, coupon: Uuid, user: &str) -> Result<Outcome, LabError> {
    let mut tx = db.begin().await?;
    let claimed = match claim_unless_held(&mut tx, coupon, user, Strategy::PgConditionalUpdate).await {
        Err(e) if is_foreign_key_violation(&e) => return Ok(Outcome::NotFound),
        other => other?,
    };
    if !claimed {
        return Ok(Outcome::AlreadyIssued);
    }
    let taken = sqlx::query(
        "UPDATE lab.coupons SET quantity = quantity - 1, version = version + 1 WHERE id = $1 AND quantity > 0",
    )
    .bind(coupon)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if taken == 0 {
        return Ok(Outcome::SoldOut); // the rollback takes the claim back
    }
    tx.commit().await?;
    Ok(Outcome::Issued)
}

/// Read `(quantity, version)` without a lock; write only if the version is still the one read;
/// otherwise someone got in between: read again. No lock is waited for, but under contention
/// most attempts lose and are retried. "One per user" rests on the partial unique index.
pub async fn optimistic(db: &PgPool, coupon: Uuid, user: &str, max_attempts: u32) -> Result<Given, LabError> {
    for attempt in 1..=max_attempts {
        let given = |outcome| {
            Ok(Given {
                outcome,
                attempts: attempt,
            })
        };
        let read: Option<(i32, i64, bool)> = sqlx::query_as(
            "SELECT c.quantity, c.version, \
                    EXISTS (SELECT 1 FROM lab.claims l WHERE l.coupon_id = c.id AND l.user_id = $2) \
             FROM lab.coupons c WHERE c.id = $1",
        )
        .bind(coupon)
        .bind(user)
        .fetch_optional(db)
        .await?;
        let Some((quantity, version, held)) = read else {
            return given(Outcome::NotFound);
        };
        if held {
            return given(Outcome::AlreadyIssued);
        }
        if quantity < 1 {
            return given(Outcome::SoldOut);
        }
        let mut tx = db.begin().await?;
        let won =
            sqlx::query("UPDATE lab.coupons SET quantity = $3, version = version + 1 WHERE id = $1 AND version = $2")
                .bind(coupon)
                .bind(version)
                .bind(quantity - 1)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if won == 0 {
            continue; // lost the race: the rollback is implicit, read again
        }
        if !claim_unless_held(&mut tx, coupon, user, Strategy::PgOptimistic).await? {
            return given(Outcome::AlreadyIssued); // our own other request won; undo the decrement
        }
        tx.commit().await?;
        return given(Outcome::Issued);
    }
    Err(LabError::Busy("too many concurrent updates of this coupon"))
}

/// Sets the coupon up with `quantity` units and no claims.
pub async fn reset(db: &PgPool, coupon: Uuid, quantity: i32) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO lab.coupons (id, initial, quantity) VALUES ($1, $2, $2) \
         ON CONFLICT (id) DO UPDATE SET initial = $2, quantity = $2, version = 0",
    )
    .bind(coupon)
    .bind(quantity)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM lab.claims WHERE coupon_id = $1")
        .bind(coupon)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// `(initial, state)`, or `None` when the coupon was never set up.
pub async fn report(db: &PgPool, coupon: Uuid) -> Result<Option<(i32, PgReport)>, sqlx::Error> {
    let row: Option<(i32, i32, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.initial, c.quantity, c.version, \
                (SELECT count(*) FROM lab.claims WHERE coupon_id = c.id), \
                (SELECT count(DISTINCT user_id) FROM lab.claims WHERE coupon_id = c.id), \
                (SELECT count(*) FROM (SELECT 1 FROM lab.claims WHERE coupon_id = c.id \
                                       GROUP BY user_id HAVING count(*) > 1) AS twice) \
         FROM lab.coupons c WHERE c.id = $1",
    )
    .bind(coupon)
    .fetch_optional(db)
    .await?;
    Ok(
        row.map(|(initial, quantity, version, claims, users, users_with_two_or_more)| {
            (
                initial,
                PgReport {
                    quantity,
                    version,
                    claims,
                    users,
                    users_with_two_or_more,
                },
            )
        }),
    )
}

async fn insert_claim<'e>(
    db: impl sqlx::PgExecutor<'e>,
    coupon: Uuid,
    user: &str,
    strategy: Strategy,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO lab.claims (coupon_id, user_id, strategy) VALUES ($1, $2, $3)")
        .bind(coupon)
        .bind(user)
        .bind(strategy.name())
        .execute(db)
        .await
        .map(drop)
}

/// Inserts the claim unless the user already holds one; `false` when they do. Relies on the
/// partial unique index `claims_one_per_user`, whose predicate the conflict target repeats.
async fn claim_unless_held(
    tx: &mut sqlx::PgConnection,
    coupon: Uuid,
    user: &str,
    strategy: Strategy,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO lab.claims (coupon_id, user_id, strategy) VALUES ($1, $2, $3) \
         ON CONFLICT (coupon_id, user_id) WHERE strategy IN ('pg-conditional-update', 'pg-optimistic') \
         DO NOTHING",
    )
    .bind(coupon)
    .bind(user)
    .bind(strategy.name())
    .execute(tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_foreign_key_violation())
}
