//! OpenAPI links: how one answer's ids feed the next request. A client (or schemathesis's
//! stateful phase) follows them from creating an event to issuing in it, counting it, and
//! redeeming and listing the coupons issued, always with real ids.
//!
//! Written as one table rather than on each handler so the whole flow reads in one place;
//! tests/api/openapi/mod.rs checks that every link names an operation and parameters that exist.

use serde_json::{Value, json};

/// (method, path, status) of the answer a link starts from; the link's name; the operation it
/// leads to (its `operationId`); its parameters; its request body (merged into generated data).
type LinkRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Value,
    Option<Value>,
);

fn table() -> Vec<LinkRow> {
    // An event's id, where an answer holds it; and links to everything that takes one.
    let to_event = |method, path, status, id: &'static str| -> Vec<LinkRow> {
        vec![
            (method, path, status, "ShowEvent", "show", json!({ "id": id }), None),
            (
                method,
                path,
                status,
                "SetDailyLimit",
                "set_limit",
                json!({ "id": id }),
                None,
            ),
            (
                method,
                path,
                status,
                "CountCoupons",
                "count",
                json!({ "event_id": id }),
                None,
            ),
            (
                method,
                path,
                status,
                "IssueCoupon",
                "issue",
                json!({}),
                Some(json!({ "event_id": id })),
            ),
        ]
    };
    // A coupon, where an answer holds one (at `at`); and links to redeeming it and to its
    // holder's list.
    let to_coupon = |method, path, status, at: &'static str| -> Vec<LinkRow> {
        let field = |name: &str| Value::String(format!("$response.body#{at}/{name}"));
        vec![
            (
                method,
                path,
                status,
                "RedeemCoupon",
                "redeem",
                json!({ "coupon_id": field("coupon_id") }),
                Some(json!({ "user_id": field("user_id") })),
            ),
            (
                method,
                path,
                status,
                "ListUserCoupons",
                "for_user",
                json!({ "user_id": field("user_id") }),
                None,
            ),
        ]
    };
    let mut rows = Vec::new();
    rows.extend(to_event("POST", "/v1/events", "201", "$response.body#/id"));
    rows.extend(to_event("GET", "/v1/events/{id}", "200", "$response.body#/id"));
    rows.extend(to_event("PATCH", "/v1/events/{id}", "200", "$response.body#/id"));
    rows.extend(to_event("GET", "/v1/coupon/count", "200", "$response.body#/event_id"));
    rows.extend(to_coupon("POST", "/v1/coupon/issue", "201", ""));
    // `already_issued` carries the coupon the user holds.
    rows.extend(to_coupon("POST", "/v1/coupon/issue", "409", "/coupon"));
    rows.extend(to_coupon("GET", "/v1/users/{user_id}/coupons", "200", "/coupons/0"));
    rows.extend(to_coupon("POST", "/v1/coupons/{coupon_id}/redeem", "200", ""));
    rows.push((
        "POST",
        "/v1/coupon/issue",
        "201",
        "CountTheDay",
        "count",
        json!({ "event_id": "$response.body#/event_id", "day": "$response.body#/day" }),
        None,
    ));
    rows
}

/// Adds the links to the document's responses, as OpenAPI spells them (`operationId`,
/// `requestBody`).
pub fn add(doc: &mut Value) {
    for (method, path, status, name, target, parameters, body) in table() {
        let pointer = format!(
            "/paths/{}/{}/responses/{status}",
            path.replace('~', "~0").replace('/', "~1"),
            method.to_lowercase()
        );
        // A response the document lacks gets no link (tests/api/openapi/mod.rs checks they all land).
        let Some(response) = doc.pointer_mut(&pointer) else {
            continue;
        };
        let mut link = json!({ "operationId": target, "parameters": parameters });
        if let Some(body) = body {
            link["requestBody"] = body;
        }
        response["links"][name] = link;
    }
}
