//! Support for Sealgate's interop tests: finding the real tools, and a throwaway PKI made with
//! the `openssl` command line at test time.
//!
//! A test that needs a tool calls [`require`]: when the tool is missing it prints a notice and
//! the test returns early, except under `CI=true`, where a missing tool fails the test.

// Test support: a failed set-up step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

// The root README's library example is compiled here, so that it cannot rot.
#[doc = include_str!("../../README.md")]
#[allow(dead_code)]
mod readme {}

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// True when running under CI (`CI=true`), where missing tools are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Check that `tool` can be run. Returns false (after printing a notice) when it is missing
/// locally; panics under CI so that a missing tool never passes silently.
pub fn require(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(tool)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !ok {
        assert!(
            !in_ci(),
            "{tool} is required under CI=true but was not found"
        );
        eprintln!("NOTICE: skipping: {tool} not installed");
    }
    ok
}

/// Run a command, panicking with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run a command and return its output whatever the exit status.
pub fn run_unchecked(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `openssl` with arguments.
pub fn openssl(args: &[&str]) -> Command {
    let mut c = Command::new("openssl");
    c.args(args);
    c
}

/// The `openssl` binary named by `SEALGATE_OPENSSL_PQ`, version 3.6 or later: the first with
/// CMS KEMRecipientInfo (3.5 has ML-KEM keys only; Debian 12's 3.0 neither). tests/openssl-pq.sh
/// builds one. Like [`require`]: `None` with a notice when it is not set locally, a panic under
/// CI or when it is set but is not a working 3.6 or later.
pub fn openssl_pq() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("SEALGATE_OPENSSL_PQ").filter(|p| !p.is_empty()) else {
        assert!(
            !in_ci(),
            "SEALGATE_OPENSSL_PQ is required under CI=true (set it to the output of tests/openssl-pq.sh)"
        );
        eprintln!(
            "NOTICE: skipping: SEALGATE_OPENSSL_PQ not set (SEALGATE_OPENSSL_PQ=$(tests/openssl-pq.sh))"
        );
        return None;
    };
    let path = PathBuf::from(path);
    let out = run(Command::new(&path).arg("version"));
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    // "OpenSSL 3.6.3 9 Jun 2026 (Library: OpenSSL 3.6.3 9 Jun 2026)"
    let (major, minor) = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| {
            let mut it = v.split('.').map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or_else(|| panic!("{}: cannot read the version in {version:?}", path.display()));
    assert!(
        (major, minor) >= (3, 6),
        "{} is {version}, CMS KEMRecipientInfo needs OpenSSL 3.6 or later",
        path.display()
    );
    Some(path)
}

/// `openssl` (the binary from [`openssl_pq`]) with arguments, run in `dir`.
pub fn openssl_pq_cmd(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir).args(args);
    c
}

/// The ML-KEM private-key forms OpenSSL 3.6 writes (`ml-kem.output_formats`, RFC 9935 §6) that
/// [`Pki::ml_kem_user`] makes besides its default: the seed alone and the expanded key alone.
pub const ML_KEM_KEY_FORMS: [&str; 2] = ["seed-only", "priv-only"];

/// An ML-KEM user made entirely by OpenSSL 3.6 ([`Pki::ml_kem_user`]).
#[derive(Debug, Clone)]
pub struct MlKemUser {
    /// OpenSSL's name of the parameter set ("ML-KEM-768").
    pub alg: String,
    /// Mail address in the certificate's SAN.
    pub email: String,
    /// (form, PKCS#8 PEM path): "default" (what `genpkey` writes), then each of
    /// [`ML_KEM_KEY_FORMS`].
    pub keys: Vec<(String, PathBuf)>,
    /// PEM certificate, issued by the intermediate.
    pub cert: PathBuf,
}

impl MlKemUser {
    /// The key file as `genpkey` wrote it.
    pub fn key(&self) -> &Path {
        &self.keys[0].1
    }
}

