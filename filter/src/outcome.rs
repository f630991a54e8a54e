//! What the logic tells the glue to do with a request: the header changes to
//! apply, or a local answer to send, plus the counters to bump.
//!
//! One [`Reason`] feeds the response body, the `x-oidc-edge-reason` header,
//! the log line and the counter, so they can never disagree.

use crate::http::authority::Origin;
use crate::metrics::{Counter, CounterSet};
use crate::seal::sealed_cookie::CookieError;

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
    /// A return-to parameter was refused; the problem says which way, so
    /// the code and message say what is wrong with the link.
    ReturnTo(ReturnToProblem),
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
            Reason::ReturnTo(_) | Reason::IdpInvalidRequest(_) => 400,
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
            Reason::ReturnTo(p) => p.code(),
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
            Reason::ReturnTo(p) => p.message(),
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
            // One counter for every return-to refusal, so dashboards built
            // on it keep counting; the code tells them apart.
            Reason::ReturnTo(_) => Counter::ReturnToRejected,
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

/// Whether checks block or only count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Refuse what fails a check (the default).
    #[default]
    Enforce,
    /// Count and log what would be refused, forward everything: for rollout.
    Report,
}

impl Mode {
    /// The names a configuration gives the modes (`"mode": "report"`).
    pub(crate) const NAMES: &'static [(&'static str, Mode)] =
        &[("enforce", Mode::Enforce), ("report", Mode::Report)];
}

/// Why a return-to value was refused (or, in report mode, would have been).
/// Here rather than in `redirects` because [`Reason`] carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnToProblem {
    /// The parameter appears more than once: frameworks disagree on which
    /// value wins (RFC 6749 §3.1 forbids repeats for the same reason).
    Duplicate,
    /// A clear target on another origin: another host, scheme or port, a
    /// scheme-relative `//host`, or another URL scheme.
    OffSite,
    /// A spelling browsers and servers read differently: whitespace,
    /// control characters, backslashes, non-ASCII, encoded slashes,
    /// backslashes, dots or controls, dot segments, or an empty value.
    Malformed,
    /// The query holds a `;` and, read with `;` as a separator too, names a
    /// return-to parameter: frameworks that split on `;` as well as `&`
    /// (Python's `cgi`/`urlparse` before 3.9.2, Tornado, Tomcat's
    /// `org.apache.tomcat.util.http.Parameters` in some modes, many Perl
    /// and Ruby parsers) would read a value the guard never saw
    /// (`x=1;rd=//evil`, CVE-2021-23336 for Python).
    Semicolon,
}

impl ReturnToProblem {
    /// Every problem, for tables and tests.
    pub const ALL: [ReturnToProblem; 4] = [
        ReturnToProblem::Duplicate,
        ReturnToProblem::OffSite,
        ReturnToProblem::Malformed,
        ReturnToProblem::Semicolon,
    ];

    /// Stable code for `x-oidc-edge-reason`, the body and the log.
    pub fn code(self) -> &'static str {
        match self {
            ReturnToProblem::Duplicate => "return_to_repeated",
            ReturnToProblem::OffSite => "return_to_off_site",
            ReturnToProblem::Malformed => "return_to_malformed",
            ReturnToProblem::Semicolon => "return_to_semicolon",
        }
    }

    /// What is wrong with the link, for the person at the browser.
    pub fn message(self) -> &'static str {
        match self {
            ReturnToProblem::Duplicate => {
                "the link names where to go afterwards more than once, so where it leads is unclear"
            }
            ReturnToProblem::OffSite => "the link would send you to another site",
            ReturnToProblem::Malformed => {
                "the link's address for afterwards is spelled in a way browsers and servers read differently"
            }
            ReturnToProblem::Semicolon => {
                "the link's query uses ';', which some servers read as a separator, next to where to go \
                 afterwards, so where it leads is unclear"
            }
        }
    }
}

/// Why a callback was refused (or, in report mode, would have been).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowProblem {
    /// The callback carries no (or more than one) `state` parameter.
    NoState,
    /// No cookie for this flow.
    Missing,
    /// The flow's cookie arrived more than once.
    Duplicate,
    /// The cookie failed its checks.
    Cookie(CookieError),
    /// The node that started the login is gone, and the login was already
    /// restarted once.
    NodeGone,
    /// A form-post callback was routed (by the newest of several logins in
    /// progress) to another node than the one that started its login.
    OtherNode,
    /// A login would start on a plain-`http` external origin, where the
    /// browser drops the `Secure` (`__Host-`) flow cookie: it could only
    /// fail at the callback, after the user's time at the IdP.
    InsecureOrigin,
}

