//! A throwaway PostgreSQL cluster for tests, and the choice of the admin backend.
//!
//! `TOLLGATE_TEST_DB=postgres` runs the admin service's tests on PostgreSQL; unset
//! or `sqlite` keeps SQLite. On PostgreSQL, the first test of a process starts one
//! cluster (`initdb` in a temp dir, `postgres` on a free loopback port, durability
//! off for speed), and every test gets a fresh `CREATE DATABASE`. A watchdog stops
//! the cluster and removes its directory once the test process is gone, however it
//! ended.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that picks the backend of admin-service tests.
pub const BACKEND_ENV: &str = "TOLLGATE_TEST_DB";

/// The file in a test's directory that names its PostgreSQL database, so a restart
/// on the same directory finds the same state, as it would find `admin.db`.
const URL_FILE: &str = "postgres-url";

/// Which backend the admin database of this test run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDb {
    /// A SQLite file in the test's directory.
    Sqlite,
    /// A database on this process's throwaway PostgreSQL cluster.
    Postgres,
}

impl TestDb {
    /// The backend `TOLLGATE_TEST_DB` names (SQLite when unset).
    ///
    /// # Panics
    /// On any other value: a typo must not silently test SQLite twice.
    pub fn from_env() -> TestDb {
        match std::env::var(BACKEND_ENV).as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => TestDb::Sqlite,
            Ok("postgres") => TestDb::Postgres,
            Ok(other) => panic!("{BACKEND_ENV}={other}: expected `sqlite` or `postgres`"),
        }
    }
}

/// The admin database URL for a test whose files live in `dir`: `sqlite://dir/admin.db`,
/// or on PostgreSQL a fresh database, the same one again for the same `dir`.
pub fn database_url(dir: &Path) -> String {
    match TestDb::from_env() {
        TestDb::Sqlite => format!("sqlite://{}", dir.join("admin.db").display()),
        TestDb::Postgres => {
            let file = dir.join(URL_FILE);
            if let Ok(url) = std::fs::read_to_string(&file) {
                return url;
            }
            let url = fresh_database();
            std::fs::write(&file, &url).expect("the test directory is writable");
            url
        }
    }
}

/// A new, empty database on this process's cluster; returns its URL.
pub fn fresh_database() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let cluster = Cluster::get();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    cluster.psql("postgres", &format!("CREATE DATABASE {name}"));
    cluster.url(&name)
}

/// What a secret-grep of the admin database at `url` reads: on SQLite the raw bytes
/// of its file, write-ahead log and shared memory (absent ones read as empty); on
/// PostgreSQL every row of every table as text.
pub fn stored_bytes(url: &str) -> Vec<u8> {
    let Some(path) = url.strip_prefix("sqlite://") else {
        return table_text(url);
    };
    let path = path.split('?').next().unwrap_or_default();
    ["", "-wal", "-shm"]
        .iter()
        .flat_map(|suffix| std::fs::read(format!("{path}{suffix}")).unwrap_or_default())
        .collect()
}

/// Every row of every table of the PostgreSQL database at `url`, as text (one row per
/// line).
pub fn table_text(url: &str) -> Vec<u8> {
    let cluster = Cluster::get();
    let db = url
        .rsplit('/')
        .next()
        .expect("a database URL ends in its name");
    let tables = cluster.psql(
        db,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    let mut out = Vec::new();
    for table in tables.lines().filter(|t| !t.is_empty()) {
        let rows = cluster.psql(db, &format!("SELECT t::text FROM \"{table}\" t"));
        out.extend_from_slice(rows.as_bytes());
    }
    out
}

/// One PostgreSQL server for the whole test process.
struct Cluster {
    bin: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// The process's cluster, started on first use.
    fn get() -> &'static Cluster {
        static CLUSTER: OnceLock<Cluster> = OnceLock::new();
        CLUSTER.get_or_init(Cluster::start)
    }

    fn start() -> Cluster {
        let bin = binaries();
        // Kept past the process: the watchdog removes it after stopping the server.
        let dir = tempfile::Builder::new()
            .prefix("tollgate-pg-")
            .tempdir()
            .expect("a temp dir for the cluster")
            .keep();
        // initdb refuses to run as root: the cluster belongs to `postgres` then.
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir));
        }
        let data = dir.join("data");
        let mut cluster = Cluster {
            bin,
            socket_dir: dir.clone(),
            port: 0,
            as_postgres,
        };
        run(cluster
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data));
        cluster.port = free_port();
        watch(&cluster.bin, &dir, &data, as_postgres);
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB",
            dir.display(),
            cluster.port
        );
        run(cluster
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-w", "-s", "-o", &options, "-l"])
            .arg(dir.join("log"))
            .arg("start"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while cluster.try_psql("postgres", "SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: see {}/log",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// `postgres://` URL of database `name` on the loopback port.
    fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A PostgreSQL program, run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `sql` in database `db`; returns the unaligned, tuples-only output.
    fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }

    fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = self
            .command("psql")
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// The directory holding `initdb`, `pg_ctl` and `psql`: the newest Debian
/// `/usr/lib/postgresql/<v>/bin`, else wherever `PATH` finds `initdb`.
fn binaries() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").exists())
        .expect("PostgreSQL binaries (initdb, pg_ctl, psql): install postgresql")
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs `cmd` to completion; panics with its output on failure.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a detached watchdog that, once this process has exited, stops the server
/// (immediate shutdown: nothing in it is worth keeping) and removes `dir`. Test
/// binaries exit without running destructors, so nothing in-process could.
fn watch(bin: &Path, dir: &Path, data: &Path, as_postgres: bool) {
    let stop = if as_postgres {
        "runuser -u postgres -- \"$PG_CTL\" -D \"$DATA\" -m immediate -s stop"
    } else {
        "\"$PG_CTL\" -D \"$DATA\" -m immediate -s stop"
    };
    let script = format!(
        "while kill -0 \"$PARENT\" 2>/dev/null; do sleep 0.2; done; {stop}; rm -rf \"$DIR\""
    );
    // Never waited for: it is meant to outlive this process.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .env("PARENT", std::process::id().to_string())
        .env("PG_CTL", bin.join("pg_ctl"))
        .env("DATA", data)
        .env("DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C of the test run must not kill the watchdog.
        .process_group(0)
        .spawn()
        .expect("the cluster's watchdog starts");
}
