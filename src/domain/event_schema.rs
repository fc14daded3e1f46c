//! The OpenAPI schemas of an event definition's fields, built from the constants that
//! `NewEvent::check` and the newtypes validate with, so the document and the service cannot
//! drift apart (utoipa's attributes take only literals). tests/api/openapi/bounds.rs probes each bound:
//! a value at it is accepted, one past it refused.

use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};

use super::event::{MAX_DAILY_LIMIT, MAX_NAME_LEN, MAX_PERCENT, MAX_VALID_DAYS_AFTER_END, YEARS};
use super::shards::MAX_SHARDS;

/// What Rust's `str::trim` drops (Unicode White_Space), spelled for a regex character class that
/// ECMAScript and Python read alike.
const WHITE_SPACE: &str = r"\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

fn integer(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
}

/// Not blank once trimmed, and no NUL anywhere (Postgres text cannot hold it).
pub fn name() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_LEN))
        .pattern(Some(format!(r"^[^\x00]*[^\x00{WHITE_SPACE}][^\x00]*$")))
        .examples(["Half price drop"])
        .build()
}

/// Exactly the names chrono-tz parses (its FromStr is case-sensitive).
pub fn timezone() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
        .examples(["Asia/Seoul"])
        .build()
}

/// "YYYY-MM-DD" within [`YEARS`] (2000 to 2099: the pattern spells the century).
pub fn date() -> Object {
    debug_assert!(
        *YEARS.start() == 2000 && *YEARS.end() == 2099,
        "the pattern below spells 20xx"
    );
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some("^20[0-9]{2}-[0-9]{2}-[0-9]{2}$"))
        .min_length(Some(10))
        .max_length(Some(10))
        .examples(["2026-05-01"])
        .build()
}

pub fn daily_limit() -> Object {
    integer(1, MAX_DAILY_LIMIT).examples([100]).build()
}

pub fn valid_days_after_end() -> Object {
    integer(0, MAX_VALID_DAYS_AFTER_END).examples([30]).build()
}

/// Null is accepted and means 1, as an absent field does.
pub fn shards() -> Object {
    integer(1, i64::from(MAX_SHARDS))
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .examples([1])
        .build()
}

pub fn percent() -> Object {
    integer(1, MAX_PERCENT).examples([50]).build()
}

pub fn amount() -> Object {
    integer(1, i64::MAX).examples([5000]).build()
}

/// Three capital letters, as ISO 4217 codes are.
pub fn currency() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Z]{3}$"))
        .min_length(Some(3))
        .max_length(Some(3))
        .examples(["KRW"])
        .build()
}
