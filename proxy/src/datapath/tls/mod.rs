//! TLS interception: the local CA ([`ca`]), per-host leaves in a bounded
//! cache ([`leaf`]) and the per-connection server configuration that picks a
//! leaf from the ClientHello ([`accept`]).

pub mod accept;
pub mod ca;
pub mod keyfmt;
pub mod leaf;

pub use accept::{Interceptor, Resolution};
pub use ca::{CaPaths, LocalCa};
pub use leaf::{LeafMinter, LeafSource};

/// Names cached at once; each entry is one certificate (~600 bytes).
pub const LEAF_CACHE_CAPACITY: usize = 4096;
