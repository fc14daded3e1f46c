//! The document is exactly as strict as the service: for each bound the document states, a
//! value at it is accepted and one past it refused (400), so neither can drift from the other.
//! Patterns are checked the same way, character by character.

use coupon_issuer::domain::UserId;
use regex::Regex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::document;
use crate::helpers::{ADMIN_TOKEN, TestApp, event_body, spawn_app, today_utc};

/// A definition that is valid as it is, with one field (a JSON pointer) set to `value`.
fn event_with(pointer: &str, value: Value) -> Value {
    let mut body = event_body("UTC", today_utc(), today_utc(), ("00:00", "24:00"), 100);
    let slot = pointer.split('/').skip(1).fold(&mut body, |at, key| &mut at[key]);
    *slot = value;
    body
}

async fn create(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    let response = app.post_event(body).await;
    (response.status(), response.json().await.unwrap())
}

/// `value` for the field at `pointer` is answered `expected`.
async fn expect(app: &TestApp, pointer: &str, value: Value, expected: StatusCode) {
    let (status, body) = create(app, &event_with(pointer, value.clone())).await;
    assert_eq!(status, expected, "{pointer} = {value}: {body}");
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

fn int(schema: &Value, key: &str) -> i64 {
    schema[key].as_i64().unwrap_or_else(|| panic!("{key} in {schema}"))
}

/// The integer fields of an event: at each documented bound accepted, one past it refused.
#[tokio::test]
async fn every_documented_number_bound_is_where_the_service_draws_it() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let fields = &schema(&doc, "NewEventRequest")["properties"];
    for field in ["daily_limit", "valid_days_after_end", "shards"] {
        let bounds = &fields[field];
        let pointer = format!("/{field}");
        let (min, max) = (int(bounds, "minimum"), int(bounds, "maximum"));
        expect(&app, &pointer, json!(min), StatusCode::CREATED).await;
        expect(&app, &pointer, json!(min - 1), StatusCode::BAD_REQUEST).await;
        expect(&app, &pointer, json!(max), StatusCode::CREATED).await;
        expect(&app, &pointer, json!(max + 1), StatusCode::BAD_REQUEST).await;
        // JSON Schema's `integer` takes a number with a zero fraction; so does the service.
        expect(&app, &pointer, json!(min as f64), StatusCode::CREATED).await;
        expect(&app, &pointer, json!(min as f64 + 0.5), StatusCode::BAD_REQUEST).await;
    }
    assert_eq!(fields["shards"]["type"], json!(["integer", "null"]));
    expect(&app, "/shards", Value::Null, StatusCode::CREATED).await;
    for field in ["daily_limit", "valid_days_after_end", "name", "timezone"] {
        expect(&app, &format!("/{field}"), Value::Null, StatusCode::BAD_REQUEST).await;
    }

    // The discount's variants.
    let variants = schema(&doc, "Discount")["oneOf"].as_array().unwrap();
    let variant = |kind: &str| {
        variants
            .iter()
            .find(|v| v["properties"]["kind"]["enum"][0] == kind)
            .unwrap_or_else(|| panic!("{kind}"))
    };
    let percent = &variant("percent")["properties"]["value"];
    let max = int(percent, "maximum");
    expect(&app, "/discount/value", json!(max), StatusCode::CREATED).await;
    expect(&app, "/discount/value", json!(max + 1), StatusCode::BAD_REQUEST).await;
    expect(
        &app,
        "/discount/value",
        json!(int(percent, "minimum") - 1),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let amount = &variant("amount")["properties"];
    let min = int(&amount["value"], "minimum");
    let pattern = Regex::new(amount["currency"]["pattern"].as_str().unwrap()).unwrap();
    for (value, currency) in [(min, "KRW"), (min - 1, "KRW"), (min, "krw"), (min, "KRWW"), (min, "KR")] {
        let discount = json!({ "kind": "amount", "value": value, "currency": currency });
        let expected = if value >= min && pattern.is_match(currency) {
            StatusCode::CREATED
        } else {
            StatusCode::BAD_REQUEST
        };
        expect(&app, "/discount", discount, expected).await;
    }

    // PATCH takes the same daily limit.
    let limit = &schema(&doc, "LimitChange")["properties"]["daily_limit"];
    assert_eq!(limit, &fields["daily_limit"]);
    let event = app.open_event(10).await;
    for (value, expected) in [
        (int(limit, "maximum"), StatusCode::OK),
        (int(limit, "maximum") + 1, StatusCode::BAD_REQUEST),
    ] {
        let response = app
            .client
            .patch(app.url(&format!("/v1/events/{event}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "daily_limit": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "daily_limit {value}");
    }
}

/// The string fields of an event: lengths, patterns and the time zone enum.
#[tokio::test]
async fn every_documented_string_rule_is_the_services() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let fields = &schema(&doc, "NewEventRequest")["properties"];

    let name = &fields["name"];
    let max = int(name, "maxLength") as usize;
    let pattern = Regex::new(name["pattern"].as_str().unwrap()).unwrap();
    for candidate in [
        "n".repeat(max),
        "n".repeat(max + 1),
        " ".repeat(max),
        "n".into(),
        String::new(),
        " n\t".into(),
        "\u{3000}".into(),
        "a\0b".into(),
    ] {
        let documented = (1..=max).contains(&candidate.chars().count()) && pattern.is_match(&candidate);
        let expected = if documented {
            StatusCode::CREATED
        } else {
            StatusCode::BAD_REQUEST
        };
        expect(&app, "/name", json!(candidate), expected).await;
    }

    let zones = fields["timezone"]["enum"].as_array().unwrap();
    assert_eq!(zones.len(), chrono_tz::TZ_VARIANTS.len());
    for zone in [&zones[0], &zones[zones.len() - 1], &json!("Asia/Seoul"), &json!("UTC")] {
        assert!(zones.contains(zone), "{zone}");
        expect(&app, "/timezone", zone.clone(), StatusCode::CREATED).await;
    }
    for zone in ["asia/seoul", "Mars/Olympus", ""] {
        assert!(!zones.contains(&json!(zone)));
        expect(&app, "/timezone", json!(zone), StatusCode::BAD_REQUEST).await;
    }

    // Dates: the pattern spells the years the service takes.
    let date = Regex::new(fields["starts_on"]["pattern"].as_str().unwrap()).unwrap();
    for (day, ok) in [
        ("2000-01-01", true),
        ("2099-12-31", true),
        ("1999-12-31", false),
        ("2100-01-01", false),
    ] {
        assert_eq!(date.is_match(day), ok, "{day}");
        let mut body = event_with("/starts_on", json!(day));
        body["ends_on"] = json!(day);
        let expected = if ok {
            StatusCode::CREATED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(create(&app, &body).await.0, expected, "{day}");
    }
    expect(&app, "/starts_on", json!("2026-02-30"), StatusCode::BAD_REQUEST).await;

    // Times: every minute of the day, and what is one past.
    for field in ["daily_open", "daily_close"] {
        let pattern = Regex::new(fields[field]["pattern"].as_str().unwrap()).unwrap();
        for time in ["00:00", "23:59", "24:00", "24:01", "9:00", "12:60", "25:00"] {
            // 00:00 to 24:00 is the valid window; only the times themselves are probed here.
            let other = if field == "daily_open" {
                "/daily_close"
            } else {
                "/daily_open"
            };
            let mut body = event_with(&format!("/{field}"), json!(time));
            *body.pointer_mut(other).unwrap() = json!("12:30");
            let expected = if pattern.is_match(time) {
                StatusCode::CREATED
            } else {
                StatusCode::BAD_REQUEST
            };
            assert_eq!(create(&app, &body).await.0, expected, "{field} {time}");
        }
    }

    // Each field valid, together not: 422, which no schema can rule out.
    let mut body = event_with("/starts_on", json!("2026-05-02"));
    body["ends_on"] = json!("2026-05-01");
    let (status, answer) = create(&app, &body).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("invalid_combination"))
    );
    let mut body = event_with("/shards", json!(64));
    body["daily_limit"] = json!(63);
    assert_eq!(create(&app, &body).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

/// User ids in bodies and paths: the documented length and alphabet, no null, and required in
/// `AUTH_MODE=body`; event ids in the one UUID spelling.
#[tokio::test]
async fn ids_are_as_strict_as_documented() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let user = schema(&doc, "UserId");
    assert_eq!(int(user, "maxLength") as usize, UserId::MAX_LEN);
    assert_eq!(int(user, "minLength"), 1);
    let pattern = Regex::new(user["pattern"].as_str().unwrap()).unwrap();
    let event = app.open_event(1_000_000).await;
    let issue = |body: Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/coupon/issue"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };

    // Every printable ASCII character and a few others, in a user id of its own.
    let mut candidates: Vec<String> = (0x20u8..0x7f).map(|b| format!("u{}{b}", b as char)).collect();
    candidates.extend(["u\n", "ü", "", "u\u{0}"].map(String::from));
    candidates.push("x".repeat(UserId::MAX_LEN));
    candidates.push("x".repeat(UserId::MAX_LEN + 1));
    for candidate in candidates {
        let documented = (1..=UserId::MAX_LEN).contains(&candidate.chars().count()) && pattern.is_match(&candidate);
        let status = issue(json!({ "event_id": event, "user_id": candidate })).await;
        if documented {
            assert!(
                status.is_success() || status == StatusCode::CONFLICT,
                "{candidate:?}: {status}"
            );
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{candidate:?}");
        }
    }
    let required = schema(&doc, "IssueRequest")["required"].as_array().unwrap().clone();
    assert!(
        required.contains(&json!("user_id")),
        "AUTH_MODE=body: user_id is required"
    );
    assert_eq!(
        issue(json!({ "event_id": event, "user_id": null })).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(issue(json!({ "event_id": event })).await, StatusCode::BAD_REQUEST);

    // In a path, the same rules.
    for (id, expected) in [
        ("x".repeat(UserId::MAX_LEN), StatusCode::OK),
        ("x".repeat(UserId::MAX_LEN + 1), StatusCode::BAD_REQUEST),
        ("a%7Cb".into(), StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = app.get_json(&format!("/v1/users/{id}/coupons")).await;
        assert_eq!(status, expected, "{id}: {body}");
    }

    // Event ids: the documented pattern, either case.
    let uuid = Regex::new(schema(&doc, "EventId")["pattern"].as_str().unwrap()).unwrap();
    let upper = event.to_uppercase();
    for (id, found) in [
        (event.as_str(), true),
        (upper.as_str(), true),
        (&event[1..], false),
        ("{0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10}", false),
    ] {
        assert_eq!(uuid.is_match(id), found, "{id}");
        let (status, body) = app.get_json(&format!("/v1/coupon/count?event_id={id}")).await;
        let expected = if found { StatusCode::OK } else { StatusCode::BAD_REQUEST };
        assert_eq!(status, expected, "{id}: {body}");
    }
    // Query parameters the document does not list are refused, as unknown body fields are.
    let (status, _) = app
        .get_json(&format!("/v1/coupon/count?event_id={event}&dya=2026-05-01"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
