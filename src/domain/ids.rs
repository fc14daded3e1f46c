//! Identifiers that can only hold valid values. The HTTP layer parses outside input into these
//! once; everything behind it takes them as given.

use std::fmt;

use serde::Serialize;
use utoipa::openapi::{KnownFormat, ObjectBuilder, RefOr, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// An event (coupon campaign) id. Assigned by the service; a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        parse_uuid(s).map(Self)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for EventId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A coupon id. A UUIDv7, so that ids (and the primary-key index) follow issue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CouponId(Uuid);

impl CouponId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        parse_uuid(s).map(Self)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for CouponId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for CouponId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for CouponId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The one spelling [`parse_uuid`] takes, for the OpenAPI document: 8-4-4-4-12 hex digits,
/// either case.
pub const UUID_PATTERN: &str = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";
const UUID_LEN: usize = 36;

/// Only the canonical hyphenated form: one spelling per id keeps Redis keys and logs greppable.
fn parse_uuid(s: &str) -> Result<Uuid, String> {
    if s.len() != UUID_LEN {
        return Err("must be a UUID like 0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10".into());
    }
    Uuid::try_parse(s).map_err(|_| "must be a UUID like 0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10".into())
}

/// A user id: 1 to 64 characters of `A-Z a-z 0-9 . _ : @ -`.
///
/// The alphabet keeps ids safe to put into Redis hash fields, stream entries, logs and URLs
/// without escaping, and excludes the `|` that the issue script uses as a separator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 64;
    /// What a user id may hold besides ASCII letters and digits. `-` last: the OpenAPI pattern
    /// puts these into a character class as they are.
    pub const SYMBOLS: &str = "._:@-";

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(format!("must be 1 to {} characters long", Self::MAX_LEN));
        }
        if !s.bytes().all(is_user_id_byte) {
            return Err("may only contain A-Z a-z 0-9 . _ : @ -".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_user_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || UserId::SYMBOLS.as_bytes().contains(&b)
}

// The OpenAPI schemas of the ids, written by hand so that their bounds are the constants the
// parsers above use (utoipa's attributes take only literals): the document cannot drift from
// what the service accepts. tests/api/openapi/bounds.rs probes each bound.

fn uuid_schema(description: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(UUID_PATTERN))
        .min_length(Some(UUID_LEN))
        .max_length(Some(UUID_LEN))
        .description(Some(description))
        .examples([example])
        .into()
}

impl PartialSchema for EventId {
    fn schema() -> RefOr<Schema> {
        uuid_schema("An event id", "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10")
    }
}

impl ToSchema for EventId {}

impl PartialSchema for CouponId {
    fn schema() -> RefOr<Schema> {
        uuid_schema("A coupon id", "019a2b3c-4d5e-7f60-8a9b-0c1d2e3f4a5b")
    }
}

impl ToSchema for CouponId {}

impl PartialSchema for UserId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[A-Za-z0-9{}]+$", UserId::SYMBOLS)))
            .min_length(Some(1))
            .max_length(Some(UserId::MAX_LEN))
            .description(Some(format!(
                "A user id: 1 to {} characters of `A-Z a-z 0-9 {}`",
                UserId::MAX_LEN,
                UserId::SYMBOLS.chars().map(String::from).collect::<Vec<_>>().join(" ")
            )))
            .examples(["alice"])
            .into()
    }
}

impl ToSchema for UserId {}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_accept_the_documented_alphabet() {
        for ok in ["a", "alice", "user-1", "u.s_e:r@x", &"x".repeat(64)] {
            assert!(UserId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn user_ids_reject_everything_else() {
        for bad in ["", &"x".repeat(65), "a b", "a|b", "ü", "a/b", "a\n", "\"", "a%20"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uuids_only_in_canonical_form() {
        let id = "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10";
        assert_eq!(EventId::parse(id).unwrap().to_string(), id);
        for bad in [
            "",
            "0b7e0c8e2f4a4e7b9a513c1f6a2d9e10",
            "{0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10}",
            "0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e1g",
            "urn:uuid:0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d",
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
