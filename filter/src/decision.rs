//! What the logic tells the glue to do with a request: the header changes to
//! apply, or a local answer to send, plus the counters to bump.
//!
//! One [`Reason`] feeds the response body, the `x-oidc-edge-reason` header,
//! the log line and the counter, so they can never disagree.

use crate::metrics::{Counter, CounterSet};

/// One change to the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    /// Replace every value of the header with this one.
    Set(&'static str, String),
    /// Remove the header entirely.
    Remove(&'static str),
    /// Remove a header whose name comes from configuration.
    RemoveNamed(String),
}

/// Why a request is answered locally instead of being forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The external host is not one this deployment serves.
    HostNotAllowed,
    /// No valid external host: `Host` missing or malformed.
    HostMalformed,
    /// A host call failed; refusing is safer than forwarding unchecked.
    Internal,
}

impl Reason {
    /// HTTP status of the local answer.
    pub fn status(self) -> u32 {
        match self {
            Reason::HostNotAllowed | Reason::HostMalformed => 400,
            Reason::Internal => 500,
        }
    }

    /// Stable machine-readable code, sent in `x-oidc-edge-reason`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::HostNotAllowed => "host_not_allowed",
            Reason::HostMalformed => "host_malformed",
            Reason::Internal => "internal_error",
        }
    }

    /// One line for the person who gets the answer.
    pub fn message(self) -> &'static str {
        match self {
            Reason::HostNotAllowed => "this host name is not served here",
            Reason::HostMalformed => "the request's host is missing or malformed",
            Reason::Internal => "the request could not be checked",
        }
    }

    /// The counter this reason bumps.
    pub fn counter(self) -> Counter {
        match self {
            Reason::HostNotAllowed => Counter::ForwardedHostRejected,
            Reason::HostMalformed => Counter::ForwardedHostMalformed,
            Reason::Internal => Counter::InternalError,
        }
    }

    /// The response body: the message and the code, one line.
    pub fn body(self) -> String {
        format!("oidc-edge: {} ({})\n", self.message(), self.code())
    }
}

/// The verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it after applying these header changes (possibly none).
    Forward(Vec<HeaderOp>),
    /// Answer locally.
    Reject(Reason),
}

/// A verdict plus the counters the request touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub verdict: Verdict,
    /// Counters to bump once each (a rejection's own counter included).
    pub counters: CounterSet,
}
