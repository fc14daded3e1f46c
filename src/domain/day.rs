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
    well_formed
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
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