/// The ML-DSA private-key forms OpenSSL 3.6 writes (`ml-dsa.output_formats`, RFC 9881 §6) that
/// [`Pki::ml_dsa_user`] makes besides its default (`seed-priv`, the `both` arm): the seed alone
/// and the expanded key alone.
pub const ML_DSA_KEY_FORMS: [&str; 2] = ["seed-only", "priv-only"];

/// An ML-DSA user made entirely by OpenSSL 3.6 ([`Pki::ml_dsa_user`]).
#[derive(Debug, Clone)]
pub struct MlDsaUser {
    /// OpenSSL's name of the parameter set ("ML-DSA-65").
    pub alg: String,
    /// Mail address in the certificate's SAN.
    pub email: String,
    /// (form, PKCS#8 PEM path): "default" (what `genpkey` writes), then each of
    /// [`ML_DSA_KEY_FORMS`].
    pub keys: Vec<(String, PathBuf)>,
    /// PEM certificate, issued by the ML-DSA CA of [`Pki::ml_dsa_ca`].
    pub cert: PathBuf,
}

impl MlDsaUser {
    /// The key file as `genpkey` wrote it.
    pub fn key(&self) -> &Path {
        &self.keys[0].1
    }
}

/// Key types the test PKI issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA 2048.
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
}

impl KeyType {
    fn genpkey_args(self) -> Vec<&'static str> {
        match self {
            KeyType::Rsa2048 => vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            KeyType::Rsa3072 => vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
            KeyType::P256 => vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::P384 => vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        }
    }
}

/// A user of the test PKI: key, certificate, and a PKCS#12 bundle.
#[derive(Debug, Clone)]
pub struct User {
    /// Mail address in the certificate's SAN.
    pub email: String,
    /// PKCS#8 PEM private key (unencrypted).
    pub key: PathBuf,
    /// PEM certificate.
    pub cert: PathBuf,
    /// PKCS#12 with key, cert and the intermediate (password [`P12_PASSWORD`]).
    pub p12: PathBuf,
}

/// Password of every generated PKCS#12 file.
pub const P12_PASSWORD: &str = "test-p12-password";

