//! `sealgate process`: one message through a gateway built from a configuration file.

use std::path::{Path, PathBuf};

use clap::Args;
use sealgate::config::GatewayConfig;
use sealgate::{Envelope, Outcome};

use super::{Failure, one_line, printable, read_input};

#[derive(Args)]
pub(crate) struct ProcessArgs {
    /// The gateway configuration (gateway.toml: key store, policy, audit file, MIKE address;
    /// see the sealgate crate's README for the format).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The envelope sender (MAIL FROM).
    #[arg(long, value_name = "ADDR")]
    from: String,
    /// The envelope recipients (RCPT TO); repeat the flag or list several after it.
    #[arg(long, value_name = "ADDR", required = true, num_args = 1..)]
    to: Vec<String>,
    /// The message (default: stdin).
    #[arg(long = "in", value_name = "MSG.eml")]
    input: Option<PathBuf>,
    /// Where every delivery and notification is written, as NN-<treatment>-<recipient>.eml
    /// (created if missing; files of the same name are overwritten).
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
}

pub(crate) fn run(a: ProcessArgs) -> Result<u8, Failure> {
    let config = GatewayConfig::load(&a.config)?;
    let input = read_input(a.input.as_deref(), &config.limits)?;
    let gateway = config.build()?;
    let envelope = Envelope {
        mail_from: Some(a.from.clone()),
        rcpt_to: a.to.clone(),
    };
    let outcome = gateway.process(&input, &envelope)?;
    let written = write_outcome(&outcome, &a.out_dir, "")?;
    for w in &written {
        println!(
            "{:<8} {:<28} {:<32} {}",
            w.kind,
            w.treatment,
            printable(&w.recipients.join(",")),
            w.path.display()
        );
    }
    for r in &outcome.refused {
        println!(
            "{:<8} {:<28} {:<32} {}",
            if r.by_policy { "rejected" } else { "held" },
            "-",
            printable(&r.recipient),
            one_line(&printable(&r.reason))
        );
    }
    Ok(if outcome.refused.is_empty() { 0 } else { 1 })
}

/// One file written for an outcome.
pub(crate) struct Written {
    /// `deliver` or `notify`.
    pub(crate) kind: &'static str,
    pub(crate) treatment: String,
    pub(crate) recipients: Vec<String>,
    pub(crate) path: PathBuf,
}

/// Write every delivery, then every notification, of `outcome` to `dir` as
/// `{prefix}NN-<treatment>-<first recipient>.eml`.
pub(crate) fn write_outcome(
    outcome: &Outcome,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<Written>, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure(2, format!("{}: {e}", dir.display())))?;
    let all = outcome
        .deliveries
        .iter()
        .map(|d| ("deliver", d))
        .chain(outcome.notifications.iter().map(|d| ("notify", d)));
    let mut out = Vec::new();
    for (n, (kind, d)) in all.enumerate() {
        let rcpt = d.recipients.first().map(String::as_str).unwrap_or("nobody");
        let path = dir.join(file_name(prefix, n + 1, &d.treatment, rcpt));
        std::fs::write(&path, &d.message)
            .map_err(|e| Failure(2, format!("{}: {e}", path.display())))?;
        out.push(Written {
            kind,
            treatment: d.treatment.clone(),
            recipients: d.recipients.clone(),
            path,
        });
    }
    Ok(out)
}

/// `NN-<treatment>-<first recipient>.eml`, with anything but letters, digits, `@`, `.`, `_`
/// and `-` replaced (addresses come from the envelope: no path separators may pass).
fn file_name(prefix: &str, n: usize, treatment: &str, rcpt: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .trim_start_matches('.')
            .chars()
            .take(80)
            .collect()
    };
    format!("{prefix}{n:02}-{}-{}.eml", clean(treatment), clean(rcpt))
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn file_names_cannot_leave_the_directory() {
        assert_eq!(
            file_name("", 1, "signed:smime+smime", "bob@partner.example"),
            "01-signed-smime-smime-bob@partner.example.eml"
        );
        let evil = file_name("m3-", 12, "zip", "../../etc/passwd");
        assert!(!evil.contains('/'), "{evil}");
        assert_eq!(evil, "m3-12-zip--..-etc-passwd.eml");
    }
}
