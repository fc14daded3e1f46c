//! Whole numbers as JSON Schema counts them: `100`, and also `100.0` or `1e2`. The OpenAPI
//! document types these fields `integer`, which admits a number with a zero fraction, so the
//! service takes them too (serde's `i64` would refuse `100.0`). A fraction, or a value outside
//! `i64`, is still refused.

use serde::de::{Deserializer, Error, Unexpected, Visitor};

struct Whole;

impl Visitor<'_> for Whole {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
        // i64::MAX as f64 rounds up to 2^63, itself out of range: hence `<`, not `<=`.
        let whole = v.fract() == 0.0 && v >= i64::MIN as f64 && v < i64::MAX as f64;
        if whole {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(Whole)
}

pub fn optional_whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Optional;
    impl<'de> Visitor<'de> for Optional {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number or null")
        }

        fn visit_none<E: Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
            whole(d).map(Some)
        }
    }
    d.deserialize_option(Optional)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct N {
        #[serde(deserialize_with = "super::whole")]
        n: i64,
        #[serde(default, deserialize_with = "super::optional_whole")]
        m: Option<i64>,
    }

    fn n(json: &str) -> Result<(i64, Option<i64>), String> {
        serde_json::from_str::<N>(json)
            .map(|v| (v.n, v.m))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_any_spelling() {
        assert_eq!(n(r#"{"n": 100}"#), Ok((100, None)));
        assert_eq!(n(r#"{"n": 100.0, "m": 1e2}"#), Ok((100, Some(100))));
        assert_eq!(n(r#"{"n": -3, "m": null}"#), Ok((-3, None)));
        assert_eq!(n(r#"{"n": 9223372036854775807}"#), Ok((i64::MAX, None)));
    }

    #[test]
    fn fractions_strings_and_overflow_are_refused() {
        for bad in [
            r#"{"n": 1.5}"#,
            r#"{"n": "1"}"#,
            r#"{"n": 9223372036854775808}"#,
            r#"{"n": 1e19}"#,
            r#"{"n": true}"#,
            r#"{"n": 1, "m": 0.5}"#,
        ] {
            assert!(n(bad).is_err(), "{bad}");
        }
    }
}
