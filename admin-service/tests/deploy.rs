//! The production topology in `deploy/` is what the binaries accept: every variable
//! the env files set is one `tollgate-admin` reads or a Spin variable `spin.toml`
//! declares, every `${VAR}` a unit expands is set by that unit's env files, and
//! systemd accepts the units.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The names an env file assigns (comments and blank lines skipped).
fn assigned(rel: &str) -> BTreeSet<String> {
    read(rel)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, _) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{rel}: `{l}` is not NAME=value"));
            name.to_string()
        })
        .collect()
}

/// The env files a unit loads, as repository paths (`/etc/tollgate/x.env` is
/// `deploy/env/x.env`; the per-instance `%i` file taken for instance 1, and an
/// optional one only when the repository has it).
fn env_files(unit: &str) -> Vec<String> {
    read(unit)
        .lines()
        .filter_map(|l| l.strip_prefix("EnvironmentFile="))
        .filter_map(|f| {
            // `-` marks a file the unit may go without.
            let optional = f.starts_with('-');
            let f = f.trim_start_matches('-').replace("%i", "1");
            let name = f
                .strip_prefix("/etc/tollgate/")
                .expect("env files live in /etc/tollgate");
            let rel = format!("deploy/env/{name}");
            (!optional || repo().join(&rel).exists()).then_some(rel)
        })
        .collect()
}

#[test]
fn admin_env_files_set_only_what_tollgate_admin_reads() {
    let help = Command::new(env!("CARGO_BIN_EXE_tollgate-admin"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let read_by_binary: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|s| s.split(['=', ']']).next())
        .map(str::to_string)
        .collect();
    assert!(read_by_binary.contains("DATABASE_URL"), "{help}");
    let files = env_files("deploy/systemd/tollgate-admin@.service");
    assert_eq!(files.len(), 2, "shared and per-replica env files");
    for f in files.iter().chain(&["deploy/env/admin-2.env".to_string()]) {
        for name in assigned(f) {
            assert!(
                read_by_binary.contains(&name),
                "{f} sets {name}, which tollgate-admin does not read"
            );
        }
    }
    // The replicas must not collide: each per-replica file names its own address.
    assert_ne!(
        read("deploy/env/admin-1.env").lines().last(),
        read("deploy/env/admin-2.env").lines().last()
    );
}

#[test]
fn edge_env_sets_declared_spin_variables_and_what_the_unit_expands() {
    // The `[variables]` table of spin.toml: `name = { default = … }` lines.
    let manifest = read("spin.toml");
    let declared: BTreeSet<String> = manifest
        .split("[variables]")
        .nth(1)
        .expect("spin.toml declares variables")
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once(" = {"))
        .map(|(k, _)| format!("SPIN_VARIABLE_{}", k.trim().to_uppercase()))
        .collect();
    assert!(
        declared.contains("SPIN_VARIABLE_UPSTREAM_HOSTS"),
        "{declared:?}"
    );
    let unit = "deploy/systemd/tollgate-edge@.service";
    let set: BTreeSet<String> = env_files(unit).iter().flat_map(|f| assigned(f)).collect();
    for name in set.iter().filter(|n| n.starts_with("SPIN_VARIABLE_")) {
        assert!(
            declared.contains(name),
            "{name} names no variable of spin.toml"
        );
    }
    assert!(
        set.contains("SPIN_VARIABLE_EDGE_KEYS"),
        "nodes need the edge key ring"
    );
    for unit in [unit, "deploy/systemd/tollgate-admin@.service"] {
        let text = read(unit);
        let set: BTreeSet<String> = env_files(unit).iter().flat_map(|f| assigned(f)).collect();
        for expanded in text.split("${").skip(1).filter_map(|s| s.split('}').next()) {
            assert!(
                set.contains(expanded),
                "{unit} expands ${{{expanded}}}, which its env files do not set"
            );
        }
    }
    // The runtime config the unit names is the Redis one: nodes must share counters.
    assert!(read(unit).contains("--runtime-config-file /etc/tollgate/runtime-config.toml"));
    assert!(read("deploy/runtime-config.redis.toml").contains("type = \"redis\""));
}

#[test]
fn systemd_accepts_the_units() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        // The CI machine has it (Debian's systemd); elsewhere the check is skipped.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze not found in CI"
        );
        eprintln!("systemd-analyze not found: skipping the unit check");
        return;
    }
    // The units name install paths; point them at binaries that exist here, and
    // verify instance 1 of each template.
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for name in [
        "tollgate-admin@.service",
        "tollgate-edge@.service",
        "tollgate.target",
    ] {
        let text = read(&format!("deploy/systemd/{name}"))
            .replace(
                "/opt/tollgate/bin/tollgate-admin",
                env!("CARGO_BIN_EXE_tollgate-admin"),
            )
            .replace("/opt/tollgate/bin/spin", "/bin/true");
        let path = dir.path().join(name.replace("@.", "@3001."));
        std::fs::write(&path, text).unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}
