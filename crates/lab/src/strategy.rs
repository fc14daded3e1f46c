//! The eight strategies, and what one of them decided for one request.

use std::fmt;

use serde::Serialize;

/// The eight strategies, in the order the comparison runs and prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    Naive,
    PgForUpdate,
    PgFunction,
    PgConditionalUpdate,
    PgOptimistic,
    Queue,
    RedisLock,
    RedisLua,
}

impl Strategy {
    pub const ALL: [Strategy; 8] = [
        Strategy::Naive,
        Strategy::PgForUpdate,
        Strategy::PgFunction,
        Strategy::PgConditionalUpdate,
        Strategy::PgOptimistic,
        Strategy::Queue,
        Strategy::RedisLock,
        Strategy::RedisLua,
    ];

    /// The name in URLs, tables and `lab.claims.strategy`.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::PgForUpdate => "pg-for-update",
            Strategy::PgFunction => "pg-function",
            Strategy::PgConditionalUpdate => "pg-conditional-update",
            Strategy::PgOptimistic => "pg-optimistic",
            Strategy::Queue => "queue",
            Strategy::RedisLock => "redis-lock",
            Strategy::RedisLua => "redis-lua",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Where its units and claims live: what "final quantity" and the store's claims mean.
    pub fn store(self) -> Store {
        match self {
            Strategy::RedisLua => Store::Redis,
            _ => Store::Postgres,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Postgres,
    Redis,
}

/// What a strategy decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Issued,
    AlreadyIssued,
    SoldOut,
    /// No such lab coupon (never set up).
    NotFound,
}

impl Outcome {
    /// The answer of `lab.give()` and `lua/lab_give.lua`.
    pub(crate) fn from_code(code: &str) -> Option<Self> {
        match code {
            "issued" => Some(Outcome::Issued),
            "already_issued" => Some(Outcome::AlreadyIssued),
            "sold_out" => Some(Outcome::SoldOut),
            "not_found" => Some(Outcome::NotFound),
            _ => None,
        }
    }
}

/// An outcome and how many tries it took (optimistic attempts, lock acquisitions tried): the
/// comparison adds them up to show where a strategy's time went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Given {
    pub outcome: Outcome,
    pub attempts: u32,
}

impl Given {
    pub(crate) fn first_try(outcome: Outcome) -> Self {
        Self { outcome, attempts: 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strategy_parses_from_its_name() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::parse(s.name()), Some(s));
        }
        assert_eq!(Strategy::parse("Naive"), None);
        assert_eq!(Strategy::parse(""), None);
    }
}
