//! Sealing: the key ring ([`keyring`]) and the sealed cookies made with it
//! ([`sealed_cookie`]): what lets any Envoy of a fleet check what another
//! issued, with nothing shared but the keys.

pub mod keyring;
pub mod opened;
pub mod sealed_cookie;