/// A root CA, an intermediate CA and users, generated with openssl in a temp dir.
#[derive(Debug)]
pub struct Pki {
    /// The directory holding every file (deleted on drop).
    pub dir: tempfile::TempDir,
    /// Root CA certificate (the trust anchor).
    pub root: PathBuf,
    /// Intermediate CA certificate.
    pub intermediate: PathBuf,
    /// Root + intermediate in one PEM (for tools that want the whole chain).
    pub ca_bundle: PathBuf,
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n";

impl Pki {
    /// Make a root and an intermediate CA (RSA-2048).
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("ca.ext"), CA_EXT).expect("write");
        genkey(d, "root.key", KeyType::Rsa2048);
        run(openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/O=Sealgate Test/CN=Test Root CA",
            "-days",
            "3650",
            "-sha256",
            "-out",
            "root.pem",
            "-extensions",
            "v3_ca",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .current_dir(d));
        genkey(d, "int.key", KeyType::Rsa2048);
        run(openssl(&[
            "req",
            "-new",
            "-key",
            "int.key",
            "-subj",
            "/O=Sealgate Test/CN=Test Intermediate CA",
            "-out",
            "int.csr",
        ])
        .current_dir(d));
        run(openssl(&[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-sha256",
            "-extfile",
            "ca.ext",
            "-out",
            "int.pem",
        ])
        .current_dir(d));
        let bundle = [
            std::fs::read(d.join("int.pem")).expect("read"),
            std::fs::read(d.join("root.pem")).expect("read"),
        ]
        .concat();
        std::fs::write(d.join("ca-bundle.pem"), bundle).expect("write");
        Pki {
            root: d.join("root.pem"),
            intermediate: d.join("int.pem"),
            ca_bundle: d.join("ca-bundle.pem"),
            dir,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Issue a user certificate (emailProtection, SAN rfc822Name) signed by the intermediate.
    pub fn user(&self, name: &str, email: &str, kt: KeyType) -> User {
        self.user_with(name, email, kt, "")
    }

    /// Like [`Pki::user`] with extra extension lines (e.g. to change keyUsage).
    pub fn user_with(&self, name: &str, email: &str, kt: KeyType, extra_ext: &str) -> User {
        let d = self.path();
        let key_usage = match kt {
            KeyType::Rsa2048 | KeyType::Rsa3072 => {
                "digitalSignature,nonRepudiation,keyEncipherment"
            }
            KeyType::P256 | KeyType::P384 => "digitalSignature,nonRepudiation,keyAgreement",
        };
        let ext = if extra_ext.contains("keyUsage") {
            format!(
                "basicConstraints=CA:FALSE\nsubjectAltName=email:{email}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n{extra_ext}\n"
            )
        } else {
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage={key_usage}\nextendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n{extra_ext}\n"
            )
        };
        std::fs::write(d.join(format!("{name}.ext")), ext).expect("write");
        genkey(d, &format!("{name}.key"), kt);
        run(openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/O=Sealgate Test/CN={name}/emailAddress={email}"),
            "-out",
            &format!("{name}.csr"),
        ])
        .current_dir(d));
        run(openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "int.pem",
            "-CAkey",
            "int.key",
            "-CAcreateserial",
            "-days",
            "825",
            "-sha256",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ])
        .current_dir(d));
        run(openssl(&[
            "pkcs12",
            "-export",
            "-inkey",
            &format!("{name}.key"),
            "-in",
            &format!("{name}.pem"),
            "-certfile",
            "int.pem",
            "-passout",
            &format!("pass:{P12_PASSWORD}"),
            "-out",
            &format!("{name}.p12"),
        ])
        .current_dir(d));
        User {
            email: email.to_string(),
            key: d.join(format!("{name}.key")),
            cert: d.join(format!("{name}.pem")),
            p12: d.join(format!("{name}.p12")),
        }
    }

    /// An ML-KEM user (`alg` = "ML-KEM-512", "ML-KEM-768" or "ML-KEM-1024") made with the
    /// OpenSSL 3.6 binary `bin`: `genpkey`, the key re-written in each of
    /// [`ML_KEM_KEY_FORMS`], and a certificate from the (RSA) intermediate with
    /// `x509 -new -force_pubkey` (a KEM key cannot sign its own request; RFC 9935 §5 allows
    /// keyUsage keyEncipherment only).
    pub fn ml_kem_user(&self, bin: &Path, alg: &str) -> MlKemUser {
        let d = self.path();
        let name = alg.to_lowercase();
        let email = format!("{name}@example.org");
        let key = format!("{name}.key");
        run(&mut openssl_pq_cmd(
            bin,
            d,
            &["genpkey", "-algorithm", alg, "-out", &key],
        ));
        let mut keys = vec![("default".to_string(), d.join(&key))];
        for form in ML_KEM_KEY_FORMS {
            let out = format!("{name}-{form}.key");
            let param = format!("ml-kem.output_formats={form}");
            run(&mut openssl_pq_cmd(
                bin,
                d,
                &["pkey", "-in", &key, "-provparam", &param, "-out", &out],
            ));
            keys.push((form.to_string(), d.join(out)));
        }
        let pub_pem = format!("{name}.pub.pem");
        run(&mut openssl_pq_cmd(
            bin,
            d,
            &["pkey", "-in", &key, "-pubout", "-out", &pub_pem],
        ));
        let ext = format!("{name}.ext");
        std::fs::write(
            d.join(&ext),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,keyEncipherment\n\
                 extendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
            ),
        )
        .expect("write");
        let cert = format!("{name}.pem");
        let subj = format!("/O=Sealgate Test/CN={alg} user/emailAddress={email}");
        run(&mut openssl_pq_cmd(
            bin,
            d,
            &[
                "x509",
                "-new",
                "-force_pubkey",
                &pub_pem,
                "-subj",
                &subj,
                "-CA",
                "int.pem",
                "-CAkey",
                "int.key",
                "-days",
                "30",
                "-sha256",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        ));
        MlKemUser {
            alg: alg.to_string(),
            email,
            keys,
            cert: d.join(cert),
        }
    }

    /// A self-signed ML-DSA-65 root CA made by OpenSSL 3.6 (`x509 -new`, so that no
    /// openssl.cnf is needed): `mldsa-ca.pem` with its key `mldsa-ca.key` in the PKI directory.
    /// Returns the certificate path.
    pub fn ml_dsa_ca(&self, bin: &Path) -> PathBuf {
        let d = self.path();
        run(&mut openssl_pq_cmd(
            bin,
            d,
            &["genpkey", "-algorithm", "ML-DSA-65", "-out", "mldsa-ca.key"],
        ));
        std::fs::write(
            d.join("mldsa-ca.ext"),
            format!("{CA_EXT}authorityKeyIdentifier=keyid\n"),
        )
        .expect("write");
        run(&mut openssl_pq_cmd(
            bin,
            d,
            &[
                "x509",
                "-new",
                "-key",
                "mldsa-ca.key",
                "-subj",
                "/O=Sealgate Test/CN=Test ML-DSA-65 Root CA",
                "-days",
                "30",
                "-extfile",
                "mldsa-ca.ext",
                "-out",
                "mldsa-ca.pem",
            ],
        ));
        d.join("mldsa-ca.pem")
    }

    /// An ML-DSA user (`alg` = "ML-DSA-44", "ML-DSA-65" or "ML-DSA-87") made by OpenSSL 3.6:
    /// `genpkey` (the default form), the same key re-written in each of [`ML_DSA_KEY_FORMS`],
    /// and a certificate (keyUsage digitalSignature+nonRepudiation, EKU emailProtection, SAN
    /// `<alg>@example.org`) issued by the ML-DSA CA of [`Pki::ml_dsa_ca`], which must exist.
    pub fn ml_dsa_user(&self, bin: &Path, alg: &str) -> MlDsaUser {
        let d = self.path();
        let name = alg.to_lowercase();
        let email = format!("{name}@example.org");
        let key = format!("{name}.key");
        run(&mut openssl_pq_cmd(
            bin,
            d,
            &["genpkey", "-algorithm", alg, "-out", &key],
        ));
        let mut keys = vec![("default".to_string(), d.join(&key))];
        for form in ML_DSA_KEY_FORMS {
            let out = format!("{name}-{form}.key");
            let param = format!("ml-dsa.output_formats={form}");
            run(&mut openssl_pq_cmd(
                bin,
                d,
                &["pkey", "-in", &key, "-provparam", &param, "-out", &out],
            ));
            keys.push((form.to_string(), d.join(out)));
        }
        let pub_pem = format!("{name}.pub.pem");
        run(&mut openssl_pq_cmd(
            bin,
            d,
            &["pkey", "-in", &key, "-pubout", "-out", &pub_pem],
        ));
        let ext = format!("{name}.ext");
        std::fs::write(
            d.join(&ext),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n\
                 extendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
            ),
        )
        .expect("write");
        let cert = format!("{name}.pem");
        let subj = format!("/O=Sealgate Test/CN={alg} user/emailAddress={email}");
        run(&mut openssl_pq_cmd(
            bin,
            d,
            &[
                "x509",
                "-new",
                "-force_pubkey",
                &pub_pem,
                "-subj",
                &subj,
                "-CA",
                "mldsa-ca.pem",
                "-CAkey",
                "mldsa-ca.key",
                "-days",
                "30",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        ));
        MlDsaUser {
            alg: alg.to_string(),
            email,
            keys,
            cert: d.join(cert),
        }
    }

    /// Write `data` to a file in the PKI directory and return its path.
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, data).expect("write");
        p
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

