//! What every section's validation shares: the error type that names the
//! field and the fix, and field-level checks.

use std::fmt;

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `forwarded.trusted_cidrs[1]`.
    pub field: String,
    /// What was wrong and what is expected instead.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// Whether the filter owns (rewrites or removes) this request header: the
/// peer and session headers may not be one of them. The list is
/// [`crate::http::names`], the one source of truth.
pub(crate) fn is_forwarding_header(h: &str) -> bool {
    crate::http::names::is_owned(h)
}

/// A lower-case HTTP field name (RFC 9110 tchars, no upper case, no pseudo-headers).
pub(crate) fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}
