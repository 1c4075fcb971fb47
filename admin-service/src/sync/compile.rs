//! The compiler: turns current admin state into the self-contained records the edge
//! reads (policy's schema), with grants intersected, groups resolved and CIDRs parsed.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use crate::api::catalog::Catalog;
use crate::api::config::OrgConfig;
use crate::api::keys::KeyRow;
use crate::api::teams::TeamRow;
use crate::errors::ApiError;
use crate::store::db::Db;
use crate::store::sync::{self as store, KeyColumn};
use crate::vault::Vault;
use policy::kv::{KEY_PREFIX, agent_key, org_key, team_key};
use policy::records::encode;
use policy::{
    AgentRecord, IpAcl, KeyRecord, KeyStatus, Limits, ModelSet, OrgRecord, ProviderRoute,
    SCHEMA_VERSION, TeamRecord,
};

/// One change to an edge key-value store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvWrite {
    /// Set `key` to `value`.
    Put {
        /// KV key (`org:<id>`, `key:<sha256>`, …).
        key: String,
        /// Encoded record.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// KV key.
        key: String,
    },
    /// Add `delta` to the counter at `key`, in the encoding the edge's atomic
    /// increments use for that store (a missing counter is 0).
    AddToCounter {
        /// KV key.
        key: String,
        /// Amount added (negative to subtract).
        delta: i64,
    },
}

impl KvWrite {
    /// The KV key written.
    pub fn key(&self) -> &str {
        match self {
            KvWrite::Put { key, .. }
            | KvWrite::Delete { key }
            | KvWrite::AddToCounter { key, .. } => key,
        }
    }
}

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    /// Position in the outbox.
    pub id: i64,
    /// `org`, `team`, `key`, `agent`, `all` or `kvdel`.
    pub kind: String,
    /// The entity (or KV key for `kvdel`).
    pub entity_id: String,
}

/// Why a batch could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The admin database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Stored state could not be read.
    #[error("stored state unreadable: {0}")]
    Data(String),
}

impl From<ApiError> for CompileError {
    fn from(e: ApiError) -> Self {
        CompileError::Data(e.message)
    }
}

impl From<serde_json::Error> for CompileError {
    fn from(e: serde_json::Error) -> Self {
        CompileError::Data(e.to_string())
    }
}

struct OrgState {
    active: bool,
    models: ModelSet,
    /// Route groups the org grants, with their routable members.
    groups: Vec<policy::RouteGroup>,
}

impl OrgState {
    fn of(catalog: &Catalog, cfg: &OrgConfig, active: bool) -> OrgState {
        OrgState {
            active,
            models: catalog.org_models(cfg),
            groups: catalog.granted_route_groups(cfg),
        }
    }
}

/// Compiles a batch of outbox entries against the current state. Later entries
/// win for the same KV key; since every entry compiles current state, applying the
/// result brings a sink up to date whatever it missed.
pub async fn compile(
    pool: &Db,
    vault: &Vault,
    entries: &[OutboxEntry],
) -> Result<Vec<KvWrite>, CompileError> {
    let mut graces: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for (key_id, hash, ends) in store::grace_hashes(pool).await? {
        graces.entry(key_id).or_default().push((hash, ends));
    }
    let mut c = Compiler {
        pool,
        now_ms: crate::store::db::now_ms(),
        graces,
        vault,
        catalog: Catalog::load(pool).await?,
        orgs: HashMap::new(),
        teams: HashMap::new(),
        out: BTreeMap::new(),
    };
    for e in entries {
        match e.kind.as_str() {
            "org" => c.org(&e.entity_id).await?,
            "team" => c.team(&e.entity_id).await?,
            "key" => c.key_by_id(&e.entity_id).await?,
            "agent" => c.agent(&e.entity_id).await?,
            "all" => c.all().await?,
            "kvdel" => {
                c.out.insert(e.entity_id.clone(), None);
            }
            other => return Err(CompileError::Data(format!("unknown outbox kind {other:?}"))),
        }
    }
    Ok(c.out
        .into_iter()
        .map(|(key, v)| match v {
            Some(value) => KvWrite::Put { key, value },
            None => KvWrite::Delete { key },
        })
        .collect())
}

