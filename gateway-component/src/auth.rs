//! The virtual key a client presents; parsed by `policy` so the host's admission
//! control reads exactly the key the component authenticates.

pub use policy::credentials::{AUTHORIZATION, X_API_KEY, presented_key};
