//! TLS interception: the local CA ([`ca`]), per-host leaves in a bounded
//! cache ([`leaf`]) and the per-connection server configuration that picks a
//! leaf from the ClientHello ([`accept`]).

pub mod accept;
pub mod ca;
pub mod keyfmt;
pub mod leaf;

/// The interception CA, a leaf certificate or the per-connection TLS
/// configuration could not be made; the message names the file or host.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Ca(String),
    #[error("{0}")]
    Leaf(String),
    #[error("{0}")]
    Accept(String),
}

pub use accept::{Interceptor, Resolution};
pub use ca::{CaPaths, LocalCa};
pub use leaf::{LeafMinter, LeafSource};

/// Names cached at once; each entry is one certificate (~600 bytes).
pub const LEAF_CACHE_CAPACITY: usize = 4096;