fn genkey(dir: &Path, out: &str, kt: KeyType) {
    let mut args = vec!["genpkey"];
    args.extend(kt.genpkey_args());
    args.extend(["-out", out]);
    run(openssl(&args).current_dir(dir));
}

/// A small multipart test message with an 8-bit text part and a binary attachment.
pub fn sample_message(from: &str, to: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Alice Sender <{from}>\r\nTo: <{to}>\r\nSubject: Quarterly figures\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <test-1@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         This is a multi-part message in MIME format.\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus Zürich. The figures are attached.\r\n--b1\r\n\
         Content-Type: application/octet-stream; name=\"figures.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"figures.bin\"\r\n\r\n"
    )
    .into_bytes();
    use std::fmt::Write as _;
    let bin: Vec<u8> = (0..3000u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut b64 = String::new();
    // simple base64 with 76-char lines
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut line = String::new();
    for chunk in bin.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                line.push(T[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                line.push('=');
            }
        }
        if line.len() >= 76 {
            let _ = write!(b64, "{line}\r\n");
            line.clear();
        }
    }
    if !line.is_empty() {
        let _ = write!(b64, "{line}\r\n");
    }
    m.extend_from_slice(b64.as_bytes());
    m.extend_from_slice(b"--b1--\r\n");
    m
}

