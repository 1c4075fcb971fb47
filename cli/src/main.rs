//! `tollgate`: `tollgate up` runs the whole gateway locally; `tollgate orgs|keys|
//! members|agents …` drive the admin API from the command line.

mod admin;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tollgate: multi-tenant LLM-inference gateway.
#[derive(Parser, Debug)]
#[command(name = "tollgate", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the admin API and the local edge runtime together.
    Up(up::UpArgs),
    /// Organizations.
    Orgs {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        cmd: admin::orgs::Orgs,
    },
    /// Virtual keys.
    Keys {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        cmd: admin::keys::Keys,
    },
    /// Members of an organization, and invitations.
    Members {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        cmd: admin::members::Members,
    },
    /// AI agents.
    Agents {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        cmd: admin::agents::Agents,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Up(args) => {
            telemetry::init_logs(args.log_format, "info,wasmtime=warn,cranelift=warn");
            return match up::up(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Orgs { conn, cmd } => cmd.run(&conn).await,
        Command::Keys { conn, cmd } => cmd.run(&conn).await,
        Command::Members { conn, cmd } => cmd.run(&conn).await,
        Command::Agents { conn, cmd } => cmd.run(&conn).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
