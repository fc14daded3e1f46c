//! The window, as the script sees it by the Redis clock: before the event, before today's
//! window, after it, after the event; and the daily refresh.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Duration as Days;
use coupon_issuer::domain::{DayWindow, EventId};
use coupon_issuer::issuing::publish_windows;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, event_body, issue_all, noon_zone, spawn_app, today_utc, users};

/// An event shape, and what the script and the count say of it now.
struct Case {
    window: (&'static str, &'static str),
    /// First and last day of the event, as offsets from the local today.
    days: (i64, i64),
    issue: &'static str,
    status: &'static str,
}

const fn case(
    window: (&'static str, &'static str),
    first: i64,
    last: i64,
    issue: &'static str,
    status: &'static str,
) -> Case {
    Case {
        window,
        days: (first, last),
        issue,
        status,
    }
}

const CASES: [Case; 5] = [
    case(("14:00", "23:00"), 1, 3, "not_open", "not_open"), // the event starts tomorrow
    case(("14:00", "23:00"), 0, 3, "not_open", "not_open"), // today's window opens later
    case(("01:00", "11:00"), 0, 3, "closed", "closed"),     // today's window has closed
    case(("01:00", "11:00"), -3, -1, "closed", "ended"),    // the event ended yesterday
    case(("10:00", "15:00"), -1, 1, "issued", "open"),      // open right now
];

#[tokio::test]
async fn the_script_answers_each_side_of_the_window() {
    let app = spawn_app().await;
    let (zone, today) = noon_zone();
    for Case {
        window,
        days: (first, last),
        issue: code,
        status,
    } in CASES
    {
        let body = event_body(&zone, today + Days::days(first), today + Days::days(last), window, 10);
        let event = app.create_event(body).await;

        let response = app.issue(&event, "alice").await;
        let answer: Value = response.json().await.unwrap();
        let got = if answer["coupon_id"].is_string() {
            "issued"
        } else {
            answer["error"]["code"].as_str().unwrap()
        };
        assert_eq!(got, code, "{window:?} {first}..{last}: {answer}");
        if code != "issued" {
            assert_eq!(answer["error"]["code"], code);
        }
        let count = app.count(&event).await;
        assert_eq!(count["status"], status, "{window:?} {first}..{last}: {count}");
        assert_eq!(count["day"], today.to_string());
    }
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let app = spawn_app().await;
    let (zone, today) = noon_zone();
    let event = app
        .create_event(event_body(&zone, today, today + Days::days(1), ("14:00", "23:00"), 10))
        .await;
    let users: Vec<String> = users("early", 200);

    let answers = issue_all(&app, &event, &users).await;

    assert!(
        answers
            .iter()
            .all(|(_, s, b)| *s == StatusCode::FORBIDDEN && b["error"]["code"] == "not_open")
    );
    let count = app.count(&event).await;
    assert_eq!(
        (count["issued"].as_u64(), count["remaining"].as_u64()),
        (Some(0), Some(10))
    );
    let mut redis = app.issuer.connection();
    let stream_len: u64 = redis::cmd("XLEN")
        .arg(app.keys.stream(EventId::parse(&event).unwrap()))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(stream_len, 0);
}