struct Compiler<'a> {
    pool: &'a Db,
    now_ms: i64,
    /// Key id → (hash of a rotated-out secret, end of its grace), from `key_grace_hashes`.
    graces: HashMap<String, Vec<(String, i64)>>,
    vault: &'a Vault,
    catalog: Catalog,
    orgs: HashMap<String, Option<OrgState>>,
    teams: HashMap<String, Option<TeamRow>>,
    out: BTreeMap<String, Option<Vec<u8>>>,
}

impl Compiler<'_> {
    async fn all(&mut self) -> Result<(), CompileError> {
        for id in store::org_ids(self.pool).await? {
            self.org(&id).await?;
        }
        for id in store::team_ids(self.pool).await? {
            self.team(&id).await?;
        }
        Ok(())
    }

    /// The org's record, and everything that embeds org state: its agents and keys.
    async fn org(&mut self, id: &str) -> Result<(), CompileError> {
        let Some(row) = store::org_row(self.pool, id).await? else {
            self.out.insert(org_key(id), None);
            return Ok(());
        };
        let cfg = OrgConfig::from_stored(row.try_get("config")?)?;
        let active = row.try_get::<i64, _>("active")? != 0;
        let rl = &cfg.rate_limiting;
        let limits = if rl.enabled {
            Limits {
                rpm: rl.rpm,
                rph: rl.rph,
                rpd: rl.rpd,
                tpm: rl.tpm,
                tpd: rl.tpd,
            }
        } else {
            Limits::default()
        };
        let mut providers = Vec::with_capacity(cfg.providers.len());
        for p in cfg.ordered_providers() {
            // Sealed for the edge afresh on every compile: never the stored blob.
            let api_key = match &p.api_key {
                Some(stored) => {
                    let mut conn = self.pool.acquire().await?;
                    Some(
                        self.vault
                            .credential_for_edge(&mut conn, id, &p.name, stored)
                            .await,
                    )
                }
                None => None,
            };
            providers.push(ProviderRoute {
                name: p.name.clone(),
                base_url: p.base_url.clone(),
                api_key,
                models: p.models.clone(),
                weight: p.weight,
            });
        }
        let state = OrgState::of(&self.catalog, &cfg, active);
        let record = OrgRecord {
            schema_version: SCHEMA_VERSION,
            org_id: id.to_string(),
            slug: row.try_get("slug")?,
            active,
            providers,
            limits,
            budget: cfg.budgets.as_ref().map(|b| b.compile()),
            client_ip_header: cfg.client_ip_header.clone(),
            prices: cfg.prices(&self.catalog, &row.try_get::<String, _>("currency")?),
            max_in_flight: cfg.max_in_flight,
            allowed_upstreams: cfg.allowed_upstreams(),
            default_max_output_tokens: cfg.default_max_output_tokens,
            cache_ttl_seconds: cfg.caching.compile(),
            store_content: cfg.audit.store_content,
            routing: policy::Routing {
                groups: state.groups.clone(),
                ..cfg.routing.compile()
            },
        };
        self.out.insert(org_key(id), Some(encode(&record)));
        self.orgs.insert(id.to_string(), Some(state));
        for a in store::agent_ids_of_org(self.pool, id).await? {
            self.agent(&a).await?;
        }
        for k in store::key_rows(self.pool, KeyColumn::Org, id).await? {
            self.key(&KeyRow::from_row(&k)?).await?;
        }
        Ok(())
    }

    async fn org_state(&mut self, id: &str) -> Result<Option<&OrgState>, CompileError> {
        if !self.orgs.contains_key(id) {
            let state = match store::org_activity(self.pool, id).await? {
                None => None,
                Some((active, config)) => Some(OrgState::of(
                    &self.catalog,
                    &OrgConfig::from_stored(&config)?,
                    active,
                )),
            };
            self.orgs.insert(id.to_string(), state);
        }
        Ok(self.orgs.get(id).and_then(Option::as_ref))
    }

    async fn team_row(&mut self, id: &str) -> Result<Option<TeamRow>, CompileError> {
        if !self.teams.contains_key(id) {
            let row = store::team_row(self.pool, id).await?;
            let team = row.map(|r| TeamRow::from_row(&r)).transpose()?;
            self.teams.insert(id.to_string(), team);
        }
        Ok(self.teams.get(id).cloned().flatten())
    }

    /// The team's record and its keys (their model sets embed the team's grants).
    async fn team(&mut self, id: &str) -> Result<(), CompileError> {
        let Some(team) = self.team_row(id).await? else {
            self.out.insert(team_key(id), None);
            return Ok(());
        };
        let record = TeamRecord {
            schema_version: SCHEMA_VERSION,
            team_id: team.id.clone(),
            org_id: team.org_id.clone(),
            limits: team.limits,
            budget: team.budget.as_ref().map(|b| b.compile()),
        };
        self.out.insert(team_key(id), Some(encode(&record)));
        for k in store::key_rows(self.pool, KeyColumn::Team, id).await? {
            self.key(&KeyRow::from_row(&k)?).await?;
        }
        Ok(())
    }

    async fn key_by_id(&mut self, id: &str) -> Result<(), CompileError> {
        for row in store::key_rows(self.pool, KeyColumn::Id, id).await? {
            self.key(&KeyRow::from_row(&row)?).await?;
        }
        Ok(())
    }

    async fn key(&mut self, k: &KeyRow) -> Result<(), CompileError> {
        let kv_key = format!("{KEY_PREFIX}{}", k.key_hash);
        let Some((org_models, groups)) = self
            .org_state(&k.org_id)
            .await?
            .map(|o| (o.models.clone(), o.groups.clone()))
        else {
            for (hash, _) in self.graces.get(&k.id).into_iter().flatten() {
                self.out.insert(format!("{KEY_PREFIX}{hash}"), None);
            }
            self.out.insert(kv_key, None);
            return Ok(());
        };
        let team = match &k.team_id {
            Some(t) => self.team_row(t).await?,
            None => None,
        };
        let team_set = self
            .catalog
            .grant_set(team.as_ref().and_then(|t| t.allowed_models.as_deref()));
        let key_set = self.catalog.grant_set(k.allowed_models.as_deref());
        let ip_acl = IpAcl {
            allow: policy::acl::parse_cidrs(&k.ip_allow).map_err(|(i, s)| {
                CompileError::Data(format!("key {} ip_allow[{i}] {s:?}", k.id))
            })?,
            deny: policy::acl::parse_cidrs(&k.ip_deny)
                .map_err(|(i, s)| CompileError::Data(format!("key {} ip_deny[{i}] {s:?}", k.id)))?,
        };
        let models = org_models.intersect(&team_set).intersect(&key_set);
        let mut route_groups: Vec<String> = groups
            .into_iter()
            .filter(|g| g.models.iter().any(|m| models.permits(m)))
            .map(|g| g.name)
            .collect();
        // Sorted: the edge looks names up by binary search.
        route_groups.sort();
        let record = KeyRecord {
            schema_version: SCHEMA_VERSION,
            key_id: k.id.clone(),
            org_id: k.org_id.clone(),
            // A deleted team's keys keep working only if they never had one.
            team_id: k.team_id.clone().filter(|_| team.is_some()),
            agent_id: k.agent_id.clone(),
            status: if k.status == "active" {
                KeyStatus::Active
            } else {
                KeyStatus::Revoked
            },
            expires_at_ms: k.expires_at_ms.map(|ms| ms.max(0) as u64),
            models,
            ip_acl,
            limits: k.limits,
            budget: k.budget.as_ref().map(|b| b.compile()),
            route_groups,
        };
        // A rotated-out secret is the same key until its grace ends, never past the
        // key's own expiry; once ended its record goes.
        for (hash, ends) in self.graces.get(&k.id).into_iter().flatten() {
            let old_key = format!("{KEY_PREFIX}{hash}");
            if *ends <= self.now_ms {
                self.out.insert(old_key, None);
                continue;
            }
            let mut old = record.clone();
            let ends = (*ends).max(0) as u64;
            old.expires_at_ms = Some(record.expires_at_ms.map_or(ends, |e| e.min(ends)));
            self.out.insert(old_key, Some(encode(&old)));
        }
        self.out.insert(kv_key, Some(encode(&record)));
        Ok(())
    }

    /// Agents are suspended at the edge when they or their org are inactive.
    async fn agent(&mut self, id: &str) -> Result<(), CompileError> {
        let Some((org_id, active)) = store::agent_state(self.pool, id).await? else {
            self.out.insert(agent_key(id), None);
            return Ok(());
        };
        let org_active = self.org_state(&org_id).await?.is_some_and(|o| o.active);
        let record = AgentRecord {
            schema_version: SCHEMA_VERSION,
            agent_id: id.to_string(),
            org_id,
            active: org_active && active,
        };
        self.out.insert(agent_key(id), Some(encode(&record)));
        Ok(())
    }
}
