//! What the logic tells the glue to do with a request: the header changes to
//! apply, or a local answer to send, plus the counters to bump.
//!
//! One [`Reason`] feeds the response body, the `x-oidc-edge-reason` header,
//! the log line and the counter, so they can never disagree.

use crate::authority::Origin;
use crate::login_flow::FlowProblem;
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
    /// Set a header whose name comes from configuration.
    SetNamed(String, String),
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
    /// A login callback failed its flow-cookie check.
    LoginFlow(FlowProblem),
    /// A form-post callback body over the configured limit.
    CallbackBodyTooLarge,
    /// The app redirected to the IdP with an unregistered redirect_uri.
    RedirectUriMismatch,
    /// A return-to parameter pointed off-site.
    ReturnToOffSite,
    /// IdP mode: an invalid authorization request (the description says why).
    IdpInvalidRequest(&'static str),
}

impl Reason {
    /// HTTP status of the local answer.
    pub fn status(self) -> u32 {
        match self {
            Reason::HostNotAllowed | Reason::HostMalformed | Reason::LoginFlow(_) => 400,
            Reason::CallbackBodyTooLarge => 413,
            Reason::RedirectUriMismatch => 502,
            Reason::ReturnToOffSite | Reason::IdpInvalidRequest(_) => 400,
            Reason::Internal => 500,
        }
    }

    /// Stable machine-readable code, sent in `x-oidc-edge-reason`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::HostNotAllowed => "host_not_allowed",
            Reason::HostMalformed => "host_malformed",
            Reason::Internal => "internal_error",
            Reason::LoginFlow(p) => p.code(),
            Reason::CallbackBodyTooLarge => "callback_body_too_large",
            Reason::RedirectUriMismatch => "redirect_uri_mismatch",
            Reason::ReturnToOffSite => "return_to_rejected",
            Reason::IdpInvalidRequest(_) => "invalid_request",
        }
    }

    /// One line for the person who gets the answer.
    pub fn message(self) -> &'static str {
        match self {
            Reason::HostNotAllowed => "this host name is not served here",
            Reason::HostMalformed => "the request's host is missing or malformed",
            Reason::Internal => "the request could not be checked",
            Reason::LoginFlow(p) => p.message(),
            Reason::CallbackBodyTooLarge => "the login callback's form body is too large",
            Reason::RedirectUriMismatch => {
                "the application sent the identity provider a redirect_uri that is not registered"
            }
            Reason::ReturnToOffSite => "the link would send you to another site",
            Reason::IdpInvalidRequest(why) => why,
        }
    }

    /// The counter this reason bumps.
    pub fn counter(self) -> Counter {
        match self {
            Reason::HostNotAllowed => Counter::ForwardedHostRejected,
            Reason::HostMalformed => Counter::ForwardedHostMalformed,
            Reason::Internal => Counter::InternalError,
            Reason::LoginFlow(p) => p.counter(),
            Reason::CallbackBodyTooLarge => Counter::FlowBodyTooLarge,
            Reason::RedirectUriMismatch => Counter::RedirectUriMismatch,
            Reason::ReturnToOffSite => Counter::ReturnToRejected,
            Reason::IdpInvalidRequest(_) => Counter::IdpRejected,
        }
    }

    /// The response body: the message and the code, one line; for a
    /// failed login, a short page with a way to start again.
    pub fn body(self) -> String {
        match self {
            Reason::LoginFlow(_) => format!(
                "<!doctype html><meta charset=utf-8><title>Login could not be completed</title>\
                 <h1>Login could not be completed</h1><p>{}</p><p><a href=\"/\">Start again</a></p>\
                 <p><small>oidc-edge: {}</small></p>\n",
                self.message(),
                self.code()
            ),
            // RFC 6749 §4.1.2.1: tell the resource owner, do not redirect.
            Reason::IdpInvalidRequest(why) => format!("invalid_request: {why}\n"),
            _ => format!("oidc-edge: {} ({})\n", self.message(), self.code()),
        }
    }

    /// The response's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Reason::LoginFlow(_) => "text/html; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        }
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
    /// The external origin the browser addressed (for redirect checks in the
    /// response phase); `None` when the request was rejected.
    pub external: Option<Origin>,
}