/// Two consecutive days, each with a window a few seconds long, published through the same
/// function that publishes real events: the count starts again on the second day, for
/// everyone, and a user who got yesterday's coupon gets today's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daily_limit_refreshes_on_the_next_day() {
    let app = spawn_app().await;
    let (event, windows) = two_short_days(&app, 20, 3).await;
    let (today, tomorrow) = (windows[0].day, windows[1].day);

    // Day one: 100 users race for 20 coupons, "regular" among them.
    let mut users: Vec<String> = users("u", 99);
    users.push("regular".into());
    let day_one = issue_all(&app, &event, &users).await;
    let winners_one: HashSet<String> = day_one
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::CREATED)
        .map(|(u, _, _)| u.clone())
        .collect();
    assert_eq!(winners_one.len(), 20);
    assert!(
        day_one
            .iter()
            .filter(|(_, s, _)| *s == StatusCode::CREATED)
            .all(|(_, _, b)| b["day"] == today.to_string())
    );

    wait_until(&app, windows[1].open).await;

    // Day two: the same users race again; day one's winners may win again.
    let day_two = issue_all(&app, &event, &users).await;
    let issued_two: Vec<_> = day_two.iter().filter(|(_, s, _)| *s == StatusCode::CREATED).collect();
    assert_eq!(issued_two.len(), 20, "a fresh limit");
    assert!(issued_two.iter().all(|(_, _, b)| b["day"] == tomorrow.to_string()));
    let mut seqs: Vec<u64> = issued_two.iter().map(|(_, _, b)| b["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "numbering starts again");

    let stored = app.wait_for_stored(&event, 40, Duration::from_secs(10)).await;
    assert_eq!(stored.len(), 40, "both days' coupons are stored");
}

#[tokio::test]
async fn a_user_gets_one_coupon_per_day_across_days() {
    let app = spawn_app().await;
    let (event, windows) = two_short_days(&app, 5, 2).await;
    let tomorrow = windows[1].day;

    let first = app.issue(&event, "alice").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(app.issue(&event, "alice").await.status(), StatusCode::CONFLICT);
    wait_until(&app, windows[1].open).await;
    let next_day = app.issue(&event, "alice").await;
    assert_eq!(next_day.status(), StatusCode::CREATED);
    let body: Value = next_day.json().await.unwrap();
    assert_eq!(
        (body["day"].as_str(), body["seq"].as_u64()),
        (Some(tomorrow.to_string().as_str()), Some(1))
    );
}

/// An event whose today's window is open now and closes in `first_day_secs` seconds, when
/// tomorrow's opens (for a minute). Published through the same function as real windows, so the
/// script sees a day roll over without waiting for midnight.
async fn two_short_days(app: &TestApp, daily_limit: u32, first_day_secs: i32) -> (String, [DayWindow; 2]) {
    let (zone, today) = noon_zone();
    let tomorrow = today + Days::days(1);
    let event = app
        .create_event(event_body(&zone, today, tomorrow, ("10:00", "15:00"), daily_limit))
        .await;
    let now = app.issuer.now().await.unwrap();
    let s = chrono::Duration::seconds(1);
    let rollover = now + s * first_day_secs;
    let windows = [
        DayWindow {
            day: today,
            open: now - s,
            close: rollover,
            day_start: now - s * 10,
        },
        DayWindow {
            day: tomorrow,
            open: rollover,
            close: rollover + s * 60,
            day_start: rollover,
        },
    ];
    let event_id = EventId::parse(&event).unwrap();
    publish_windows(&mut app.issuer.connection(), &app.keys, event_id, &windows)
        .await
        .unwrap();
    (event, windows)
}

/// Waits until the Redis clock (the one the script decides by) reaches `instant`.
async fn wait_until(app: &TestApp, instant: chrono::DateTime<chrono::Utc>) {
    while app.issuer.now().await.unwrap() < instant {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The service tells the script which day's keys to use, by its own clock; the script decides by
/// the Redis clock. A guess that is a day off (clocks apart across midnight) is answered
/// `other_day`, and the call made again with the right keys: the same coupon as a right guess.
#[tokio::test]
async fn a_wrong_day_guess_costs_a_second_call_not_a_wrong_answer() {
    use coupon_issuer::domain::{Shards, UserId};
    use coupon_issuer::issuing::IssueOutcome;
    let app = spawn_app().await;
    let event = app.open_event(5).await;
    let id = EventId::parse(&event).unwrap();
    let today = today_utc();
    let alice = UserId::parse("alice").unwrap();
    for guess in [today - Days::days(1), today + Days::days(1), today] {
        let outcome = app.issuer.issue(id, Shards::ONE, &alice, guess).await.unwrap();
        match (guess == today - Days::days(1), outcome) {
            (true, IssueOutcome::Issued(coupon)) => assert_eq!((coupon.day, coupon.seq), (today, 1)),
            (false, IssueOutcome::AlreadyIssued(coupon)) => assert_eq!((coupon.day, coupon.seq), (today, 1)),
            (_, other) => panic!("guess {guess}: {other:?}"),
        }
    }
    let bob = UserId::parse("bob").unwrap();
    let outcome = app
        .issuer
        .issue(id, Shards::ONE, &bob, today + Days::days(2))
        .await
        .unwrap();
    assert!(
        matches!(outcome, IssueOutcome::Issued(ref c) if c.seq == 2),
        "{outcome:?}"
    );
    assert_eq!(app.count(&event).await["issued"], 2);
}
