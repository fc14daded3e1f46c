//! A local wall-clock time "HH:MM", including "24:00" (the end of the day).

use std::fmt;

use serde::{Serialize, Serializer};

/// Minutes since local midnight, 0 ("00:00") to 1440 ("24:00").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);
    pub const END_OF_DAY: TimeOfDay = TimeOfDay(24 * 60);

    /// Parses exactly "HH:MM" with two digits each; "24:00" is the only hour-24 time.
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("must be a time \"HH:MM\" from 00:00 to 24:00, got {s:?}");
        let b = s.as_bytes();
        if b.len() != 5 || b[2] != b':' || !b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit()) {
            return Err(err());
        }
        let hours = u16::from(b[0] - b'0') * 10 + u16::from(b[1] - b'0');
        let minutes = u16::from(b[3] - b'0') * 10 + u16::from(b[4] - b'0');
        if minutes > 59 || hours > 24 || (hours == 24 && minutes != 0) {
            return Err(err());
        }
        Ok(Self(hours * 60 + minutes))
    }

    pub fn from_minutes(minutes: u16) -> Option<Self> {
        (minutes <= 24 * 60).then_some(Self(minutes))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for s in ["00:00", "09:05", "13:00", "23:59", "24:00"] {
            assert_eq!(TimeOfDay::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(TimeOfDay::parse("24:00").unwrap(), TimeOfDay::END_OF_DAY);
    }

    #[test]
    fn rejects_malformed_times() {
        for s in [
            "", "9:00", "09:0", "0900", "24:01", "25:00", "12:60", "ab:cd", "12:00:00", " 1:00", "+1:00", "１2:00",
        ] {
            assert!(TimeOfDay::parse(s).is_err(), "{s:?}");
        }
    }
}
