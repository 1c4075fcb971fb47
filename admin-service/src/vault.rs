//! Provider credentials at rest, and the keys that protect them.
//!
//! Envelope encryption: each organization's credentials are sealed
//! (XChaCha20-Poly1305, `policy::sealed`) under a random data key of its own,
//! bound to the org id; the data key is stored in `org_data_keys` wrapped by the
//! master key (`TOLLGATE_MASTER_KEY` or `--master-key-file`). Records pushed to the
//! edge carry each credential sealed again under the edge key, bound to org and
//! provider, never the master key. Both are key rings (`id:<base64>,…`, the first
//! sealing, all opening), so rotating one re-wraps or re-seals while the service
//! keeps serving.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::RwLock;

use axum::Json;
use axum::extract::State;
use policy::sealed::{
    KEY_LEN, KeyRing, NONCE_LEN, SealError, SealKey, Zeroizing, is_sealed, key_id,
    provider_credential_aad,
};
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool};

use crate::AppState;
use crate::auth::Actor;
use crate::errors::{ApiError, ApiResult};
use crate::model::config::{OrgConfig, Secret};
use crate::store::config as stored_config;
use crate::store::credentials;
use crate::store::db::{Writer, now_ms};

/// What an edge record carries for a credential the admin service cannot seal
/// (no edge key, a data key the master key does not open): not a sealed value,
/// so the edge refuses the provider's requests (503) rather than send anything.
pub const UNUSABLE: &str = "unusable";

/// Id of an org's data key inside the blobs it seals.
const DATA_KEY_ID: &str = "org";

/// Where a key ring comes from.
#[derive(Clone, Default)]
pub enum KeySource {
    /// No key configured.
    #[default]
    None,
    /// Key text given directly (an environment variable).
    Inline(Zeroizing<String>),
    /// A key file, read again on a rotation.
    File(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::None => f.write_str("None"),
            KeySource::Inline(_) => f.write_str("Inline(<redacted>)"),
            KeySource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl KeySource {
    /// The key text if given (non-empty), else the file if given.
    pub fn from_text_or_file(text: Option<String>, file: Option<PathBuf>) -> KeySource {
        match (text.filter(|t| !t.trim().is_empty()), file) {
            (Some(t), _) => KeySource::Inline(Zeroizing::new(t)),
            (None, Some(f)) => KeySource::File(f),
            (None, None) => KeySource::None,
        }
    }

    /// The edge key ring this source holds (for a local edge fed the same keys).
    pub fn edge_ring(&self) -> Result<KeyRing, VaultError> {
        self.load(EDGE)
    }

    fn load(&self, what: &'static str) -> Result<KeyRing, VaultError> {
        let text = match self {
            KeySource::None => return Ok(KeyRing::default()),
            KeySource::Inline(t) => t.clone(),
            KeySource::File(path) => Zeroizing::new(std::fs::read_to_string(path).map_err(
                |source| VaultError::Io {
                    what,
                    path: path.clone(),
                    source,
                },
            )?),
        };
        KeyRing::parse(&text).map_err(|source| VaultError::Key { what, source })
    }
}

/// The key settings of `tollgate-admin` and `tollgate up`. Prefer the files:
/// arguments are visible to other local users.
#[derive(Clone, Default, clap::Args)]
pub struct KeySettings {
    /// Master key(s) wrapping each org's data key: `[id:]<base64 of 32 bytes>`,
    /// comma-separated, the current first.
    #[arg(
        long,
        env = "TOLLGATE_MASTER_KEY",
        hide_env_values = true,
        value_name = "[ID:]BASE64"
    )]
    pub master_key: Option<String>,
    /// File holding the master key ring (same format), read again by
    /// `POST /api/platform/master-key/rotate`.
    #[arg(long, env = "TOLLGATE_MASTER_KEY_FILE", conflicts_with = "master_key")]
    pub master_key_file: Option<PathBuf>,
    /// Edge key(s) sealing credentials in the records pushed to the edge:
    /// `id:<base64 of 32 bytes>`, comma-separated, the current first.
    #[arg(
        long,
        env = "TOLLGATE_EDGE_KEYS",
        hide_env_values = true,
        value_name = "ID:BASE64"
    )]
    pub edge_keys: Option<String>,
    /// File holding the edge key ring, read again by
    /// `POST /api/platform/edge-keys/rotate`.
    #[arg(long, env = "TOLLGATE_EDGE_KEY_FILE", conflicts_with = "edge_keys")]
    pub edge_key_file: Option<PathBuf>,
}

