//! `sealgate policy check`: what the policy decides for a message, per recipient, and why.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sealgate::Limits;
use sealgate::mime::Entity;
use sealgate::policy::{Decision, Envelope, Policy, inspect};

use super::{Failure, read_input, read_path};

/// Largest rule file read.
const RULES_CAP: usize = 64 * 1024 * 1024;

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Decide what to do with a message: per recipient, the actions (sign, encrypt best effort,
    /// ZIP, require TLS, reject, add header) and the rules that fired with their evidence.
    ///
    /// Without --from/--to the envelope comes from the From, To, Cc (and Bcc) header fields.
    /// Sensitive values are shown masked. --json prints the decision as the stable JSON
    /// document described in the sealgate-policy README.
    #[command(
        after_help = "Exit status: 0 a decision was made (whatever it says, reject included), 2 error (one line on stderr)."
    )]
    Check(CheckArgs),
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The rule file (TOML). List files it names are read relative to its directory.
    #[arg(long, value_name = "RULES.toml")]
    rules: PathBuf,
    /// The message (default: stdin).
    #[arg(long = "in", value_name = "MSG.eml")]
    input: Option<PathBuf>,
    /// Envelope sender (MAIL FROM); default: the From header's address.
    #[arg(long, value_name = "ADDR")]
    from: Option<String>,
    /// Envelope recipient (RCPT TO); repeat for more. Default: the To, Cc and Bcc addresses.
    #[arg(long, value_name = "ADDR")]
    to: Vec<String>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(c: PolicyCommand) -> Result<u8, Failure> {
    match c {
        PolicyCommand::Check(a) => check(a),
    }
}

fn check(a: CheckArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let rules = read_path(&a.rules, RULES_CAP)?;
    let text = std::str::from_utf8(&rules)
        .map_err(|_| Failure(2, format!("{}: not UTF-8", a.rules.display())))?;
    let base = a.rules.parent().map(|p| {
        if p.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            p
        }
    });
    let policy = Policy::from_toml(text, base)
        .map_err(|e| Failure(2, format!("{}: {e}", a.rules.display())))?;
    let raw = read_input(a.input.as_deref(), &limits)?;
    let message = Entity::parse(&raw, &limits).map_err(|e| {
        let what = a
            .input
            .as_ref()
            .map_or("stdin".to_string(), |p| p.display().to_string());
        Failure(2, format!("{what}: {e}"))
    })?;
    let headers = Envelope::from_headers(&message);
    let envelope = Envelope {
        mail_from: a.from.or(headers.mail_from),
        rcpt_to: if a.to.is_empty() {
            headers.rcpt_to
        } else {
            a.to
        },
    };
    if envelope.rcpt_to.is_empty() {
        return Err(Failure(
            2,
            "no recipients: give --to or a message with To/Cc fields".into(),
        ));
    }
    let inspection = inspect(&message, &limits);
    let decision = policy.decide(&message, &envelope, &inspection);
    if a.json {
        let json = serde_json::to_string_pretty(&decision)?;
        println!("{json}");
    } else {
        print!("{}", render(&decision));
    }
    Ok(0)
}

fn render(d: &Decision) -> String {
    let mut s = String::new();
    s.push_str(&format!("rules fired: {}\n", d.fired.join(", ")));
    for r in &d.recipients {
        s.push_str(&format!(
            "\nrecipient {} ({})\n",
            r.recipient,
            r.direction.name()
        ));
        for action in &r.actions {
            s.push_str(&format!("  action: {action}\n"));
        }
        for reason in &r.reasons {
            if reason.triggers.is_empty() {
                s.push_str(&format!("  rule {}\n", reason.rule));
            }
            for t in &reason.triggers {
                s.push_str(&format!(
                    "  rule {}: {} {} in {}\n",
                    reason.rule, t.condition, t.matched, t.location
                ));
            }
        }
    }
    if !d.uninspectable.is_empty() {
        s.push_str("\nnot inspected:\n");
        for u in &d.uninspectable {
            s.push_str(&format!("  {}: {}\n", u.location, u.reason));
        }
    }
    s
}
