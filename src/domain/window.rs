//! The daily window, turned into absolute instants.
//!
//! An event says "13:00 to 15:00, Asia/Seoul, May 1 to May 5". Redis only knows milliseconds since
//! the epoch, so every day's window is resolved here, once, in Rust, with the IANA database, and
//! the issue script only compares numbers. All the calendar trouble (DST gaps and overlaps,
//! half-hour offsets, windows that cross midnight, "24:00") is handled in these pure functions.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::time_of_day::TimeOfDay;

/// The local daily window of an event: coupons are issued from `open` until `close`.
///
/// A window whose close is earlier than its open crosses midnight and belongs to the day it
/// opens on: "22:00"-"02:00" on May 1 runs from May 1 22:00 to May 2 02:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyWindow {
    open: TimeOfDay,
    close: TimeOfDay,
}

impl DailyWindow {
    pub fn new(open: TimeOfDay, close: TimeOfDay) -> Result<Self, String> {
        if open == TimeOfDay::END_OF_DAY {
            return Err("daily_open: must be before 24:00 (use 00:00)".into());
        }
        if open == close {
            return Err("daily_close: must differ from daily_open (the window would be empty)".into());
        }
        Ok(Self { open, close })
    }

    pub fn open(&self) -> TimeOfDay {
        self.open
    }

    pub fn close(&self) -> TimeOfDay {
        self.close
    }

    pub fn crosses_midnight(&self) -> bool {
        self.close < self.open
    }

    /// The window of local day `day`, as instants.
    pub fn on(&self, tz: Tz, day: NaiveDate) -> DayWindow {
        let close_day = if self.crosses_midnight() { next_day(day) } else { day };
        DayWindow {
            day,
            open: local_instant(tz, day, self.open),
            close: local_instant(tz, close_day, self.close),
            day_start: local_instant(tz, day, TimeOfDay::MIDNIGHT),
        }
    }
}

/// One day's window as absolute instants: issuing is allowed in `[open, close)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    /// The local date the window belongs to (the day it opens on).
    pub day: NaiveDate,
    pub open: DateTime<Utc>,
    pub close: DateTime<Utc>,
    /// Local midnight at the start of `day`. Between two windows, a request before this instant
    /// is "after yesterday's window" (`closed`); from it on, "before today's" (`not_open`).
    pub day_start: DateTime<Utc>,
}

impl DayWindow {
    /// A window can only be empty when DST swallows it whole (e.g. "02:10"-"02:40" on a day
    /// the clocks jump from 02:00 to 03:00): that day simply has no window.
    pub fn is_empty(&self) -> bool {
        self.close <= self.open
    }
}

/// The windows of every day from `first` to `last` (inclusive), in order, without empty ones.
pub fn windows(tz: Tz, first: NaiveDate, last: NaiveDate, window: DailyWindow) -> Vec<DayWindow> {
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| window.on(tz, d))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The instant a local wall clock in `tz` shows `time` on `day`.
///
/// - "24:00" is midnight at the start of the next day.
/// - A time that occurs twice (clocks fall back) means its first occurrence.
/// - A time that never occurs (clocks spring forward over it) means the moment the clocks jump:
///   the first instant at which the wall clock has reached or passed `time`. A window named
///   "02:30" on a day that skips from 02:00 to 03:00 opens at 03:00.
pub fn local_instant(tz: Tz, day: NaiveDate, time: TimeOfDay) -> DateTime<Utc> {
    let (date, minutes) = if time == TimeOfDay::END_OF_DAY {
        (next_day(day), 0)
    } else {
        (day, u32::from(time.minutes()))
    };
    let local = date.and_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or_default();
    resolve(tz, local)
}

fn resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap. Gaps are whole minutes and at most a day long (Samoa skipped 2011-12-30
            // entirely), so walking forward minute by minute finds the jump quickly, and this
            // runs only when an event is published.
            let mut probe = local;
            for _ in 0..(2 * 24 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            // No zone in the IANA database has a gap this long; keep a defined answer anyway.
            local.and_utc()
        }
    }
}

