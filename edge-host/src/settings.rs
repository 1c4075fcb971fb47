//! The host side of `wasi:config/store@0.2.0-draft-2024-09-27`, the interface Spin
//! serves component variables through: the edge operator's settings for the guest
//! (`trusted_proxies`, `edge_keys`), fixed at start and shared by every instance.

use std::sync::Arc;

use ipnet::IpNet;
use policy::sealed::KeyRing;
use wasmtime::component::HasData;

use crate::keyvalue::bindings::wasi::config::store;

/// The variable listing proxies whose forwarding headers the guest may honour.
pub const TRUSTED_PROXIES: &str = "trusted_proxies";
/// The variable holding the key ring that opens provider credentials.
pub const EDGE_KEYS: &str = "edge_keys";

/// An invalid `--trusted-proxy` entry.
#[derive(Debug, thiserror::Error)]
#[error("trusted proxy {0:?} is not an IP address or CIDR")]
pub struct InvalidTrustedProxy(pub String);

/// Settings served to the guest as `wasi:config` variables.
#[derive(Clone, Default)]
pub struct Settings {
    vars: Arc<[(String, String)]>,
}

impl std::fmt::Debug for Settings {
    // `edge_keys` holds key bytes: only the names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.vars.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Settings {
    /// The settings for `trusted` proxy CIDRs (a bare address is one host; checked
    /// here so a typo stops the edge instead of silently trusting nobody) and the
    /// `edge_keys` ring that opens provider credentials.
    pub fn new(trusted: &[String], edge_keys: &KeyRing) -> Result<Settings, InvalidTrustedProxy> {
        let mut nets: Vec<String> = Vec::with_capacity(trusted.len());
        for entry in trusted {
            let entry = entry.trim();
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| InvalidTrustedProxy(entry.to_string()))?;
            nets.push(net.to_string());
        }
        Ok(Settings {
            vars: Arc::from([
                (TRUSTED_PROXIES.to_string(), nets.join(",")),
                (EDGE_KEYS.to_string(), edge_keys.to_text().to_string()),
            ]),
        })
    }
}

/// [`HasData`] marker for the config bindings.
pub struct WasiConfig;

impl HasData for WasiConfig {
    type Data<'a> = &'a Settings;
}

/// Adds `wasi:config/store` to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> &Settings,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, WasiConfig>(linker, get)
}

impl store::Host for &Settings {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        Ok(Ok(self
            .vars
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        Ok(Ok(self.vars.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_checked_and_joined() {
        let none = KeyRing::default();
        let s = Settings::new(
            &["10.0.0.0/8".into(), " 192.0.2.1 ".into(), "::1".into()],
            &none,
        )
        .unwrap();
        assert_eq!(
            s.vars[0],
            (
                TRUSTED_PROXIES.to_string(),
                "10.0.0.0/8,192.0.2.1/32,::1/128".to_string()
            )
        );
        assert_eq!(Settings::new(&[], &none).unwrap().vars[0].1, "");
        assert!(Settings::new(&["10.0.0.0/33".into()], &none).is_err());
        assert!(Settings::new(&["proxy.internal".into()], &none).is_err());
    }

    #[test]
    fn edge_keys_are_served_but_never_debug_printed() {
        let ring = KeyRing::parse("k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap();
        let s = Settings::new(&[], &ring).unwrap();
        assert_eq!(s.vars[1].0, EDGE_KEYS);
        assert!(s.vars[1].1.starts_with("k1:AQEB"));
        assert!(!format!("{s:?}").contains("AQEB"));
    }
}
