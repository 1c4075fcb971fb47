//! The quick-start records file: what loads, and errors that name the entry.

mod common;

use common::{OPEN_KEY, records, write_json};
use edge_host::{EdgeConfig, EdgeError, EdgeServer, KvConfig};
use serde_json::{Value, json};

fn error_of(file: &Value) -> String {
    match edge_host::records::parse(&file.to_string()) {
        Ok(_) => panic!("expected an error for {file}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_valid_file_yields_every_record_with_hashed_keys() {
    let entries = edge_host::records::parse(&records("http://p/v1", &[]).to_string()).unwrap();
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&"org:o1"));
    assert!(keys.contains(&policy::kv::KeyName::of(OPEN_KEY).as_str()));
    assert!(
        !entries
            .iter()
            .any(|(k, v)| k.contains(OPEN_KEY) || String::from_utf8_lossy(v).contains(OPEN_KEY))
    );
}

#[test]
fn errors_name_the_entry() {
    let mut f = records("http://p/v1", &[]);
    f["orgs"][0]["surprise"] = json!(1);
    let e = error_of(&f);
    assert!(e.starts_with("orgs[0]") && e.contains("surprise"), "{e}");

    let mut f = records("http://p/v1", &[("sk-tg-second", "k2", json!({}))]);
    f["keys"][1]["record"]["org_id"] = json!("ghost");
    let e = error_of(&f);
    assert!(e.starts_with("keys[1] (k2)") && e.contains("ghost"), "{e}");

    let mut f = records("http://p/v1", &[]);
    f["keys"][0]["record"]["schema_version"] = json!(7);
    assert!(error_of(&f).contains("schema_version is 7"));

    let mut f = records("http://p/v1", &[]);
    f["keys"][0]["secret"] = json!("plain-secret");
    let e = error_of(&f);
    assert!(e.contains("sk-tg-") && !e.contains("plain-secret"), "{e}");

    let f = records("http://p/v1", &[(OPEN_KEY, "k-dup", json!({}))]);
    assert!(error_of(&f).contains("duplicate secret"));

    let mut f = records("http://p/v1", &[]);
    f["keys"][0]["record"]["team_id"] = json!("t-missing");
    assert!(error_of(&f).contains("team \"t-missing\" is not in teams"));

    assert!(error_of(&json!({"org": []})).starts_with("the file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_fails_start_and_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let mut f = records("http://p/v1", &[("sk-tg-second", "k2", json!({}))]);
    f["keys"][1]["record"]["status"] = json!("paused");
    let file = write_json(&f);
    let err = EdgeServer::start(EdgeConfig {
        kv: KvConfig::Sqlite(db.clone()),
        records: Some(file.path().into()),
        ..EdgeConfig::default()
    })
    .await
    .err()
    .expect("start fails");
    assert!(matches!(err, EdgeError::Records(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("keys[1]"), "{message}");
    let kv = edge_host::Kv::open(&KvConfig::Sqlite(db)).unwrap();
    assert!(kv.list_keys().await.unwrap().is_empty());
}
