//! `sealgate audit ...`: check the gateway's hash-chained audit trail.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sealgate::audit;

use super::Failure;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the hash chain of an audit file (JSON Lines written by the gateway).
    ///
    /// Every record carries the SHA-256 of the one before it: an edited, removed or reordered
    /// record breaks the chain at that line. Truncation at the end cannot be seen from the file
    /// alone: keep the head hash this command prints and pass it back with --head.
    #[command(
        after_help = "Exit status: 0 the chain is intact (prints the record count and head hash), 1 it is broken (the line and why on stderr), 2 error (unreadable file)."
    )]
    Verify(VerifyArgs),
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The audit file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// A head hash recorded earlier: the chain must still contain it (detects truncation and
    /// a rewritten history).
    #[arg(long, value_name = "HASH")]
    head: Option<String>,
}

pub(crate) fn run(command: AuditCommand) -> Result<u8, Failure> {
    match command {
        AuditCommand::Verify(a) => verify(a),
    }
}

fn verify(args: VerifyArgs) -> Result<u8, Failure> {
    let file = std::fs::File::open(&args.file)
        .map_err(|e| Failure(2, format!("{}: {e}", args.file.display())))?;
    let mut seen = Vec::new();
    let reader = std::io::BufReader::new(file);
    match audit::verify_chain_with(reader, |_, hash| seen.push(hash.to_string())) {
        Ok(head) => {
            if let Some(want) = &args.head {
                let want = want.trim().to_ascii_lowercase();
                if !seen.contains(&want) {
                    eprintln!(
                        "audit: BROKEN: head {want} is not in the chain (truncated or rewritten)"
                    );
                    return Ok(1);
                }
            }
            println!("audit: ok: {} records, head {}", head.records, head.head);
            Ok(0)
        }
        Err(sealgate::Error::AuditChain { line, reason }) => {
            eprintln!("audit: BROKEN at line {line}: {reason}");
            Ok(1)
        }
        Err(e) => Err(Failure(2, format!("{}: {e}", args.file.display()))),
    }
}
