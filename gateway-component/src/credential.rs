//! The provider credential: the org record carries it sealed under the edge key
//! (`policy::sealed`); it is opened here, for the outgoing call only, with the
//! edge's key ring from the `edge_keys` setting (a Spin variable, or the host's
//! `--edge-keys`). A credential that does not open fails the request closed: it
//! is never sent sealed, never sent without, and never logged.

use policy::ProviderRoute;
use policy::sealed::{KeyRing, Zeroizing, provider_credential_aad};

use crate::errors::GatewayError;

/// The edge setting holding the key ring: `id:<base64>` entries, comma-separated,
/// during a rotation the new key first.
pub const EDGE_KEYS: &str = "edge_keys";

/// The plaintext credential of `provider` of `org_id`, `None` when it has none.
pub fn open(
    org_id: &str,
    provider: &ProviderRoute,
) -> Result<Option<Zeroizing<String>>, GatewayError> {
    let Some(sealed) = &provider.api_key else {
        return Ok(None);
    };
    // Read per forwarded request: one config lookup and one AEAD open, no KV read.
    let setting = match crate::bindings::wasi::config::store::get(EDGE_KEYS) {
        Ok(Some(text)) => Zeroizing::new(text),
        Ok(None) => Zeroizing::new(String::new()),
        Err(e) => {
            eprintln!("tollgate: edge setting {EDGE_KEYS} unreadable: {e:?}");
            return Err(GatewayError::CredentialUnavailable);
        }
    };
    let ring = KeyRing::parse(&setting).map_err(|e| {
        eprintln!("tollgate: edge setting {EDGE_KEYS} invalid: {e}");
        GatewayError::CredentialUnavailable
    })?;
    let opened = ring
        .open(sealed, &provider_credential_aad(org_id, &provider.name))
        .map_err(|e| {
            // The error names at most a key id, never key or credential bytes.
            eprintln!(
                "tollgate: credential of provider {:?} of org {org_id} not usable: {e}",
                provider.name
            );
            GatewayError::CredentialUnavailable
        })?;
    let text = std::str::from_utf8(&opened).map_err(|_| GatewayError::CredentialUnavailable)?;
    // A header value must be printable: the admin service only seals such.
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(GatewayError::CredentialUnavailable);
    }
    Ok(Some(Zeroizing::new(text.to_string())))
}