fn next_day(day: NaiveDate) -> NaiveDate {
    day.succ_opt().unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TimeOfDay {
        TimeOfDay::parse(s).unwrap()
    }
    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn win(open: &str, close: &str) -> DailyWindow {
        DailyWindow::new(t(open), t(close)).unwrap()
    }

    #[test]
    fn an_ordinary_day() {
        let w = win("13:00", "15:00").on(chrono_tz::Asia::Seoul, d("2026-05-01"));
        assert_eq!(w.open, utc("2026-05-01T04:00:00Z"));
        assert_eq!(w.close, utc("2026-05-01T06:00:00Z"));
        assert_eq!(w.day_start, utc("2026-04-30T15:00:00Z"));
    }

    #[test]
    fn spring_forward_moves_a_skipped_opening_to_the_jump() {
        // New York, 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT.
        let tz = chrono_tz::America::New_York;
        let w = win("02:30", "04:00").on(tz, d("2026-03-08"));
        assert_eq!(w.open, utc("2026-03-08T07:00:00Z"), "03:00 EDT, the jump");
        assert_eq!(w.close, utc("2026-03-08T08:00:00Z"), "04:00 EDT");
        // The window shrinks to 1 h of real time, as the wall clock says.
        let whole = win("00:00", "24:00").on(tz, d("2026-03-08"));
        assert_eq!(whole.close - whole.open, Duration::hours(23));
    }

    #[test]
    fn fall_back_takes_the_first_occurrence() {
        // New York, 2026-11-01: 01:00-02:00 happens twice (EDT, then EST).
        let tz = chrono_tz::America::New_York;
        let w = win("01:30", "03:00").on(tz, d("2026-11-01"));
        assert_eq!(w.open, utc("2026-11-01T05:30:00Z"), "01:30 EDT, the first one");
        assert_eq!(w.close, utc("2026-11-01T08:00:00Z"), "03:00 EST");
        let whole = win("00:00", "24:00").on(tz, d("2026-11-01"));
        assert_eq!(whole.close - whole.open, Duration::hours(25));
    }

    #[test]
    fn a_window_swallowed_by_the_gap_is_empty_and_skipped() {
        let tz = chrono_tz::America::New_York;
        assert!(win("02:10", "02:40").on(tz, d("2026-03-08")).is_empty());
        let days = windows(tz, d("2026-03-07"), d("2026-03-09"), win("02:10", "02:40"));
        let listed: Vec<_> = days.iter().map(|w| w.day.to_string()).collect();
        assert_eq!(listed, ["2026-03-07", "2026-03-09"]);
    }

    #[test]
    fn half_hour_and_quarter_hour_offsets() {
        let w = win("13:00", "15:00").on(chrono_tz::Asia::Kolkata, d("2026-05-01"));
        assert_eq!(w.open, utc("2026-05-01T07:30:00Z"));
        let w = win("13:00", "15:00").on(chrono_tz::Asia::Kathmandu, d("2026-05-01"));
        assert_eq!(w.open, utc("2026-05-01T07:15:00Z"));
    }

    #[test]
    fn a_window_crossing_midnight_belongs_to_the_day_it_opens() {
        let w = win("22:00", "02:00").on(chrono_tz::UTC, d("2026-05-01"));
        assert_eq!(w.day, d("2026-05-01"));
        assert_eq!(w.open, utc("2026-05-01T22:00:00Z"));
        assert_eq!(w.close, utc("2026-05-02T02:00:00Z"));
        assert!(win("22:00", "02:00").crosses_midnight());
    }

    #[test]
    fn end_of_day_is_next_midnight() {
        let w = win("18:00", "24:00").on(chrono_tz::Asia::Seoul, d("2026-05-01"));
        assert_eq!(w.close, utc("2026-05-01T15:00:00Z"), "May 2 00:00 KST");
        assert!(!win("18:00", "24:00").crosses_midnight());
    }

    #[test]
    fn empty_and_impossible_windows_are_refused() {
        assert!(DailyWindow::new(t("13:00"), t("13:00")).is_err());
        assert!(DailyWindow::new(t("24:00"), t("01:00")).is_err());
        assert!(DailyWindow::new(t("00:00"), t("24:00")).is_ok());
    }

    #[test]
    fn windows_never_overlap_and_keep_their_order() {
        // Every zone with DST oddities, every shape of window, across a whole year.
        let zones = [
            chrono_tz::America::New_York,
            chrono_tz::Europe::London,
            chrono_tz::Australia::Lord_Howe, // 30-minute DST shift
            chrono_tz::America::Santiago,    // DST changes at midnight
            chrono_tz::Pacific::Apia,
            chrono_tz::Asia::Kathmandu,
        ];
        let shapes = [
            ("00:00", "24:00"),
            ("13:00", "15:00"),
            ("22:00", "02:00"),
            ("00:30", "00:00"),
            ("02:30", "01:30"),
        ];
        for tz in zones {
            for (open, close) in shapes {
                let all = windows(tz, d("2026-01-01"), d("2026-12-31"), win(open, close));
                assert!(all.len() >= 364, "{tz} {open}-{close}: {}", all.len());
                for pair in all.windows(2) {
                    assert!(pair[0].open < pair[0].close);
                    assert!(pair[0].close <= pair[1].open, "{tz} {open}-{close}: {pair:?}");
                    assert!(pair[0].day_start <= pair[0].open);
                }
            }
        }
    }
}
