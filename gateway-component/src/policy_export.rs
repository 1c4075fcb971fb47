//! The `tollgate:gateway/policy` export: the inference path's decision without HTTP.

use policy::{Denial, Facts};

use crate::bindings::exports::tollgate::gateway::policy::{Decision, Guest, RequestFacts};
use crate::client_ip;
use crate::errors::GatewayError;
use crate::records;

struct PolicyExport;

impl Guest for PolicyExport {
    fn decide(facts: RequestFacts) -> Decision {
        let secret = facts.api_key.trim();
        if secret.is_empty() {
            return denied(&Denial::MissingKey.into(), None, None);
        }
        let records = match records::open().and_then(|bucket| records::load(&bucket, secret)) {
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