impl FlowProblem {
    /// Stable code for the response header, the log and the counter.
    pub fn code(self) -> &'static str {
        match self {
            FlowProblem::NoState => "flow_no_state",
            FlowProblem::Missing => "flow_cookie_missing",
            FlowProblem::Duplicate => "flow_cookie_duplicate",
            FlowProblem::Cookie(CookieError::Malformed) => "flow_cookie_malformed",
            FlowProblem::Cookie(CookieError::TooLarge) => "flow_cookie_too_large",
            FlowProblem::Cookie(CookieError::UnknownKey) => "flow_cookie_unknown_key",
            FlowProblem::Cookie(CookieError::BadSignature) => "flow_cookie_bad_signature",
            FlowProblem::Cookie(CookieError::Expired) => "flow_cookie_expired",
            FlowProblem::Cookie(CookieError::WrongState) => "flow_cookie_wrong_state",
            FlowProblem::Cookie(CookieError::NotYetValid) => "flow_cookie_not_yet_valid",
            FlowProblem::Cookie(CookieError::LifetimeTooLong) => "flow_cookie_lifetime_too_long",
            FlowProblem::NodeGone => "flow_node_gone",
            FlowProblem::OtherNode => "flow_other_node",
            FlowProblem::InsecureOrigin => "flow_insecure_origin",
        }
    }

    /// What went wrong and its likely cause, for the person at the browser.
    pub fn message(self) -> &'static str {
        match self {
            FlowProblem::NoState => "The login callback has no state parameter.",
            FlowProblem::Missing => {
                "This login was not started in this browser at this address: it may have been started on \
                 another host name, in another browser, or the browser did not send the login cookie back \
                 (SameSite or third-party cookie settings)."
            }
            FlowProblem::Duplicate => "The browser sent the login cookie twice.",
            FlowProblem::Cookie(CookieError::Malformed) | FlowProblem::Cookie(CookieError::TooLarge) => {
                "The login cookie is damaged."
            }
            FlowProblem::Cookie(CookieError::UnknownKey) => {
                "The login was started under a signing key that has since been retired."
            }
            FlowProblem::Cookie(CookieError::BadSignature) => {
                "The login cookie was altered or belongs to another login."
            }
            FlowProblem::Cookie(CookieError::Expired) => "The login took too long and expired.",
            FlowProblem::Cookie(CookieError::WrongState) => "The login cookie belongs to another login.",
            FlowProblem::Cookie(CookieError::NotYetValid) => {
                "The login cookie was issued in the future: a server's clock is wrong."
            }
            FlowProblem::Cookie(CookieError::LifetimeTooLong) => {
                "The login cookie is valid for longer than this site allows."
            }
            FlowProblem::NodeGone => {
                "The server that started this login went away, and so did the one that restarted it."
            }
            FlowProblem::OtherNode => {
                "Several logins were in progress in this browser; only the newest one can complete. Please start again."
            }
            FlowProblem::InsecureOrigin => {
                "This site was opened over plain http://, where the browser would not keep the login cookie. \
                 Open it with https:// and log in again."
            }
        }
    }

    /// The counter it bumps.
    pub fn counter(self) -> Counter {
        match self {
            FlowProblem::NoState => Counter::FlowNoState,
            FlowProblem::Missing => Counter::FlowMissing,
            FlowProblem::Duplicate => Counter::FlowDuplicate,
            FlowProblem::Cookie(CookieError::Malformed) => Counter::FlowMalformed,
            FlowProblem::Cookie(CookieError::TooLarge) => Counter::FlowTooLarge,
            FlowProblem::Cookie(CookieError::UnknownKey) => Counter::FlowUnknownKey,
            FlowProblem::Cookie(CookieError::BadSignature) => Counter::FlowBadSignature,
            FlowProblem::Cookie(CookieError::Expired) => Counter::FlowExpired,
            FlowProblem::Cookie(CookieError::WrongState) => Counter::FlowWrongState,
            FlowProblem::Cookie(CookieError::NotYetValid) => Counter::FlowNotYetValid,
            FlowProblem::Cookie(CookieError::LifetimeTooLong) => Counter::FlowLifetimeTooLong,
            FlowProblem::NodeGone => Counter::FlowNodeGone,
            FlowProblem::OtherNode => Counter::FlowOtherNode,
            FlowProblem::InsecureOrigin => Counter::FlowInsecureOrigin,
        }
    }
}
