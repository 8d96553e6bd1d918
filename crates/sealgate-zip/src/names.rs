//! Entry names: made safe when we write them, checked when we read them.

use crate::{Error, Result};

/// Make `name` a safe relative entry name: `\` becomes `/`, empty, `.` and `..` components and
/// a drive letter are dropped, control characters become `_`. Never empty (`file`).
pub fn sanitize_name(name: &str) -> String {
    let unified = name.replace('\\', "/");
    let mut parts = Vec::new();
    for (i, part) in unified.split('/').enumerate() {
        let part = if i == 0 && part.len() >= 2 && part.as_bytes().get(1) == Some(&b':') {
            // "C:" or "C:name"
            part.get(2..).unwrap_or_default()
        } else {
            part
        };
        let clean: String = part
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        let clean = clean.trim();
        if clean.is_empty() || clean == "." || clean == ".." {
            continue;
        }
        parts.push(clean.to_string());
    }
    if parts.is_empty() {
        "file".to_string()
    } else {
        parts.join("/")
    }
}

/// Refuse a name read from an archive that could leave the extraction directory or confuse a
/// terminal. Returns the name with `\` read as `/` (as Windows tools write it).
pub(crate) fn check_name(name: &str) -> Result<String> {
    let unsafe_path = |reason| Error::UnsafePath {
        name: name.escape_debug().to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(unsafe_path("empty name"));
    }
    if name.chars().any(char::is_control) {
        return Err(unsafe_path("control character"));
    }
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(unsafe_path("absolute path"));
    }
    if unified.as_bytes().get(1) == Some(&b':') {
        return Err(unsafe_path("drive letter"));
    }
    if unified.split('/').any(|c| c == "..") {
        return Err(unsafe_path("parent directory component"));
    }
    Ok(unified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize() {
        assert_eq!(sanitize_name("../../etc/passwd"), "etc/passwd");
        assert_eq!(sanitize_name("/abs/x.txt"), "abs/x.txt");
        assert_eq!(sanitize_name("C:\\Users\\a.doc"), "Users/a.doc");
        assert_eq!(sanitize_name("a\u{0}b\r\n.txt"), "a_b__.txt");
        assert_eq!(sanitize_name(".."), "file");
        assert_eq!(sanitize_name("Grüße ☃.txt"), "Grüße ☃.txt");
    }

    #[test]
    fn check() {
        assert!(check_name("a/b.txt").is_ok());
        assert_eq!(check_name("a\\b.txt").unwrap(), "a/b.txt");
        for bad in ["../x", "a/../../x", "/etc/passwd", "\\x", "C:x", "a\nb", ""] {
            assert!(
                matches!(check_name(bad), Err(Error::UnsafePath { .. })),
                "{bad:?}"
            );
        }
    }
}
