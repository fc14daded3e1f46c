//! An event day as text: strictly "YYYY-MM-DD", the one spelling used in requests, Redis keys,
//! script replies and stream entries.

use chrono::{Datelike, NaiveDate};

/// `day` as chrono's `Display` writes it (`2026-05-01`), on the stack: the Redis keys and the
/// coupon's JSON write it on every issue request. Exact for the years 0 to 9999 (an event's
/// days are checked to lie in them when it is created); a year outside is clamped into them,
/// so a caller that can meet one checks [`in_four_digits`] first.
pub fn day_text(day: NaiveDate) -> [u8; 10] {
    let mut out = *b"0000-00-00";
    put_digits(&mut out[0..4], day.year().clamp(0, 9999) as u32);
    put_digits(&mut out[5..7], day.month());
    put_digits(&mut out[8..10], day.day());
    out
}

/// Whether chrono writes `year` in four plain digits, as [`day_text`] does.
pub fn in_four_digits(year: i32) -> bool {
    (0..=9999).contains(&year)
}

/// `n` as exactly `out.len()` decimal digits, zero-padded (`n` has at most that many).
pub fn put_digits(out: &mut [u8], mut n: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

pub fn parse_day(s: &str) -> Option<NaiveDate> {
    let well_formed = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !well_formed {
        return None;
    }
    // The digits are checked above; reading them directly is a tenth of the cost of chrono's
    // format-string parser, and this runs on every issue and every stored coupon.
    let number = |from: usize, to: usize| s[from..to].parse::<u32>().ok();
    let year = i32::try_from(number(0, 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_written_as_chrono_writes_them() {
        for day in ["2026-05-01", "0001-01-09", "9999-12-31", "2024-02-29"] {
            let day: NaiveDate = day.parse().unwrap();
            assert_eq!(day_text(day), day.to_string().as_bytes());
        }
    }

    #[test]
    fn only_the_one_spelling() {
        assert_eq!(parse_day("2026-05-01"), NaiveDate::from_ymd_opt(2026, 5, 1));
        for bad in [
            "2026-5-01",
            "2026-05-1",
            "2026-02-30",
            "20260501",
            "2026/05/01",
            " 2026-05-01",
            "+2026-05-0",
        ] {
            assert_eq!(parse_day(bad), None, "{bad:?}");
        }
    }
}
