//! True file types from content: magic bytes, then a look inside containers
//! (`[Content_Types].xml` for OOXML, `mimetype` for ODF, directory entry names for OLE
//! compound files), independent of the file name and the declared Content-Type.

use serde::Serialize;

/// What a file really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[allow(missing_docs)] // the names are the file formats
pub enum FileType {
    Docx,
    Docm,
    Xlsx,
    Xlsm,
    Pptx,
    Pptm,
    Doc,
    Xls,
    Ppt,
    /// An OLE compound file that is none of doc/xls/ppt (msi, msg, ...).
    Ole,
    /// An OOXML document encrypted with a password (an OLE file with `EncryptedPackage`).
    EncryptedOffice,
    Odt,
    Ods,
    Odp,
    Rtf,
    Pdf,
    Zip,
    Jar,
    SevenZip,
    Rar,
    Gzip,
    Bzip2,
    Xz,
    Tar,
    Cab,
    Png,
    Jpeg,
    Gif,
    Bmp,
    Tiff,
    Webp,
    Pe,
    Elf,
    MachO,
    Lnk,
    Script,
    Html,
    Xml,
    Csv,
    Text,
    Unknown,
}

/// Type and class names accepted by `attachment_type`.
pub(crate) const TYPE_NAMES: &[&str] = &[
    // classes
    "excel",
    "word",
    "powerpoint",
    "spreadsheet",
    "document",
    "presentation",
    "office",
    "macro",
    "pdf",
    "archive",
    "image",
    "executable",
    "script",
    "text",
    "encrypted",
    "unknown",
    // formats
    "docx",
    "docm",
    "xlsx",
    "xlsm",
    "pptx",
    "pptm",
    "doc",
    "xls",
    "ppt",
    "ole",
    "odt",
    "ods",
    "odp",
    "rtf",
    "zip",
    "jar",
    "7z",
    "rar",
    "gzip",
    "bzip2",
    "xz",
    "tar",
    "cab",
    "png",
    "jpeg",
    "gif",
    "bmp",
    "tiff",
    "webp",
    "pe",
    "elf",
    "macho",
    "lnk",
    "html",
    "xml",
    "csv",
];

impl FileType {
    /// The format name (as in rule files).
    pub fn name(self) -> &'static str {
        use FileType::*;
        match self {
            Docx => "docx",
            Docm => "docm",
            Xlsx => "xlsx",
            Xlsm => "xlsm",
            Pptx => "pptx",
            Pptm => "pptm",
            Doc => "doc",
            Xls => "xls",
            Ppt => "ppt",
            Ole => "ole",
            EncryptedOffice => "encrypted_office",
            Odt => "odt",
            Ods => "ods",
            Odp => "odp",
            Rtf => "rtf",
            Pdf => "pdf",
            Zip => "zip",
            Jar => "jar",
            SevenZip => "7z",
            Rar => "rar",
            Gzip => "gzip",
            Bzip2 => "bzip2",
            Xz => "xz",
            Tar => "tar",
            Cab => "cab",
            Png => "png",
            Jpeg => "jpeg",
            Gif => "gif",
            Bmp => "bmp",
            Tiff => "tiff",
            Webp => "webp",
            Pe => "pe",
            Elf => "elf",
            MachO => "macho",
            Lnk => "lnk",
            Script => "script",
            Html => "html",
            Xml => "xml",
            Csv => "csv",
            Text => "text",
            Unknown => "unknown",
        }
    }

    /// The classes this type belongs to (`excel`, `archive`, ...).
    pub fn classes(self) -> &'static [&'static str] {
        use FileType::*;
        match self {
            Docx => &["word", "document", "office"],
            Docm => &["word", "document", "office", "macro"],
            Doc => &["word", "document", "office"],
            Xlsx | Xls => &["excel", "spreadsheet", "office"],
            Xlsm => &["excel", "spreadsheet", "office", "macro"],
            Pptx | Ppt => &["powerpoint", "presentation", "office"],
            Pptm => &["powerpoint", "presentation", "office", "macro"],
            Ole => &["office"],
            EncryptedOffice => &["office", "encrypted"],
            Odt => &["document", "office"],
            Ods => &["spreadsheet", "office"],
            Odp => &["presentation", "office"],
            Rtf => &["document"],
            Pdf => &["pdf", "document"],
            Zip | SevenZip | Rar | Gzip | Bzip2 | Xz | Tar | Cab => &["archive"],
            Jar => &["archive", "executable"],
            Png | Jpeg | Gif | Bmp | Tiff | Webp => &["image"],
            Pe | Elf | MachO | Lnk => &["executable"],
            Script => &["script"],
            Html | Xml | Csv | Text => &["text"],
            Unknown => &["unknown"],
        }
    }

    /// Whether `name` (a format or a class from [`TYPE_NAMES`]) covers this type.
    pub(crate) fn is(self, name: &str) -> bool {
        self.name() == name || self.classes().contains(&name)
    }
}

