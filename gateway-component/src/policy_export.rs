//! The `tollgate:gateway/policy` export: the inference path's decision without HTTP.

use policy::{Denial, Facts};

use crate::bindings::exports::tollgate::gateway::policy::{Decision, Guest, KeyRef, RequestFacts};
use crate::client_ip;
use crate::errors::GatewayError;
use crate::records;

struct PolicyExport;

impl Guest for PolicyExport {
    fn decide(facts: RequestFacts) -> Decision {
        let loaded = match &facts.key {
            KeyRef::Secret(secret) => {
                let secret = secret.trim();
                if secret.is_empty() {
                    return denied(&Denial::MissingKey.into(), None, None);
                }
                records::open().and_then(|bucket| records::load(&bucket, secret))
            }
            // Only a well-formed hash names a key record: nothing else is looked up.
            KeyRef::Hash(hash) => {
                if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return denied(&Denial::UnknownKey.into(), None, None);
                }
                let name = format!("{}{hash}", policy::kv::KEY_PREFIX);
                records::open().and_then(|bucket| records::load_named(&bucket, &name))
            }
        };
        let records = match loaded {
            Ok(r) => r,
            Err(e) => return denied(&e, None, None),
        };
        let verdict = records.authorize(&Facts {
            now_ms: crate::now_ms(),
            client_ip: facts.client_ip.as_deref().and_then(client_ip::parse_addr),
            model: facts.model.as_deref(),
        });
        let (org_id, key_id) = (Some(records.key.org_id), Some(records.key.key_id));
        match verdict {
            Ok(()) => Decision {
                allowed: true,
                status: 200,
                code: String::new(),
                message: String::new(),
                org_id,
                key_id,
            },
            Err(d) => denied(&d.into(), org_id, key_id),
        }
    }
}

fn denied(error: &GatewayError, org_id: Option<String>, key_id: Option<String>) -> Decision {
    Decision {
        allowed: false,
        status: error.status(),
        code: error.code().into(),
        message: error.message().into_owned(),
        org_id,
        key_id,
    }
}

#[cfg(target_arch = "wasm32")]
crate::bindings::export!(PolicyExport with_types_in crate::bindings);
