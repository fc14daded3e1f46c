//! Property tests for what reaches the HTTP layer from outside: bodies, query strings, tokens,
//! and the replies and records read back from Redis. Whatever the input: no panic, and a bad
//! one is a client error (400 / 401), never an internal one. Cases capped as in `domain`.

use actix_web::web;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::auth::JwtVerifier;
use super::count::CountQuery;
use super::coupons::RedeemRequest;
use super::error::{ApiError, TokenProblem};
use super::extract::parse_json;
use super::issue::IssueRequest;
use crate::config::{AuthMode, Settings};
use crate::domain::{EventId, NewEventRequest, UserId};
use crate::issuing::IssueOutcome;

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::from),
        Just(json!("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("event_id".to_owned()),
                    Just("user_id".to_owned()),
                    Just("name".to_owned()),
                    Just("discount".to_owned()),
                    Just("kind".to_owned()),
                    Just("value".to_owned()),
                    any::<String>(),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies: raw bytes, or JSON of any shape.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn client_error<T>(parsed: Result<T, ApiError>) -> Result<(), TestCaseError> {
    if let Err(e) = parsed {
        prop_assert!(matches!(e, ApiError::InvalidRequest(_)), "{e:?}");
    }
    Ok(())
}

fn verifier() -> JwtVerifier {
    let mut settings = Settings::from_env();
    settings.auth_mode = AuthMode::Jwt;
    settings.jwt_secret = Some("a-test-secret-of-at-least-32-bytes!!".into());
    settings.jwt_public_key_file = None;
    JwtVerifier::from_settings(&settings).unwrap().unwrap()
}

proptest! {
    #[test]
    fn bodies_never_panic_and_are_client_errors(bytes in body()) {
        client_error(parse_json::<IssueRequest>(&bytes))?;
        client_error(parse_json::<RedeemRequest>(&bytes))?;
        client_error(parse_json::<NewEventRequest>(&bytes))?;
    }

    #[test]
    fn count_queries_never_panic(query in any::<String>(), day in any::<String>()) {
        let _ = web::Query::<CountQuery>::from_query(&query);
        let encoded = format!("event_id={}&day={}", encode(&query), encode(&day));
        let _ = web::Query::<CountQuery>::from_query(&encoded);
    }

    #[test]
    fn tokens_never_verify_by_chance(
        raw in any::<String>(),
        parts in prop::collection::vec("[A-Za-z0-9_-]{0,64}", 3),
    ) {
        let verifier = verifier();
        prop_assert!(verifier.verify(&raw).is_err());
        let shaped = parts.join(".");
        let refused = verifier.verify(&shaped);
        prop_assert!(matches!(refused, Err(TokenProblem::Invalid | TokenProblem::Malformed)), "{refused:?}");
    }

    #[test]
    fn script_replies_never_panic(reply in prop::collection::vec(
        prop_oneof![
            Just("issued".to_owned()),
            Just("already_issued".to_owned()),
            Just("sold_out".to_owned()),
            Just("2026-05-01".to_owned()),
            "[0-9]{0,20}",
            any::<String>(),
        ],
        0..8,
    )) {
        let _ = IssueOutcome::from_reply(EventId::new(), &UserId::parse("alice").unwrap(), reply);
    }

    #[test]
    fn user_records_never_panic(raw in prop_oneof!["[0-9|a-f-]{0,60}", any::<String>()]) {
        let _ = crate::issuing::wire::UserRecord::parse(&raw);
    }
}

/// Percent-encodes every byte outside the unreserved set, as a client would.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
