//! Reading stored times back: the form this crate writes, parsed without the general
//! parser.
//!
//! Every stored event carries two times (and each event of a live segments' digest one),
//! written as RFC 3339 in UTC (`2026-03-04T05:06:07.123456789Z`, with 0, 3, 6 or 9 digits
//! of fraction). Parsing them back through chrono's general RFC 3339 parser cost about
//! 190 ns each, a tenth of reading a timeline page; [`deserialize`] reads that exact form
//! directly in about 30 ns and hands anything else to chrono, so it accepts exactly what
//! chrono accepts.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Deserializer;
use serde::de::{Error, Visitor};

/// Deserializes a time as chrono does (an RFC 3339 string, any offset, converted to UTC),
/// fast for the form chrono writes for UTC.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(TimeVisitor)
}

struct TimeVisitor;

impl Visitor<'_> for TimeVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
        parse(text).map_err(E::custom)
    }
}

/// `text` as a time, as chrono parses it.
pub(crate) fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match written_form(text) {
        Some(at) => Ok(at),
        None => text
            .parse::<DateTime<FixedOffset>>()
            .map(|at| at.with_timezone(&Utc)),
    }
}

/// `text` as a time when it has exactly the form chrono writes for UTC
/// (`YYYY-MM-DDTHH:MM:SS`, then `.` and one to nine digits or nothing, then `Z`) and
/// names a valid time without a leap second; `None` otherwise.
fn written_form(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let length = bytes.len();
    let shaped = (20..=30).contains(&length)
        && length != 21
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[length - 1] == b'Z'
        && (length == 20 || bytes[19] == b'.');
    if !shaped {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        bytes[from..to].iter().try_fold(0u32, |n, &digit| {
            digit
                .is_ascii_digit()
                .then(|| n * 10 + u32::from(digit - b'0'))
        })
    };
    let nanos = if length == 20 {
        0
    } else {
        let digits = (length - 21) as u32;
        number(20, length - 1)? * 10u32.pow(9 - digits)
    };
    let date = NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(5, 7)?, number(8, 10)?)?;
    // A second of 60 is refused here, leaving a leap second to chrono to place.
    let time = date.and_hms_nano_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, nanos)?;
    Some(time.and_utc())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn chrono_parse(text: &str) -> Option<DateTime<Utc>> {
        text.parse::<DateTime<FixedOffset>>()
            .ok()
            .map(|at| at.with_timezone(&Utc))
    }

    #[test]
    fn the_written_forms_read_back() {
        for nanos in [0, 123_000_000, 123_456_000, 123_456_789, 5] {
            let at = DateTime::from_timestamp(1_767_225_600, nanos).unwrap();
            let written = serde_json::to_string(&at).unwrap();
            let text = written.trim_matches('"');
            assert_eq!(written_form(text), Some(at), "{text}");
        }
    }

    #[test]
    fn other_forms_are_left_to_chrono() {
        for text in [
            "2026-01-01t00:00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00+01:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.1234567890Z",
            "2016-12-31T23:59:60Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "+12026-01-01T00:00:00Z",
        ] {
            assert_eq!(written_form(text), None, "{text}");
            assert_eq!(parse(text).ok(), chrono_parse(text), "{text}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever the text, the result is chrono's: near the written form, on both sides
        /// of every field's range, and in the forms only chrono reads.
        #[test]
        fn parses_as_chrono_does(
            date in (0..10_000u32, 0..14u32, 0..33u32),
            time in (0..26u32, 0..62u32, 0..62u32),
            fraction in prop::option::of("[0-9]{0,10}"),
            separator in prop::sample::select(vec!["T", "t", " "]),
            zone in prop::sample::select(vec!["Z", "z", "+01:30", "-00:00", ""]),
        ) {
            let (year, month, day) = date;
            let (hour, minute, second) = time;
            let fraction = fraction.map_or_else(String::new, |digits| format!(".{digits}"));
            let text = format!(
                "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
            );
            prop_assert_eq!(parse(&text).ok(), chrono_parse(&text), "{}", text);
        }

        /// Every time chrono writes reads back exactly.
        #[test]
        fn written_times_read_back(seconds in -2_000_000_000i64..8_000_000_000, nanos in 0u32..1_000_000_000) {
            let at = DateTime::from_timestamp(seconds, nanos).unwrap();
            let written = serde_json::to_string(&at).unwrap();
            let read: serde_json::Result<DateTime<Utc>> =
                deserialize(&mut serde_json::Deserializer::from_str(&written));
            prop_assert_eq!(read.unwrap(), at);
        }
    }
}