/// A throwaway GnuPG home for gpgsm that trusts the PKI's root.
#[derive(Debug)]
pub struct Gpgsm {
    /// GNUPGHOME (deleted on drop, after the agent is stopped).
    pub home: tempfile::TempDir,
}

impl Gpgsm {
    /// Create a home, import the root and intermediate, and mark the root trusted.
    pub fn new(pki: &Pki) -> Gpgsm {
        // Short path: gpg-agent's socket path must fit in sockaddr_un.
        let home = tempfile::Builder::new()
            .prefix("sg-gpgsm")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let g = Gpgsm { home };
        std::fs::write(g.home.path().join("gpgsm.conf"), "disable-crl-checks\n").expect("write");
        run(g.cmd(&["--import"]).arg(&pki.root));
        run(g.cmd(&["--import"]).arg(&pki.intermediate));
        let fpr = run(openssl(&["x509", "-noout", "-fingerprint", "-sha1", "-in"]).arg(&pki.root));
        let fpr = String::from_utf8_lossy(&fpr.stdout);
        let fpr = fpr
            .trim()
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .to_string();
        std::fs::write(
            g.home.path().join("trustlist.txt"),
            format!("{fpr} S relax\n"),
        )
        .expect("write");
        g
    }

    /// `gpgsm --batch` with this home and the given arguments.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("gpgsm");
        c.env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--yes",
                "--disable-crl-checks",
                "--pinentry-mode",
                "loopback",
            ])
            .args(args);
        c
    }
}

impl Drop for Gpgsm {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// A throwaway GnuPG home for `gpg` with keys generated at test time.
#[derive(Debug)]
pub struct Gpg {
    /// GNUPGHOME (deleted on drop, after the agent is stopped).
    pub home: tempfile::TempDir,
}

/// A key generated by [`Gpg::gen_key`]: fingerprint and exported files.
#[derive(Debug, Clone)]
pub struct GpgKey {
    /// The mail address in its User ID.
    pub email: String,
    /// Primary key fingerprint (upper-case hex).
    pub fingerprint: String,
    /// Armored public certificate.
    pub public: PathBuf,
    /// Armored secret key (no passphrase).
    pub secret: PathBuf,
}

/// Key algorithms for [`Gpg::gen_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpgAlgo {
    /// RSA-3072 primary with an RSA-3072 encryption subkey.
    Rsa3072,
    /// Ed25519 primary with a Curve25519 encryption subkey.
    Ed25519,
}

impl Gpg {
    /// An empty home.
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("sg-gpg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        Gpg { home }
    }

    /// `gpg --batch` with this home, no passphrases, and the given arguments.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--yes",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--trust-model",
                "always",
            ])
            .args(args);
        c
    }

    /// Generate a key for `name <email>` and export it (public and secret, armored).
    pub fn gen_key(&self, name: &str, email: &str, algo: GpgAlgo) -> GpgKey {
        let uid = format!("{name} <{email}>");
        let (primary, sub) = match algo {
            GpgAlgo::Rsa3072 => ("rsa3072", "rsa3072"),
            GpgAlgo::Ed25519 => ("ed25519", "cv25519"),
        };
        run(&mut self.cmd(&["--quick-gen-key", &uid, primary, "sign,cert", "never"]));
        let out = run(&mut self.cmd(&["--with-colons", "--list-keys", email]));
        let listing = String::from_utf8_lossy(&out.stdout);
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("fingerprint")
            .to_string();
        run(&mut self.cmd(&["--quick-add-key", &fingerprint, sub, "encr", "never"]));
        let public = self.home.path().join(format!("{email}.pub.asc"));
        let secret = self.home.path().join(format!("{email}.sec.asc"));
        let out = run(&mut self.cmd(&["--armor", "--export", &fingerprint]));
        std::fs::write(&public, &out.stdout).expect("write");
        let out = run(&mut self.cmd(&["--armor", "--export-secret-keys", &fingerprint]));
        std::fs::write(&secret, &out.stdout).expect("write");
        GpgKey {
            email: email.to_string(),
            fingerprint,
            public,
            secret,
        }
    }

    /// Import a key file (public or secret).
    pub fn import(&self, path: &Path) {
        run(self.cmd(&["--import"]).arg(path));
    }

    /// Write `data` to a file in the home and return its path.
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.home.path().join(name);
        std::fs::write(&p, data).expect("write");
        p
    }
}