impl fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySettings")
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("master_key_file", &self.master_key_file)
            .field("edge_keys", &self.edge_keys.as_ref().map(|_| "<redacted>"))
            .field("edge_key_file", &self.edge_key_file)
            .finish()
    }
}

impl KeySettings {
    /// Where the master key comes from.
    pub fn master(&self) -> KeySource {
        KeySource::from_text_or_file(self.master_key.clone(), self.master_key_file.clone())
    }

    /// Where the edge keys come from.
    pub fn edge(&self) -> KeySource {
        KeySource::from_text_or_file(self.edge_keys.clone(), self.edge_key_file.clone())
    }
}

/// Writes a new random key, named `<prefix><fingerprint>`, to a file only its
/// owner can read (mode 0600); fails if the file exists.
pub fn generate_key_file(path: &std::path::Path, prefix: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(bytes.as_mut()).expect("the OS random source is available");
    let key = SealKey::fingerprinted(prefix, *bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key.to_entry().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Why keys could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A key ring is malformed, or a blob does not open with it.
    #[error("{what}: {source}")]
    Key {
        /// Which ring.
        what: &'static str,
        /// Why.
        source: SealError,
    },
    /// A key file could not be read.
    #[error("{what}: reading {}: {source}", path.display())]
    Io {
        /// Which ring.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A stored credential is sealed but its org has no data key.
    #[error("organization {0} has sealed credentials but no data key")]
    MissingDataKey(String),
    /// A stored config could not be read.
    #[error("stored config of {0} unreadable")]
    Config(String),
    /// The admin database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

const MASTER: &str = "master key";
const EDGE: &str = "edge keys";

fn master_err(source: SealError) -> VaultError {
    VaultError::Key {
        what: MASTER,
        source,
    }
}

/// A fresh random nonce.
fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n).expect("the OS random source is available");
    n
}

fn aad(purpose: &[u8], org_id: &str) -> Vec<u8> {
    [purpose, org_id.as_bytes()].concat()
}

/// Associated data of an org's wrapped data key.
fn data_key_aad(org_id: &str) -> Vec<u8> {
    aad(b"tollgate/data-key/v1\0", org_id)
}

/// Associated data of a credential stored in an org's config.
fn stored_credential_aad(org_id: &str) -> Vec<u8> {
    aad(b"tollgate/stored-credential/v1\0", org_id)
}

/// The master and edge key rings, and where they are read from.
pub struct Vault {
    master: RwLock<KeyRing>,
    master_source: KeySource,
    edge: RwLock<KeyRing>,
    edge_source: KeySource,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("master", &self.master_source)
            .field("edge", &self.edge_source)
            .finish()
    }
}

impl Vault {
    /// Reads both rings; a malformed key or unreadable file is an error (an
    /// absent one is not: the service then refuses to store credentials).
    pub fn load(master: KeySource, edge: KeySource) -> Result<Vault, VaultError> {
        Ok(Vault {
            master: RwLock::new(master.load(MASTER)?),
            edge: RwLock::new(edge.load(EDGE)?),
            master_source: master,
            edge_source: edge,
        })
    }

    /// A vault of fixed rings (tests, embedding).
    pub fn with_rings(master: KeyRing, edge: KeyRing) -> Vault {
        Vault {
            master: RwLock::new(master),
            master_source: KeySource::None,
            edge: RwLock::new(edge),
            edge_source: KeySource::None,
        }
    }

