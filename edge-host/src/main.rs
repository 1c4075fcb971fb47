//! `tollgate-edge`: serve the gateway component locally.

fn main() -> anyhow::Result<()> {
    edge_host::cli::main()
}