impl Default for Gpg {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

// Certificate lifecycle (issue 6): CRLs made by `openssl ca -gencrl`.

/// How [`Pki::crl`] makes its CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlVersion {
    /// v2 with a cRLNumber and authorityKeyIdentifier (what CAs publish).
    V2,
    /// v1: no extensions at all (OpenSSL writes v1 when no crlnumber file and no
    /// crl_extensions are configured).
    V1,
}

impl Pki {
    /// A CRL (PEM) issued by the intermediate CA that revokes `revoked` (users issued by
    /// [`Pki::user`]), made with `openssl ca -revoke` and `openssl ca -gencrl`; valid 30 days.
    /// `name` keeps the CA database of different CRLs apart.
    pub fn crl(&self, name: &str, revoked: &[&User], version: CrlVersion) -> PathBuf {
        let d = self.path();
        let db = format!("{name}.index.txt");
        let number = format!("{name}.crlnumber");
        std::fs::write(d.join(&db), "").expect("write");
        let (number_line, ext_line) = match version {
            CrlVersion::V2 => {
                std::fs::write(d.join(&number), "1000\n").expect("write");
                (
                    format!("crlnumber = {number}\n"),
                    "crl_extensions = crl_ext\n",
                )
            }
            CrlVersion::V1 => (String::new(), ""),
        };
        let conf = format!(
            "[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndatabase = {db}\n{number_line}\
             certificate = int.pem\nprivate_key = int.key\ndefault_md = sha256\n\
             default_crl_days = 30\n{ext_line}\n[ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n"
        );
        let conf_name = format!("{name}.ca.cnf");
        std::fs::write(d.join(&conf_name), conf).expect("write");
        for user in revoked {
            let mut cmd = openssl(&["ca", "-config", &conf_name, "-revoke"]);
            cmd.arg(&user.cert);
            if version == CrlVersion::V2 {
                // an entry extension (reasonCode) needs a v2 CRL
                cmd.args(["-crl_reason", "keyCompromise"]);
            }
            run(cmd.current_dir(d));
        }
        let out = format!("{name}.crl.pem");
        run(openssl(&["ca", "-config", &conf_name, "-gencrl", "-out", &out]).current_dir(d));
        d.join(out)
    }
}

