//! An event day as text: strictly "YYYY-MM-DD", the one spelling used in requests, Redis keys,
//! script replies and stream entries.

use chrono::NaiveDate;

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
