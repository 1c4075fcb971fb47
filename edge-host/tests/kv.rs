//! The key-value backends: semantics, atomic counters under concurrency, and
//! SQLite interop across connections ("processes").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edge_host::kv::{DEFAULT_STORE, KvBackend};
use edge_host::{Kv, KvConfig, KvError, MemoryKv, SqliteKv};

fn sqlite() -> (tempfile::TempDir, Kv) {
    let dir = tempfile::tempdir().unwrap();
    let kv = Kv::open(&KvConfig::Sqlite(dir.path().join("nested/dir/kv.db"))).unwrap();
    (dir, kv)
}

async fn semantics(kv: &Kv) {
    let b = kv.backend();
    assert_eq!(kv.get("a").await.unwrap(), None);
    kv.set("a", b"1").await.unwrap();
    kv.set("b", b"2").await.unwrap();
    kv.set("a", b"one").await.unwrap();
    assert_eq!(kv.get("a").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert!(b.exists(DEFAULT_STORE, "a").await.unwrap());
    assert!(
        !b.exists("other", "a").await.unwrap(),
        "stores are separate"
    );
    assert_eq!(kv.list_keys().await.unwrap(), vec!["a", "b"]);
    kv.delete("a").await.unwrap();
    kv.delete("a").await.unwrap();
    assert_eq!(kv.get("a").await.unwrap(), None);

    // Counters: i64 little-endian, missing = 0.
    assert_eq!(kv.increment("c", 5).await.unwrap(), 5);
    assert_eq!(kv.increment("c", -7).await.unwrap(), -2);
    assert_eq!(kv.get("c").await.unwrap().unwrap(), (-2i64).to_le_bytes());
    assert!(matches!(
        kv.increment("b", 1).await,
        Err(KvError::NotACounter { .. })
    ));
    kv.set("max", &i64::MAX.to_le_bytes()).await.unwrap();
    assert!(matches!(
        kv.increment("max", 1).await,
        Err(KvError::Overflow { .. })
    ));

    // Compare-and-swap.
    assert!(
        b.compare_and_swap(DEFAULT_STORE, "x", None, b"v1")
            .await
            .unwrap()
    );
    assert!(
        !b.compare_and_swap(DEFAULT_STORE, "x", None, b"v2")
            .await
            .unwrap()
    );
    assert!(
        b.compare_and_swap(DEFAULT_STORE, "x", Some(b"v1"), b"v2")
            .await
            .unwrap()
    );
    assert_eq!(kv.get("x").await.unwrap().as_deref(), Some(&b"v2"[..]));

    // Batch.
    let entries = vec![
        ("m1".to_string(), b"1".to_vec()),
        ("m2".to_string(), b"2".to_vec()),
    ];
    kv.set_many(&entries).await.unwrap();
    let keys = vec!["m1".to_string(), "nope".to_string(), "m2".to_string()];
    assert_eq!(
        b.get_many(DEFAULT_STORE, &keys).await.unwrap(),
        vec![Some(b"1".to_vec()), None, Some(b"2".to_vec())]
    );
    b.delete_many(DEFAULT_STORE, &keys).await.unwrap();
    assert_eq!(kv.get("m1").await.unwrap(), None);
}

#[tokio::test]
async fn memory_semantics() {
    semantics(&Kv::new(MemoryKv::new())).await;
}

#[tokio::test]
async fn sqlite_semantics() {
    let (_dir, kv) = sqlite();
    semantics(&kv).await;
}

async fn hammer(kvs: Vec<Kv>, tasks: usize, per_task: i64) -> i64 {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let kv = kvs[t % kvs.len()].clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                kv.increment("ctr:org:o1:rpm:1", 1).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    kvs[0].counter("ctr:org:o1:rpm:1").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_increment_is_atomic_across_tasks() {
    let kv = Kv::new(MemoryKv::new());
    assert_eq!(hammer(vec![kv], 32, 200).await, 32 * 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_increment_is_atomic_across_tasks_and_connections() {
    let (dir, kv) = sqlite();
    // A second, independent opener of the same file: what another process is.
    let other = Kv::open(&KvConfig::Sqlite(dir.path().join("nested/dir/kv.db"))).unwrap();
    assert_eq!(hammer(vec![kv, other], 16, 100).await, 16 * 100);
}

#[test]
fn sqlite_increment_is_atomic_across_os_threads_with_their_own_files_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let kv = SqliteKv::open(&path).unwrap();
                rt.block_on(async {
                    for _ in 0..100 {
                        kv.increment("s", "n", 2).await.unwrap();
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let kv = SqliteKv::open(&path).unwrap();
    let v = rt.block_on(kv.get("s", "n")).unwrap().unwrap();
    assert_eq!(i64::from_le_bytes(v.try_into().unwrap()), 800);
}

#[tokio::test]
async fn sqlite_uses_spins_table_and_reads_spin_integer_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let kv = Kv::new(SqliteKv::open(&path).unwrap());
    kv.set("org:o1", b"{}").await.unwrap();

    // Another writer (Spin, the admin service) using the table directly.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let stored: Vec<u8> = conn
        .query_row(
            "SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'org:o1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, b"{}");
    conn.execute(
        "INSERT INTO spin_key_value (store, key, value) VALUES ('default', 'spin-ctr', 41)",
        [],
    )
    .unwrap();
    assert_eq!(kv.counter("spin-ctr").await.unwrap(), 41);
    assert_eq!(kv.increment("spin-ctr", 1).await.unwrap(), 42);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn kv_config_parses() {
    assert_eq!("memory".parse::<KvConfig>().unwrap(), KvConfig::Memory);
    assert_eq!(
        "sqlite:.tollgate/x.db".parse::<KvConfig>().unwrap(),
        KvConfig::Sqlite(".tollgate/x.db".into())
    );
    assert!("sqlite:".parse::<KvConfig>().is_err());
    assert_eq!(
        "redis://10.0.0.7:6380/2".parse::<KvConfig>().unwrap(),
        KvConfig::Redis("redis://10.0.0.7:6380/2".into())
    );
    assert!("redis://h:notaport".parse::<KvConfig>().is_err());
    // The rejected value is not echoed: it may carry a password.
    let err = "postgres://u:hunter2@h/db".parse::<KvConfig>().unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
    let _ = Arc::new(MemoryKv::new());
}

#[tokio::test]
async fn reading_a_counter_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for kv in [
        Kv::open(&KvConfig::Memory).unwrap(),
        Kv::connect(&KvConfig::Sqlite(dir.path().join("kv.db")))
            .await
            .unwrap(),
    ] {
        assert_eq!(kv.counter("ctr:org:o:rpm:1").await.unwrap(), 0);
        assert_eq!(kv.increment("ctr:org:o:rpm:1", 0).await.unwrap(), 0);
        assert!(kv.list_keys().await.unwrap().is_empty());
        kv.increment("ctr:org:o:rpm:1", 3).await.unwrap();
        assert_eq!(kv.counter("ctr:org:o:rpm:1").await.unwrap(), 3);
    }
    assert!(Kv::open(&KvConfig::Redis("redis://127.0.0.1:1".into())).is_err());
}

/// Counters expire as Redis's do (a TTL from their creation), in memory and in
/// SQLite; records never do. A counter in the SQLite file without an expiry
/// (written by Spin, or before this edge ran) gets one at the next sweep.
#[tokio::test]
async fn counters_expire_in_memory_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_millis(400);
    let stores = [
        ("memory", Kv::new(MemoryKv::with_counter_ttl(ttl))),
        (
            "sqlite",
            Kv::new(SqliteKv::open_with_counter_ttl(&dir.path().join("kv.db"), ttl).unwrap()),
        ),
    ];
    for (name, kv) in stores {
        kv.set("org:o1", b"{}").await.unwrap();
        assert_eq!(kv.increment("ctr:org:o1:rpm:1", 3).await.unwrap(), 3);
        let sqlite = name == "sqlite";
        if sqlite {
            // As Spin writes a counter: into its table, with no expiry of ours.
            kv.set("ctr:legacy", &7i64.to_le_bytes()).await.unwrap();
        }
        tokio::time::sleep(ttl / 2).await;
        // Later increments do not extend the window's life (as INCRBY does not).
        assert_eq!(kv.increment("ctr:org:o1:rpm:1", 1).await.unwrap(), 4);
        tokio::time::sleep(ttl).await;
        // Traffic in a new window is what sweeps the old ones out.
        assert_eq!(
            kv.increment("ctr:org:o1:rpm:2", 1).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(kv.counter("ctr:org:o1:rpm:1").await.unwrap(), 0, "{name}");
        let mut expected = vec!["ctr:org:o1:rpm:2", "org:o1"];
        if sqlite {
            expected.insert(0, "ctr:legacy");
        }
        assert_eq!(
            kv.list_keys().await.unwrap(),
            expected,
            "{name}: the old window is gone; the record stays"
        );
        if !sqlite {
            continue;
        }
        // The unexpiring counter got a TTL at that sweep; two TTLs on it is gone too.
        tokio::time::sleep(ttl * 2 + ttl / 2).await;
        kv.increment("ctr:org:o1:rpm:3", 1).await.unwrap();
        assert_eq!(
            kv.list_keys().await.unwrap(),
            vec!["ctr:org:o1:rpm:3", "org:o1"],
            "{name}"
        );
    }
}

/// Events [`crash_child_writes_then_dies`] writes before it dies.
const CRASH_EVENTS: i64 = 200;

/// Run by [`a_crash_loses_no_committed_spool_write`] in a child process: writes
/// usage events and counts them as the component does (an event, then the pending
/// counter), then dies without closing the store or checkpointing the WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writes_then_dies() {
    let Some(path) = std::env::var_os("TOLLGATE_KV_CRASH_CHILD") else {
        return; // Only meaningful as the child.
    };
    let kv = Kv::open(&KvConfig::Sqlite(path.into())).unwrap();
    for i in 0..CRASH_EVENTS {
        kv.set(&format!("usage:{i:04}"), b"{}").await.unwrap();
        kv.increment("spool:pending", 1).await.unwrap();
    }
    // As a crash: no destructor, no checkpoint, no close.
    std::process::abort();
}

/// What a crash of the edge can lose from its SQLite store: nothing it committed.
/// Every write is its own committed transaction in the WAL (the checkpointer copies
/// the WAL back into the file later, off the request path); SQLite replays the WAL
/// on the next open. Only an OS crash or power cut can lose the commits of the last
/// moments (`synchronous = NORMAL` syncs the WAL at checkpoints, not per commit).
#[test]
fn a_crash_loses_no_committed_spool_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writes_then_dies", "--nocapture"])
        .env("TOLLGATE_KV_CRASH_CHILD", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child died abnormally: {status}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let kv = Kv::open(&KvConfig::Sqlite(path)).unwrap();
    let keys = rt.block_on(kv.list_keys()).unwrap();
    let events = keys.iter().filter(|k| k.starts_with("usage:")).count();
    assert_eq!(
        events as i64, CRASH_EVENTS,
        "every committed event survives"
    );
    assert_eq!(
        rt.block_on(kv.counter("spool:pending")).unwrap(),
        CRASH_EVENTS
    );
}

/// Another "process" takes the file's write lock and holds it for `ms`; returns
/// once the lock is taken, with the thread that releases it.
async fn hold_write_lock(path: std::path::PathBuf, ms: u64) -> std::thread::JoinHandle<()> {
    let locked = Arc::new(std::sync::Barrier::new(2));
    let holder = {
        let locked = locked.clone();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            locked.wait();
            std::thread::sleep(Duration::from_millis(ms));
            conn.execute_batch("COMMIT").unwrap();
        })
    };
    tokio::task::spawn_blocking(move || locked.wait())
        .await
        .unwrap();
    holder
}

/// A task that counts every 10 ms on the test's runtime: how long the runtime
/// kept running other tasks while one waited.
struct Ticker {
    ticks: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    async fn start() -> Ticker {
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = ticks.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        tokio::task::yield_now().await;
        Ticker { ticks, task }
    }

    /// Stops it; the ticks counted.
    fn stop(self) -> usize {
        self.task.abort();
        self.ticks.load(Ordering::Relaxed)
    }
}

/// A write waits for another connection's write lock (here: another "process"
/// holding it for 300 ms) instead of failing, and the wait does not stall the
/// runtime's one worker: other tasks run meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn sqlite_write_waits_for_another_writers_lock_off_the_worker() {
    let (dir, kv) = sqlite();
    let holder = hold_write_lock(dir.path().join("nested/dir/kv.db"), 300).await;
    let ticker = Ticker::start().await;
    let started = std::time::Instant::now();
    assert_eq!(kv.increment("n", 1).await.unwrap(), 1);
    assert!(started.elapsed() >= Duration::from_millis(200), "it waited");
    let ticked = ticker.stop();
    assert!(ticked >= 5, "only {ticked} ticks while the write waited");
    holder.join().unwrap();
}

/// A counter update (the one a request makes before and after forwarding) that
/// meets another process's write lock waits for it on the writer thread: the
/// serving thread, a single-threaded runtime, goes on with its other tasks, and
/// the update lands whole once the lock is free. With the lock free, the next one
/// is committed at once.
#[tokio::test(flavor = "current_thread")]
async fn sqlite_update_meeting_another_writers_lock_waits_off_the_serving_thread() {
    let (dir, kv) = sqlite();
    let holder = hold_write_lock(dir.path().join("nested/dir/kv.db"), 300).await;
    let ticker = Ticker::start().await;
    let moves = [("ctr:a".to_string(), 2), ("ctr:b".to_string(), 3)];
    let event = [("ev:1".to_string(), b"usage".to_vec())];
    let started = std::time::Instant::now();
    let moved = kv.backend().update(DEFAULT_STORE, &moves, &event).await;
    assert_eq!(moved.unwrap(), vec![2, 3]);
    assert!(started.elapsed() >= Duration::from_millis(200), "it waited");
    let ticked = ticker.stop();
    assert!(ticked >= 5, "only {ticked} ticks while the update waited");
    holder.join().unwrap();
    let moved = kv.backend().update(DEFAULT_STORE, &moves, &[]).await;
    assert_eq!(moved.unwrap(), vec![4, 6]);
    assert_eq!(
        kv.get("ev:1").await.unwrap().as_deref(),
        Some(&b"usage"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bulk_load_waits_for_another_writer_and_lands_whole() {
    let (dir, kv) = sqlite();
    let holder = hold_write_lock(dir.path().join("nested/dir/kv.db"), 200).await;
    // Over the bulk threshold: written on a connection of its own.
    let entries: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| (format!("rec:{i:04}"), format!("v{i}").into_bytes()))
        .collect();
    kv.set_many(&entries).await.unwrap();
    holder.join().unwrap();
    let keys = kv.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1000);
    assert_eq!(
        kv.get("rec:0999").await.unwrap().as_deref(),
        Some(&b"v999"[..])
    );
    // The pooled connections still serve.
    assert_eq!(kv.increment("n", 2).await.unwrap(), 2);
}
