//! Durations on the command line: `90s`, `10m`, `1h`, `30d`, or sums of
//! such terms (`1h30m`).

use std::fmt;
use std::time::Duration;

/// The longest duration accepted: 100 years. Certificates and CRLs never
/// need more, and it keeps every `now + duration` far from overflowing.
pub(crate) const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Nothing was given.
    Empty,
    /// A character where a number was expected.
    ExpectedNumber { input: String, found: char },
    /// A number without a unit.
    MissingUnit { input: String, number: u64 },
    /// A unit other than s, m, h, d.
    UnknownUnit { input: String, unit: String },
    /// Longer than [`MAX`].
    TooLong { input: String },
    /// Zero: never a useful lifetime.
    Zero { input: String },
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty duration; write for example 90s, 10m, 1h or 30d"),
            Self::ExpectedNumber { input, found } => write!(
                f,
                "{input:?}: expected a number, found {found:?}; write for example 90s, 10m, 1h or 30d"
            ),
            Self::MissingUnit { input, number } => write!(
                f,
                "{input:?} has no unit; write {number}s, {number}m, {number}h or {number}d"
            ),
            Self::UnknownUnit { input, unit } => write!(
                f,
                "{input:?}: unknown unit {unit:?}; the units are s, m, h and d"
            ),
            Self::TooLong { input } => write!(
                f,
                "{input:?} is longer than the {} days allowed",
                MAX.as_secs() / 86400
            ),
            Self::Zero { input } => write!(f, "{input:?}: the duration must be positive"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration such as `90s`, `10m`, `1h`, `30d` or `1h30m`.
pub(crate) fn parse(input: &str) -> Result<Duration, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    let too_long = || DurationError::TooLong {
        input: input.to_owned(),
    };
    let mut total: u64 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            let found = rest.chars().next().unwrap_or_default();
            return Err(DurationError::ExpectedNumber {
                input: input.to_owned(),
                found,
            });
        }
        let number: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u64 = match unit {
            "" => {
                return Err(DurationError::MissingUnit {
                    input: input.to_owned(),
                    number,
                })
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            other => {
                return Err(DurationError::UnknownUnit {
                    input: input.to_owned(),
                    unit: other.to_owned(),
                })
            }
        };
        total = number
            .checked_mul(scale)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(too_long)?;
    }
    let duration = Duration::from_secs(total);
    if duration > MAX {
        return Err(too_long());
    }
    if duration.is_zero() {
        return Err(DurationError::Zero {
            input: input.to_owned(),
        });
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("36500d"), Ok(MAX));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        // Each input and a check of the error it must give.
        type Expected = fn(&DurationError) -> bool;
        let cases: [(&str, Expected); 12] = [
            ("90", |e| {
                matches!(e, DurationError::MissingUnit { number: 90, .. })
            }),
            ("1h30", |e| {
                matches!(e, DurationError::MissingUnit { number: 30, .. })
            }),
            ("5y", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("5 h", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("h", |e| {
                matches!(e, DurationError::ExpectedNumber { found: 'h', .. })
            }),
            ("-1h", |e| {
                matches!(e, DurationError::ExpectedNumber { found: '-', .. })
            }),
            ("0s", |e| matches!(e, DurationError::Zero { .. })),
            ("36501d", |e| matches!(e, DurationError::TooLong { .. })),
            ("99999999999999999999999s", |e| {
                matches!(e, DurationError::TooLong { .. })
            }),
            ("999999999999999999d", |e| {
                matches!(e, DurationError::TooLong { .. })
            }),
            // Multibyte input never splits a character.
            ("1é", |e| matches!(e, DurationError::UnknownUnit { .. })),
            ("é", |e| {
                matches!(e, DurationError::ExpectedNumber { found: 'é', .. })
            }),
        ];
        for (input, expected) in cases {
            let result = parse(input);
            assert!(
                result.as_ref().is_err_and(expected),
                "{input:?}: {result:?}"
            );
        }
    }
}