    fn master(&self) -> KeyRing {
        self.master
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn edge(&self) -> KeyRing {
        self.edge.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the edge keys again from their file (a fixed ring stays as it is).
    pub fn reload_edge(&self) -> Result<(), VaultError> {
        if !matches!(self.edge_source, KeySource::None) {
            let ring = self.edge_source.load(EDGE)?;
            *self.edge.write().unwrap_or_else(|e| e.into_inner()) = ring;
        }
        Ok(())
    }

    /// The org's data key, unwrapped; `None` when it has none yet.
    async fn data_key(
        &self,
        conn: &mut AnyConnection,
        org_id: &str,
    ) -> Result<Option<KeyRing>, VaultError> {
        let wrapped = credentials::data_key(conn, org_id).await?;
        let Some(wrapped) = wrapped else {
            return Ok(None);
        };
        let raw = self
            .master()
            .open(&wrapped, &data_key_aad(org_id))
            .map_err(master_err)?;
        let bytes: [u8; KEY_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| master_err(SealError::Malformed))?;
        let key = SealKey::new(DATA_KEY_ID, bytes).map_err(master_err)?;
        Ok(Some(KeyRing::of(vec![key])))
    }

    /// The org's data key, created (and stored wrapped) on first use.
    async fn data_key_or_create(
        &self,
        conn: &mut AnyConnection,
        org_id: &str,
    ) -> Result<KeyRing, VaultError> {
        if let Some(ring) = self.data_key(conn, org_id).await? {
            return Ok(ring);
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut()).expect("the OS random source is available");
        let wrapped = self
            .master()
            .seal(nonce(), bytes.as_ref(), &data_key_aad(org_id))
            .map_err(master_err)?;
        credentials::insert_data_key(conn, org_id, &wrapped, now_ms()).await?;
        let key = SealKey::new(DATA_KEY_ID, *bytes).map_err(master_err)?;
        Ok(KeyRing::of(vec![key]))
    }

    /// Seals every plaintext credential of `cfg` under the org's data key; the
    /// number sealed. Needs the master key when there is anything to seal.
    async fn seal_credentials(
        &self,
        conn: &mut AnyConnection,
        org_id: &str,
        cfg: &mut OrgConfig,
    ) -> Result<usize, VaultError> {
        let plaintext = |k: &Secret| !is_sealed(&k.0);
        if !cfg
            .providers
            .iter()
            .any(|p| p.api_key.as_ref().is_some_and(plaintext))
        {
            return Ok(0);
        }
        let key = self.data_key_or_create(conn, org_id).await?;
        let aad = stored_credential_aad(org_id);
        let mut sealed = 0;
        for p in &mut cfg.providers {
            if let Some(secret) = p.api_key.as_mut().filter(|k| plaintext(k)) {
                secret.0 = key
                    .seal(nonce(), secret.0.as_bytes(), &aad)
                    .map_err(master_err)?;
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    /// Seals the plaintext credentials of a config about to be stored. Refuses
    /// (503, naming the field and the missing key) when the master key or the
    /// edge key is not configured: the credential could neither be kept safe nor
    /// reach the edge.
    pub async fn seal_config(
        &self,
        conn: &mut AnyConnection,
        org_id: &str,
        cfg: &mut OrgConfig,
    ) -> ApiResult<()> {
        let Some(i) = cfg
            .providers
            .iter()
            .position(|p| p.api_key.as_ref().is_some_and(|k| !is_sealed(&k.0)))
        else {
            return Ok(());
        };
        let field = format!("config.providers[{i}].api_key");
        if self.master().is_empty() {
            return Err(ApiError::unavailable(
                "master_key_missing",
                "this admin service has no master key (TOLLGATE_MASTER_KEY or \
                 --master-key-file), so it refuses to store provider credentials",
            )
            .with_field(field));
        }
        if self.edge().is_empty() {
            return Err(ApiError::unavailable(
                "edge_key_missing",
                "this admin service has no edge key (TOLLGATE_EDGE_KEYS or \
                 --edge-key-file), so a provider credential could not reach the edge",
            )
            .with_field(field));
        }
        self.seal_credentials(conn, org_id, cfg)
            .await
            .map_err(|e| {
                tracing::error!(org_id, error = %e, "cannot seal provider credentials");
                ApiError::unavailable(
                    "master_key_mismatch",
                    "the organization's data key does not open with the configured master \
                     key; nothing was stored",
                )
                .with_field(field)
            })?;
        Ok(())
    }

    /// A stored credential in plaintext (one from a database older than
    /// encryption is already plaintext until the next start seals it).
    async fn open_stored(
        &self,
        conn: &mut AnyConnection,
        org_id: &str,
        stored: &Secret,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if !is_sealed(&stored.0) {
            return Ok(Zeroizing::new(stored.0.as_bytes().to_vec()));
        }
        let key = self
            .data_key(conn, org_id)
            .await?
            .ok_or_else(|| VaultError::MissingDataKey(org_id.to_string()))?;
        key.open(&stored.0, &stored_credential_aad(org_id))
            .map_err(master_err)
    }

    /// The credential as an edge record carries it: sealed under the current edge
    /// key, bound to org and provider. [`UNUSABLE`] (logged, never the secret)
    /// when it cannot be, so the edge refuses that provider's requests.
    pub async fn credential_for_edge(
        &self,
        conn: &mut AnyConnection,
        org_id: &str,
        provider: &str,
        stored: &Secret,
    ) -> String {
        let sealed = match self.open_stored(conn, org_id, stored).await {
            Ok(plain) => self
                .edge()
                .seal(nonce(), &plain, &provider_credential_aad(org_id, provider))
                .map_err(|source| VaultError::Key { what: EDGE, source }),
            Err(e) => Err(e),
        };
        sealed.unwrap_or_else(|e| {
            tracing::error!(
                org_id,
                provider,
                error = %e,
                "provider credential cannot be sealed for the edge; the edge refuses its requests"
            );
            UNUSABLE.to_string()
        })
    }

    /// Brings stored state up to the configured keys on start: data keys wrapped
    /// by an older master key are re-wrapped, plaintext credentials from older
    /// databases sealed, and org records re-sealed when the edge key changed.
    pub async fn prepare(&self, pool: &AnyPool, writer: &Writer) -> Result<(), VaultError> {
        if self.master().is_empty() {
            let mut conn = pool.acquire().await?;
            let plaintext: usize = stored_config::all(&mut conn)
                .await?
                .iter()
                .map(|(_, text)| plaintext_credentials(text))
                .sum();
            if plaintext > 0 {
                tracing::warn!(
                    credentials = plaintext,
                    "provider credentials are stored in plaintext: configure a master key \
                     (TOLLGATE_MASTER_KEY or --master-key-file) to encrypt them on start"
                );
            }
        } else {
            let rewrapped = self.rewrap_data_keys(pool, writer).await?;
            let sealed = self.seal_plaintext(pool, writer).await?;
            if rewrapped + sealed > 0 {
                tracing::info!(
                    rewrapped,
                    sealed,
                    "provider credentials brought to the master key"
                );
            }
        }
        self.reseal_for_edge(pool, writer, false).await?;
        Ok(())
    }

    /// Seals the plaintext credentials of every org (one transaction) and queues
    /// their records; the number of orgs changed.
    async fn seal_plaintext(&self, pool: &AnyPool, writer: &Writer) -> Result<usize, VaultError> {
        let mut tx = writer.begin(pool).await?;
        // Freed bytes (the plaintext's old cells) are zeroed, not left in the file.
        credentials::secure_delete(tx.conn(), true).await?;
        let rows = stored_config::all(tx.conn()).await?;
        let mut changed = 0;
        for (id, text) in rows {
            if plaintext_credentials(&text) == 0 {
                continue;
            }
            let mut cfg =
                OrgConfig::from_stored(&text).map_err(|_| VaultError::Config(id.clone()))?;
            if self.seal_credentials(tx.conn(), &id, &mut cfg).await? == 0 {
                continue;
            }
            let text = serde_json::to_string(&cfg).map_err(|_| VaultError::Config(id.clone()))?;
            stored_config::reseal(tx.conn(), &id, &text).await?;
            tx.enqueue("org", &id).await?;
            changed += 1;
        }
        credentials::secure_delete(tx.conn(), false).await?;
        tx.commit().await?;
        if changed > 0 {
            // Old page images with the plaintext leave the WAL too.
            credentials::checkpoint(pool).await?;
        }
        Ok(changed)
    }

    /// Re-wraps every data key not wrapped by the current master key (one
    /// transaction: all or nothing); the number re-wrapped. Credentials sealed
    /// under the data keys stay as they are.
    async fn rewrap_data_keys(&self, pool: &AnyPool, writer: &Writer) -> Result<usize, VaultError> {
        let master = self.master();
        let Some(current) = master.current().map(|k| k.id().to_string()) else {
            return Ok(0);
        };
        let mut tx = writer.begin(pool).await?;
        let rows = credentials::data_keys(tx.conn()).await?;
        let mut rewrapped = 0;
        for (org_id, wrapped) in rows {
            if key_id(&wrapped) == Some(current.as_str()) {
                continue;
            }
            let aad = data_key_aad(&org_id);
            let raw = master.open(&wrapped, &aad).map_err(master_err)?;
            let again = master.seal(nonce(), &raw, &aad).map_err(master_err)?;
            credentials::rewrap_data_key(tx.conn(), &org_id, &again, now_ms()).await?;
            rewrapped += 1;
        }
        tx.commit().await?;
        Ok(rewrapped)
    }

    /// Reads the master key again from its file (a fixed ring stays as it is)
    /// and re-wraps every data key under its first key; the number re-wrapped.
    /// While it runs the old keys still open (nothing in flight fails); if any
    /// data key does not open, nothing changes and the old ring stays in use.
    pub async fn rotate_master(
        &self,
        pool: &AnyPool,
        writer: &Writer,
    ) -> Result<usize, VaultError> {
        let old = self.master();
        let new = match self.master_source {
            KeySource::None => old.clone(),
            _ => self.master_source.load(MASTER)?,
        };
        if new.is_empty() {
            return Err(master_err(SealError::NoKey));
        }
        self.set_master(new.with_fallback(&old));
        match self.rewrap_data_keys(pool, writer).await {
            Ok(n) => {
                self.set_master(new);
                Ok(n)
            }
            Err(e) => {
                self.set_master(old);
                Err(e)
            }
        }
    }

    fn set_master(&self, ring: KeyRing) {
        *self.master.write().unwrap_or_else(|e| e.into_inner()) = ring;
    }

    /// Queues the record of every org with a credential so the pushers seal it
    /// under the current edge key; without `force`, only when the current key is
    /// not the one the records were last sealed under. The number of orgs queued.
    pub async fn reseal_for_edge(
        &self,
        pool: &AnyPool,
        writer: &Writer,
        force: bool,
    ) -> Result<usize, VaultError> {
        let edge = self.edge();
        let Some(current) = edge.current().map(|k| k.id().to_string()) else {
            return Ok(0);
        };
        let mut tx = writer.begin(pool).await?;
        let last = credentials::edge_sealing(tx.conn()).await?;
        if !force && last.as_deref() == Some(current.as_str()) {
            return Ok(0);
        }
        let orgs: Vec<String> = stored_config::all(tx.conn())
            .await?
            .into_iter()
            .filter(|(_, text)| has_credentials(text))
            .map(|(id, _)| id)
            .collect();
        for id in &orgs {
            tx.enqueue("org", id).await?;
        }
        credentials::set_edge_sealing(tx.conn(), &current, now_ms()).await?;
        tx.commit().await?;
        Ok(orgs.len())
    }
}

/// The providers' `api_key` values of a stored config document, read loosely: a
/// document this version cannot parse still has its credentials found.
fn stored_api_keys(text: &str) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    doc.get("providers")
        .and_then(serde_json::Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("api_key").cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// How many credentials of a stored config are in plaintext (not sealed).
fn plaintext_credentials(text: &str) -> usize {
    stored_api_keys(text)
        .iter()
        .filter(|k| !k.is_null() && !k.as_str().is_some_and(is_sealed))
        .count()
}

/// Whether a stored config holds any credential.
fn has_credentials(text: &str) -> bool {
    stored_api_keys(text).iter().any(|k| !k.is_null())
}

/// One key ring as the key status shows it: ids only, never key bytes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RingView {
    /// Whether any key is configured.
    pub configured: bool,
    /// The key that seals.
    pub current: Option<String>,
    /// Every key id, the sealing one first.
    pub key_ids: Vec<String>,
}

impl RingView {
    fn of(ring: &KeyRing) -> RingView {
        RingView {
            configured: !ring.is_empty(),
            current: ring.current().map(|k| k.id().to_string()),
            key_ids: ring.ids().map(str::to_string).collect(),
        }
    }
}

/// `GET /api/platform/keys` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyStatus {
    /// The master key ring.
    pub master: RingView,
    /// The edge key ring.
    pub edge: RingView,
    /// Data keys per id of the master key wrapping them.
    pub data_keys_by_master_key: BTreeMap<String, i64>,
    /// The edge key the pushed org records were last sealed under.
    pub records_sealed_under: Option<String>,
}

async fn key_status(st: &AppState) -> ApiResult<KeyStatus> {
    let wrapped = credentials::wrapped_data_keys(&st.db).await?;
    let mut by_key: BTreeMap<String, i64> = BTreeMap::new();
    for w in &wrapped {
        *by_key
            .entry(key_id(w).unwrap_or("?").to_string())
            .or_default() += 1;
    }
    let records_sealed_under = credentials::edge_sealing(&st.db).await?;
    Ok(KeyStatus {
        master: RingView::of(&st.vault.master()),
        edge: RingView::of(&st.vault.edge()),
        data_keys_by_master_key: by_key,
        records_sealed_under,
    })
}

/// `GET /api/platform/keys`: key ids in use, never keys (platform admin).
#[utoipa::path(
    get,
    path = "/api/platform/keys",
    tag = "keys-management",
    summary = "Key ids of the master key and edge key rings, data keys per master key, and the edge key pushed records are sealed under; never key material (platform admin).",
    responses((status = 200, description = "OK", body = KeyStatus)),
    security(("bearer" = [])),
)]
pub async fn get_keys(State(st): State<AppState>, actor: Actor) -> ApiResult<Json<KeyStatus>> {
    actor.require_platform_admin()?;
    Ok(Json(key_status(&st).await?))
}

fn key_error(code: &'static str, e: &VaultError) -> ApiError {
    // Key errors name files and key ids only, never key bytes.
    tracing::error!(error = %e, "key rotation failed");
    ApiError::unavailable(code, format!("{e}; nothing was changed"))
}

/// `POST /api/platform/master-key/rotate`: reads the master key file again and
/// re-wraps every data key under its first key (platform admin).
#[utoipa::path(
    post,
    path = "/api/platform/master-key/rotate",
    tag = "keys-management",
    summary = "Read the master key file again and re-wrap every org data key under its first key, while serving (platform admin).",
    responses((status = 200, description = "OK", body = KeyStatus)),
    security(("bearer" = [])),
)]
pub async fn rotate_master_key(
    State(st): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<KeyStatus>> {
    actor.require_platform_admin()?;
    let n = st
        .vault
        .rotate_master(&st.db, &st.writer)
        .await
        .map_err(|e| key_error("master_key_invalid", &e))?;
    tracing::info!(rewrapped = n, "master key rotated");
    Ok(Json(key_status(&st).await?))
}

/// `POST /api/platform/edge-keys/rotate`: reads the edge key file again and
/// re-seals and re-pushes every org record with a credential under its first key
/// (platform admin).
#[utoipa::path(
    post,
    path = "/api/platform/edge-keys/rotate",
    tag = "keys-management",
    summary = "Read the edge key file again and re-seal and re-push every org record with a credential under its first key (platform admin).",
    responses((status = 200, description = "OK", body = KeyStatus)),
    security(("bearer" = [])),
)]
pub async fn rotate_edge_keys(
    State(st): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<KeyStatus>> {
    actor.require_platform_admin()?;
    st.vault
        .reload_edge()
        .map_err(|e| key_error("edge_key_invalid", &e))?;
    if st.vault.edge().is_empty() {
        return Err(ApiError::unavailable(
            "edge_key_missing",
            "no edge key is configured (TOLLGATE_EDGE_KEYS or --edge-key-file)",
        ));
    }
    let n = st
        .vault
        .reseal_for_edge(&st.db, &st.writer, true)
        .await
        .map_err(|e| key_error("edge_key_invalid", &e))?;
    tracing::info!(
        orgs = n,
        "edge key rotated; org records queued for re-sealing"
    );
    Ok(Json(key_status(&st).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_credentials_are_found_in_the_document() {
        let ring = KeyRing::of(vec![SealKey::new(DATA_KEY_ID, [7; KEY_LEN]).unwrap()]);
        let sealed = ring.seal(nonce(), b"sk-upstream", b"aad").unwrap();
        let doc = serde_json::json!({"providers": [
            {"name": "a", "base_url": "https://a.example/v1", "api_key": "sk-plain"},
            {"name": "b", "base_url": "https://b.example/v1", "api_key": sealed},
            {"name": "c", "base_url": "https://c.example/v1"},
        ]})
        .to_string();
        assert_eq!(plaintext_credentials(&doc), 1);
        assert!(has_credentials(&doc));
        let none = r#"{"providers": [{"name": "c", "base_url": "https://c.example/v1"}]}"#;
        assert_eq!(plaintext_credentials(none), 0);
        assert!(!has_credentials(none) && !has_credentials("{}"));
        // A prefix alone is not a sealed value.
        let fake = r#"{"providers": [{"name": "a", "base_url": "u", "api_key": "tg1.x"}]}"#;
        assert_eq!(plaintext_credentials(fake), 1);
    }
}
