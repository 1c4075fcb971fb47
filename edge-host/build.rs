//! Builds the gateway component for `wasm32-wasip2` twice: with the `edge`
//! feature (batched counter moves through `tollgate:gateway/counters`), which the
//! host embeds, and for plain `wasi:keyvalue`, which `spin.toml` deploys and the
//! tests also run on this host. Both share one target directory, so the second
//! build recompiles only the component crate; the portable one is built last, so
//! the file `spin.toml` names is the portable build.
//!
//! The nested cargo uses its own target directory (`target/wasm`): the outer cargo
//! holds the lock on `target/`, so sharing it would deadlock. Its environment is
//! scrubbed of everything the outer cargo set for *this* crate's native build
//! (flags, wrappers, target, cfg/feature variables), which would otherwise leak
//! into the wasm build.
//!
//! `TOLLGATE_COMPONENT_WASM_PREBUILT=<path>` skips the nested builds and uses that
//! file as both (useful while the component does not compile mid-edit).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";
const PREBUILT: &str = "TOLLGATE_COMPONENT_WASM_PREBUILT";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("edge-host lives inside the workspace")
        .to_path_buf();

    println!("cargo:rerun-if-env-changed={PREBUILT}");
    println!("cargo:rerun-if-changed=build.rs");

    if let Some(prebuilt) = env::var_os(PREBUILT).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(prebuilt);
        let path = if path.is_absolute() {
            path
        } else {
            workspace.join(path)
        };
        if !path.is_file() {
            panic!("{PREBUILT}={} is not a file", path.display());
        }
        println!("cargo:rerun-if-changed={}", path.display());
        export(&path, &path);
        return;
    }

    for dir in [
        "gateway-component",
        "policy",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }

    check_target_installed();

    let target_dir = workspace.join("target").join("wasm");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // Copied away before the portable build replaces it.
    let edge = out_dir.join("gateway_component_edge.wasm");
    let built = build_component(&workspace, &target_dir, Some("edge"));
    std::fs::copy(&built, &edge)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", built.display(), edge.display()));
    let portable = build_component(&workspace, &target_dir, None);
    export(&edge, &portable);
}

/// Runs the nested cargo build of the component with `feature`, leaving it at
/// `<target_dir>/wasm32-wasip2/release/gateway_component.wasm`, which it returns.
fn build_component(workspace: &Path, target_dir: &Path, feature: Option<&str>) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "-p",
            "gateway-component",
            "--release",
            "--target",
            TARGET,
        ])
        .args(feature.map(|f| ["--features", f]).into_iter().flatten())
        .env("CARGO_TARGET_DIR", target_dir)
        // Whole-program optimisation of the guest, which runs on every request
        // (4-8 % less edge CPU); it costs seconds in this build only.
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        // Build-script stdout is parsed by cargo as directives; keep the nested
        // build's output on stderr, which cargo shows when the build fails.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit());
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let scrub = matches!(
            key,
            "CARGO_ENCODED_RUSTFLAGS"
                | "RUSTFLAGS"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "CARGO_BUILD_TARGET"
                | "CARGO_BUILD_TARGET_DIR"
                | "CARGO_BUILD_RUSTFLAGS"
                | "CARGO_TARGET_DIR"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "TARGET"
                | "HOST"
                | "OUT_DIR"
                | "OPT_LEVEL"
                | "PROFILE"
                | "DEBUG"
        ) || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_");
        if scrub {
            cmd.env_remove(key);
        }
    }

    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build gateway-component: {e}"));
    if !status.success() {
        panic!(
            "building gateway-component for {TARGET} (features: {feature:?}) failed ({status}); \
             see the output above, or set {PREBUILT}=<path to a .wasm> to embed a prebuilt \
             component"
        );
    }
    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join("gateway_component.wasm");
    if !wasm.is_file() {
        panic!(
            "the nested build succeeded but {} is missing",
            wasm.display()
        );
    }
    wasm
}

/// Points the library's `include_bytes!` at the edge build and names the
/// portable one.
fn export(edge: &Path, portable: &Path) {
    println!("cargo:rustc-env=TOLLGATE_COMPONENT_WASM={}", edge.display());
    println!(
        "cargo:rustc-env=TOLLGATE_PORTABLE_COMPONENT_WASM={}",
        portable.display()
    );
}
/// Fails early with the fix when the wasm target's standard library is missing,
/// instead of a wall of "can't find crate for `core`" from the nested build.
fn check_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .unwrap_or_else(|e| panic!("could not run rustc --print sysroot: {e}"));
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let libdir = Path::new(&sysroot)
        .join("lib")
        .join("rustlib")
        .join(TARGET)
        .join("lib");
    if !libdir.is_dir() {
        panic!(
            "the {TARGET} target is not installed for this toolchain ({sysroot}): \
             run `rustup target add {TARGET}`, or set {PREBUILT}=<path to a .wasm>"
        );
    }
}
