//! The `tollgate-edge` command line built as a binary of this crate, so tests that
//! run several edge processes get a fresh build of exactly the shipped edge.

use std::process::ExitCode;

fn main() -> ExitCode {
    match edge_host::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-edge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