/// Deterministic incompressible bytes (xorshift64*), for ZIP and bench inputs.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Deterministic English-like text (words of a fixed vocabulary with a skewed distribution,
/// sentences, lines of about 72 characters): compresses about as well as prose does.
pub fn pseudo_text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "of",
        "and",
        "to",
        "in",
        "a",
        "is",
        "that",
        "for",
        "it",
        "as",
        "was",
        "with",
        "be",
        "by",
        "on",
        "not",
        "he",
        "this",
        "are",
        "or",
        "his",
        "from",
        "at",
        "which",
        "but",
        "have",
        "an",
        "had",
        "they",
        "you",
        "were",
        "their",
        "one",
        "all",
        "we",
        "can",
        "her",
        "has",
        "there",
        "been",
        "if",
        "more",
        "when",
        "will",
        "would",
        "who",
        "so",
        "no",
        "message",
        "gateway",
        "encrypted",
        "certificate",
        "recipient",
        "sender",
        "password",
        "archive",
        "policy",
        "attachment",
        "quarterly",
        "figures",
        "report",
        "customer",
        "invoice",
        "contract",
        "meeting",
        "schedule",
        "project",
        "delivery",
        "payment",
        "account",
        "balance",
        "statement",
        "confidential",
        "department",
        "management",
        "information",
        "security",
        "network",
        "server",
        "office",
        "address",
        "telephone",
        "number",
        "agreement",
        "between",
        "parties",
        "shall",
        "under",
        "terms",
        "conditions",
        "following",
        "described",
        "herein",
        "provided",
        "however",
        "without",
        "written",
        "consent",
        "notice",
        "period",
        "thirty",
        "days",
        "before",
        "after",
        "during",
        "within",
        "upon",
        "request",
        "approval",
        "budget",
        "forecast",
        "revenue",
        "expenses",
        "growth",
        "market",
        "share",
        "product",
        "service",
        "support",
        "quality",
        "standard",
        "review",
        "update",
        "version",
        "release",
    ];
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut out = Vec::with_capacity(len + 80);
    let mut line = 0;
    let mut start_sentence = true;
    while out.len() < len {
        let r = next();
        // skew: small indices far more often (a rough Zipf law)
        let a = (r % WORDS.len() as u64) as usize;
        let b = ((r >> 20) % WORDS.len() as u64) as usize;
        let word = WORDS[a.min(b)];
        let mut w = word.to_string();
        if start_sentence {
            w[..1].make_ascii_uppercase();
            start_sentence = false;
        }
        if (r >> 40) % 11 == 0 {
            w.push('.');
            start_sentence = true;
        } else if (r >> 44) % 13 == 0 {
            w.push(',');
        } else if (r >> 48) % 97 == 0 {
            w.push_str(&format!(" {}", (r >> 52) % 10_000));
        }
        if line + w.len() + 1 > 72 {
            out.push(b'\n');
            line = 0;
        } else if line > 0 {
            out.push(b' ');
            line += 1;
        }
        out.extend_from_slice(w.as_bytes());
        line += w.len();
    }
    out.truncate(len);
    out
}

// Reading the messages the gateway writes (shared by the gateway, demo and CLI tests).

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every decoded text/plain body of a message, joined.
pub fn texts(raw: &[u8]) -> String {
    use sealgate::{Limits, mime::Entity};
    fn walk(e: &Entity<'_>, limits: &Limits, out: &mut String) {
        if e.content_type().is_multipart() {
            for p in e.parts(limits).expect("parts") {
                walk(&p, limits, out);
            }
        } else if e.content_type().mime_type == "text/plain" {
            out.push_str(&String::from_utf8_lossy(
                &e.decoded_body(limits).expect("body"),
            ));
        }
    }
    let limits = Limits::default();
    let mut out = String::new();
    walk(
        &Entity::parse(raw, &limits).expect("message"),
        &limits,
        &mut out,
    );
    out
}

/// The decoded body of the first part whose file name ends in `suffix` (panics if none).
pub fn attachment(raw: &[u8], suffix: &str) -> Vec<u8> {
    use sealgate::{Limits, mime::Entity};
    fn walk(e: &Entity<'_>, limits: &Limits, suffix: &str) -> Option<Vec<u8>> {
        if e.content_type().is_multipart() {
            return e
                .parts(limits)
                .expect("parts")
                .iter()
                .find_map(|p| walk(p, limits, suffix));
        }
        match e.filename() {
            Some(n) if n.ends_with(suffix) => Some(e.decoded_body(limits).expect("body")),
            _ => None,
        }
    }
    let limits = Limits::default();
    walk(
        &Entity::parse(raw, &limits).expect("message"),
        &limits,
        suffix,
    )
    .unwrap_or_else(|| panic!("no *{suffix} attachment"))
}

/// The password in a ZIP sender notification (the line after "password that opens the archive").
pub fn notification_password(notification: &[u8]) -> String {
    texts(notification)
        .lines()
        .skip_while(|l| !l.contains("password that opens the archive"))
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .expect("password in the notification")
        .to_string()
}
