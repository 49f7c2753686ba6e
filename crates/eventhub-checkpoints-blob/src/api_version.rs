//! The storage service version sent as `x-ms-version`.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfigError;

/// A Blob service REST API version, such as `2017-11-09`.
///
/// Validated at construction, so a typo is an error when the backend is
/// built, not a 400 at the first call. Versions compare by date; the backend
/// sends only what the chosen version knows (for example the `Content-Length`
/// signing rule changed in 2015-02-21, and bearer tokens need 2017-11-09).
///
/// ```
/// # use eventhub_checkpoints_blob::ApiVersion;
/// let stack_hub: ApiVersion = "2017-11-09".parse()?;
/// assert!(stack_hub < ApiVersion::default());
/// assert!("2017-13-01".parse::<ApiVersion>().is_err());
/// # Ok::<(), eventhub_checkpoints_blob::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    year: u16,
    month: u8,
    day: u8,
}

impl ApiVersion {
    /// The version sent by default: current, and accepted by Azure and by
    /// Azurite 3.37.
    pub const DEFAULT: ApiVersion = ApiVersion::from_date(2025, 5, 5);
    /// The oldest version this backend speaks (the first with `include=metadata`
    /// listings and conditional Put Blob as used here).
    pub const OLDEST_SUPPORTED: ApiVersion = ApiVersion::from_date(2009, 9, 19);
    /// From this version on, a zero `Content-Length` is signed as an empty string.
    pub(crate) const EMPTY_ZERO_CONTENT_LENGTH: ApiVersion = ApiVersion::from_date(2015, 2, 21);
    /// The first version that accepts Entra ID bearer tokens.
    pub const FIRST_WITH_BEARER_TOKENS: ApiVersion = ApiVersion::from_date(2017, 11, 9);
    /// The first version with `x-ms-client-request-id`.
    pub(crate) const FIRST_WITH_CLIENT_REQUEST_ID: ApiVersion = ApiVersion::from_date(2012, 2, 12);

    const fn from_date(year: u16, month: u8, day: u8) -> Self {
        Self { year, month, day }
    }

    /// Parses `YYYY-MM-DD`.
    pub fn new(version: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::InvalidApiVersion {
            value: version.chars().take(40).collect(),
        };
        let bytes = version.as_bytes();
        if !version.is_ascii() || bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(invalid());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u16, ConfigError> {
            let part = &version[range];
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().map_err(|_| invalid())
            } else {
                Err(invalid())
            }
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
            2 => 28,
            _ => return Err(invalid()),
        };
        if day == 0 || day > days_in_month {
            return Err(invalid());
        }
        let parsed = Self::from_date(year, month as u8, day as u8);
        if parsed < Self::OLDEST_SUPPORTED {
            return Err(ConfigError::UnsupportedApiVersion {
                version: parsed.to_string(),
                oldest: Self::OLDEST_SUPPORTED.to_string(),
            });
        }
        Ok(parsed)
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for ApiVersion {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiVersion({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        let v: ApiVersion = "2017-11-09".parse().unwrap();
        assert_eq!(v.to_string(), "2017-11-09");
        assert!(v < "2019-02-02".parse().unwrap());
        assert!(v >= ApiVersion::FIRST_WITH_BEARER_TOKENS);
        assert_eq!(
            "2024-02-29".parse::<ApiVersion>().unwrap().to_string(),
            "2024-02-29"
        );
    }

    #[test]
    fn rejects_malformed_versions() {
        for bad in [
            "",
            "2017-11-9",
            "2017/11/09",
            "17-11-09",
            "2017-11-09 ",
            "2017-00-09",
            "2017-11-31",
            "2023-02-29",
            "２０１７-11-09",
            "2017-1ü-0",
            "latest",
            "2017-11-09\r\nx: y",
        ] {
            assert!(
                matches!(ApiVersion::new(bad), Err(ConfigError::InvalidApiVersion { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            ApiVersion::new("2008-01-01"),
            Err(ConfigError::UnsupportedApiVersion { .. })
        ));
    }
}
