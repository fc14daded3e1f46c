//! What a store function can fail with, told apart once, here, so that callers branch on a
//! variant instead of digging through an error chain: the HTTP layer answers an outage 503 and
//! a bug 500 (`From<StoreError> for ApiError`), the writer sets aside a coupon Postgres refuses.

/// A failed query. The variants that wrap sqlx's error show its text unchanged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No pooled connection came free within the pool's acquire timeout: Postgres is down,
    /// slow, or every connection is busy.
    #[error("pool timed out while waiting for an open connection")]
    PoolTimedOut,
    /// The pool has been closed: the process is stopping.
    #[error("attempted to acquire a connection on a closed pool")]
    PoolClosed,
    /// The connection failed under the query (network, TLS, Postgres restarting).
    #[error(transparent)]
    Unreachable(sqlx::Error),
    /// Postgres refused the data itself: a data exception (SQLSTATE class 22) or an integrity
    /// constraint violation (class 23). Sending it again will not change the answer.
    #[error(transparent)]
    Refused(sqlx::Error),
    /// A stored row that breaks a rule of the domain (a window out of range, an unknown
    /// timezone): the database was changed behind the service's back.
    #[error("{0}")]
    BadRow(String),
    /// Any other failure of a query: a bug, not an outage.
    #[error(transparent)]
    Other(sqlx::Error),
}

impl StoreError {
    /// Postgres is down or overloaded (a 503, retried), as opposed to a query that is wrong.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::PoolTimedOut | Self::PoolClosed | Self::Unreachable(_) => true,
            Self::Refused(_) | Self::BadRow(_) | Self::Other(_) => false,
        }
    }

    /// Why Postgres refused the data: SQLSTATE and constraint, enough for an operator, for the
    /// dead-letter stream and the log.
    pub fn refusal_reason(&self) -> String {
        match self {
            Self::Refused(sqlx::Error::Database(e)) => format!(
                "postgres refused it (sqlstate {}, constraint {}): {}",
                e.code().unwrap_or_default(),
                e.constraint().unwrap_or("-"),
                e.message()
            ),
            other => other.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => Self::PoolTimedOut,
            sqlx::Error::PoolClosed => Self::PoolClosed,
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) => Self::Unreachable(e),
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")) => {
                Self::Refused(e)
            }
            _ => Self::Other(e),
        }
    }
}

/// A stored value out of the range of the type the domain gives it.
impl From<std::num::TryFromIntError> for StoreError {
    fn from(e: std::num::TryFromIntError) -> Self {
        Self::BadRow(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_told_from_a_bug() {
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::from(sqlx::Error::PoolClosed).is_unavailable());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::from(sqlx::Error::Io(reset)).is_unavailable());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::BadRow("event x: stored window out of range".into()).is_unavailable());
    }

    #[test]
    fn the_pool_errors_read_as_sqlx_wrote_them() {
        let timed_out = sqlx::Error::PoolTimedOut.to_string();
        assert_eq!(StoreError::from(sqlx::Error::PoolTimedOut).to_string(), timed_out);
        let closed = sqlx::Error::PoolClosed.to_string();
        assert_eq!(StoreError::from(sqlx::Error::PoolClosed).to_string(), closed);
    }
}
