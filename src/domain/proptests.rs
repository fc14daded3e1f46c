//! Property tests for every parser that takes outside input, and for the window arithmetic an
//! accepted event leads to. Cases are capped (proptest's default 256, `PROPTEST_CASES` to raise
//! it), so they run in CI in well under a second each.

use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::TZ_VARIANTS;
use proptest::prelude::*;

use super::*;

/// Strings near the formats: digits, separators, signs, a little Unicode.
fn near(format_chars: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[{format_chars}]{{0,12}}")).unwrap(),
        any::<String>(),
    ]
}

fn date_in_range() -> impl Strategy<Value = NaiveDate> {
    (0i64..36_500).prop_map(|d| NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + Duration::days(d))
}

fn time_of_day() -> impl Strategy<Value = String> {
    (0u16..=24, 0u16..60).prop_map(|(h, m)| format!("{h:02}:{m:02}"))
}

proptest! {
    #[test]
    fn parse_day_never_panics_and_round_trips(s in near("0-9\\-+ /:T")) {
        if let Some(day) = parse_day(&s) {
            prop_assert_eq!(day.to_string(), s);
        }
    }

    #[test]
    fn time_of_day_never_panics_and_round_trips(s in near("0-9: ")) {
        if let Ok(t) = TimeOfDay::parse(&s) {
            prop_assert!(t.minutes() <= 1440);
            prop_assert_eq!(t.to_string(), s);
        }
    }

    #[test]
    fn ids_never_panic_and_accepted_ones_round_trip(s in near("0-9a-fA-F\\-{}|: @._")) {
        if let Ok(id) = EventId::parse(&s) {
            prop_assert_eq!(id.to_string(), s.clone());
        }
        if let Ok(id) = CouponId::parse(&s) {
            prop_assert_eq!(id.to_string(), s.clone());
        }
        if let Ok(user) = UserId::parse(&s) {
            // What the Redis record and the stream rely on: never a "|", never empty, short.
            prop_assert!(!user.as_str().contains('|') && !user.as_str().is_empty() && user.as_str().len() <= 64);
        }
    }

    /// Any definition: no panic. An accepted one: its windows are in order, never overlap, and
    /// each opens on or after its local midnight, in every zone chrono-tz knows (DST included).
    #[test]
    fn event_definitions_never_panic_and_accepted_ones_have_ordered_windows(
        tz in prop_oneof![
            (0..TZ_VARIANTS.len()).prop_map(|i| TZ_VARIANTS[i].name().to_owned()),
            any::<String>(),
        ],
        start in date_in_range(),
        days in 0i64..400,
        open in prop_oneof![time_of_day(), any::<String>()],
        close in time_of_day(),
        daily_limit in prop_oneof![1i64..1000, any::<i64>()],
        valid_days in prop_oneof![0i64..400, any::<i64>()],
        name in prop_oneof![Just("Drop".to_owned()), any::<String>()],
        shards in prop_oneof![Just(None), (0i64..70).prop_map(Some)],
    ) {
        let request = NewEventRequest {
            name,
            timezone: tz,
            starts_on: start.to_string(),
            ends_on: (start + Duration::days(days)).to_string(),
            daily_open: open,
            daily_close: close,
            daily_limit,
            valid_days_after_end: valid_days,
            discount: Discount::Percent { value: 50 },
            shards,
        };
        let Ok(spec) = NewEvent::parse(request) else { return Ok(()) };
        prop_assert!(u32::from(spec.shards.get()) <= spec.daily_limit);
        let event = Event::new(EventId::new(), spec, Utc::now());
        let windows = event.windows();
        prop_assert!(windows.len() as i64 <= days + 1);
        for w in &windows {
            prop_assert!(w.open < w.close, "{w:?}");
            prop_assert!(w.day_start <= w.open, "{w:?}");
            prop_assert!(w.close - w.open <= Duration::hours(26), "{w:?}");
        }
        for pair in windows.windows(2) {
            prop_assert!(pair[0].close <= pair[1].open, "{pair:?}");
            prop_assert!(pair[0].day < pair[1].day);
        }
        let _ = event.current_day(Utc::now());
        let _ = event.status_on(start, Utc::now(), 0);
    }
}