/// The type from magic bytes alone; ZIP and OLE containers are refined by the caller
/// ([`zip_kind`], [`ole_kind`]), text by [`text_kind`].
pub(crate) fn sniff_magic(data: &[u8]) -> Option<FileType> {
    use FileType::*;
    let starts = |m: &[u8]| data.starts_with(m);
    let t = if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        Zip
    } else if data
        .get(..1024.min(data.len()))
        .is_some_and(|h| memchr::memmem::find(h, b"%PDF-").is_some())
    {
        Pdf
    } else if starts(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        Ole
    } else if starts(b"7z\xBC\xAF\x27\x1C") {
        SevenZip
    } else if starts(b"Rar!\x1A\x07") {
        Rar
    } else if starts(b"\x1F\x8B") {
        Gzip
    } else if starts(b"BZh") && data.get(3).is_some_and(|c| (b'1'..=b'9').contains(c)) {
        Bzip2
    } else if starts(b"\xFD7zXZ\x00") {
        Xz
    } else if starts(b"MSCF\0\0\0\0") {
        Cab
    } else if data.get(257..262) == Some(b"ustar") {
        Tar
    } else if starts(b"\x89PNG\r\n\x1A\n") {
        Png
    } else if starts(b"\xFF\xD8\xFF") {
        Jpeg
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Gif
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Tiff
    } else if starts(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        Webp
    } else if starts(b"BM") && data.len() >= 26 && data.get(6..10) == Some(&[0, 0, 0, 0]) {
        Bmp
    } else if starts(b"MZ") {
        Pe
    } else if starts(b"\x7FELF") {
        Elf
    } else if [
        b"\xFE\xED\xFA\xCE",
        b"\xFE\xED\xFA\xCF",
        b"\xCE\xFA\xED\xFE",
        b"\xCF\xFA\xED\xFE",
        b"\xCA\xFE\xBA\xBE",
    ]
    .iter()
    .any(|m| starts(*m))
    {
        MachO
    } else if starts(b"L\0\0\0\x01\x14\x02\0") {
        Lnk
    } else if starts(b"{\\rtf") {
        Rtf
    } else if starts(b"#!") {
        Script
    } else {
        return None;
    };
    Some(t)
}

/// Script file extensions (interpreted by Windows or a shell when opened).
const SCRIPT_EXTENSIONS: &[&str] = &[
    "js",
    "jse",
    "vbs",
    "vbe",
    "wsf",
    "wsh",
    "ps1",
    "psm1",
    "bat",
    "cmd",
    "sh",
    "bash",
    "zsh",
    "py",
    "pl",
    "rb",
    "hta",
    "applescript",
    "scpt",
    "command",
];

/// Text, HTML, XML, CSV or script, for data with no binary magic; `Unknown` if it is binary.
pub(crate) fn text_kind(data: &[u8], name: &str) -> FileType {
    let head = data.get(..8192.min(data.len())).unwrap_or_default();
    let utf16 = head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF");
    if !utf16 && looks_binary(head) {
        return FileType::Unknown;
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if SCRIPT_EXTENSIONS.contains(&ext.as_str()) {
        return FileType::Script;
    }
    let start: Vec<u8> = head
        .iter()
        .copied()
        .skip_while(|c| c.is_ascii_whitespace() || *c == 0xEF || *c == 0xBB || *c == 0xBF)
        .take(64)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if start.starts_with(b"<!doctype html")
        || start.starts_with(b"<html")
        || matches!(ext.as_str(), "htm" | "html")
    {
        FileType::Html
    } else if start.starts_with(b"<?xml") || ext == "xml" {
        FileType::Xml
    } else if ext == "csv" {
        FileType::Csv
    } else {
        FileType::Text
    }
}

/// Binary if it has NUL bytes or many control characters.
fn looks_binary(head: &[u8]) -> bool {
    if head.contains(&0) {
        return true;
    }
    let controls = head
        .iter()
        .filter(|&&c| c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B))
        .count();
    controls * 20 > head.len()
}

/// A ZIP container by its members: OOXML from `[Content_Types].xml` (its main part's content
/// type), ODF from the `mimetype` member, JAR from its manifest, else a plain ZIP.
pub(crate) fn zip_kind(
    content_types: Option<&str>,
    mimetype: Option<&str>,
    has_manifest: bool,
) -> FileType {
    use FileType::*;
    if let Some(ct) = content_types {
        let ct = ct.to_ascii_lowercase();
        let found = |needles: &[&str]| needles.iter().any(|n| ct.contains(n));
        if found(&[
            "ms-word.document.macroenabled.main",
            "ms-word.template.macroenabledtemplate.main",
        ]) {
            return Docm;
        }
        if found(&[
            "wordprocessingml.document.main",
            "wordprocessingml.template.main",
        ]) {
            return Docx;
        }
        if found(&[
            "ms-excel.sheet.macroenabled.main",
            "ms-excel.sheet.binary.macroenabled.main",
            "ms-excel.template.macroenabled.main",
        ]) {
            return Xlsm;
        }
        if found(&["spreadsheetml.sheet.main", "spreadsheetml.template.main"]) {
            return Xlsx;
        }
        if found(&[
            "ms-powerpoint.presentation.macroenabled.main",
            "ms-powerpoint.slideshow.macroenabled.main",
        ]) {
            return Pptm;
        }
        if found(&[
            "presentationml.presentation.main",
            "presentationml.slideshow.main",
            "presentationml.template.main",
        ]) {
            return Pptx;
        }
    }
    if let Some(mt) = mimetype.map(str::trim) {
        if mt.starts_with("application/vnd.oasis.opendocument.text") {
            return Odt;
        }
        if mt.starts_with("application/vnd.oasis.opendocument.spreadsheet") {
            return Ods;
        }
        if mt.starts_with("application/vnd.oasis.opendocument.presentation") {
            return Odp;
        }
    }
    if has_manifest {
        return Jar;
    }
    Zip
}

/// An OLE compound file (MS-CFB) by the names of its directory entries. Directory entries are
/// 128 bytes, in sectors after the 512-byte header, so they start at multiples of 128; each
/// begins with its UTF-16LE name and has the name's byte length at offset 64.
pub(crate) fn ole_kind(data: &[u8]) -> FileType {
    let mut names = Vec::new();
    let mut off = 512;
    while off + 128 <= data.len() && names.len() < 10_000 {
        let entry = &data[off..off + 128];
        let name_len = usize::from(u16::from_le_bytes([entry[64], entry[65]]));
        let object_type = entry[66];
        if (2..=64).contains(&name_len) && name_len % 2 == 0 && matches!(object_type, 1 | 2 | 5) {
            let units: Vec<u16> = entry[..name_len - 2]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let name = String::from_utf16_lossy(&units);
            if !name.is_empty() && !name.contains('\0') {
                names.push(name);
            }
        }
        off += 128;
    }
    let has = |n: &str| names.iter().any(|x| x == n);
    if has("EncryptedPackage") || has("EncryptionInfo") {
        FileType::EncryptedOffice
    } else if has("WordDocument") {
        FileType::Doc
    } else if has("Workbook") || has("Book") {
        FileType::Xls
    } else if has("PowerPoint Document") {
        FileType::Ppt
    } else {
        FileType::Ole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic() {
        assert_eq!(sniff_magic(b"%PDF-1.7\n"), Some(FileType::Pdf));
        assert_eq!(sniff_magic(b"MZ\x90\0"), Some(FileType::Pe));
        assert_eq!(sniff_magic(b"\x7fELF\x02\x01"), Some(FileType::Elf));
        assert_eq!(sniff_magic(b"#!/bin/sh\n"), Some(FileType::Script));
        assert_eq!(sniff_magic(b"hello"), None);
        assert_eq!(text_kind(b"hello", "a.txt"), FileType::Text);
        assert_eq!(text_kind(b"echo hi", "run.BAT"), FileType::Script);
        assert_eq!(text_kind(b"  <!DOCTYPE html><p>", "x"), FileType::Html);
        assert_eq!(text_kind(b"\0\x01\x02", "x.txt"), FileType::Unknown);
        assert!(FileType::Xlsx.is("excel"));
        assert!(FileType::Xls.is("excel"));
        assert!(!FileType::Docx.is("excel"));
        assert!(FileType::Jar.is("executable"));
        for n in TYPE_NAMES {
            assert!(!n.is_empty());
        }
    }

    #[test]
    fn ole() {
        let mut data = vec![0u8; 1024];
        data[..8].copy_from_slice(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1");
        let name: Vec<u8> = "Workbook\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        data[640..640 + name.len()].copy_from_slice(&name);
        data[640 + 64] = name.len() as u8;
        data[640 + 66] = 2;
        assert_eq!(ole_kind(&data), FileType::Xls);
        assert_eq!(ole_kind(&data[..600]), FileType::Ole);
    }
}
