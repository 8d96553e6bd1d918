//! Looking inside files, every step bounded by [`Limits`]: ZIP (and OOXML, ODF, JAR inside
//! it), gzip, tar, OLE compound files, PDF (Flate streams, text operators, Info and XMP),
//! XML (quick-xml, no DTD or entity expansion) and plain text.

use std::io::{Cursor, Read};
use std::time::Instant;

use quick_xml::events::Event;
use sealgate_mime::Limits;

use crate::filetype::{self, FileType};
use crate::inspect::{
    FileInfo, Location, Properties, TextBlock, TextSource, Uninspectable, UninspectableReason,
};

/// Below this size an archive entry is not held to the compression-ratio limit (small runs
/// of zeros legitimately compress more than any sane ratio).
const RATIO_FLOOR: u64 = 1024 * 1024;
/// Largest container metadata part read (`[Content_Types].xml`, `docProps/*.xml`, ...).
const META_CAP: usize = 1024 * 1024;
/// Longest property value kept.
const PROPERTY_CAP: usize = 1024;

pub(crate) struct Extractor<'l> {
    limits: &'l Limits,
    started: Instant,
    extracted: usize,
    pub(crate) texts: Vec<TextBlock>,
    pub(crate) files: Vec<FileInfo>,
    pub(crate) uninspectable: Vec<Uninspectable>,
    out_of_time_reported: bool,
}

/// What one attachment may still extract.
struct Budget {
    left: usize,
    /// Archive entries still to look at, nested archives included: depth alone let a
    /// 42.zip-style fan-out (16 archives of 16 archives ...) open 16^depth archives.
    entries_left: usize,
}

impl<'l> Extractor<'l> {
    pub(crate) fn new(limits: &'l Limits, started: Instant) -> Self {
        Self {
            limits,
            started,
            extracted: 0,
            texts: Vec::new(),
            files: Vec::new(),
            uninspectable: Vec::new(),
            out_of_time_reported: false,
        }
    }

    pub(crate) fn uninspectable(&mut self, location: Location, reason: UninspectableReason) {
        if self.uninspectable.len() < self.limits.max_parts.max(16) {
            self.uninspectable.push(Uninspectable { location, reason });
        }
    }

    pub(crate) fn limit(&mut self, location: Location, limit: &str) {
        self.uninspectable(
            location,
            UninspectableReason::LimitReached {
                limit: limit.to_string(),
            },
        );
    }

    /// Count `n` bytes against the per-message extraction limit.
    pub(crate) fn charge_message(&mut self, n: usize) -> bool {
        match self.extracted.checked_add(n) {
            Some(total) if total <= self.limits.max_extract_bytes_per_message => {
                self.extracted = total;
                true
            }
            _ => false,
        }
    }

    fn charge(&mut self, n: usize, budget: &mut Budget, location: &Location) -> bool {
        if n > budget.left {
            self.limit(location.clone(), "extraction bytes per attachment");
            return false;
        }
        if !self.charge_message(n) {
            self.limit(location.clone(), "extraction bytes per message");
            return false;
        }
        budget.left -= n;
        true
    }

    fn out_of_time(&mut self, location: &Location) -> bool {
        let elapsed = self.started.elapsed().as_millis();
        if elapsed > u128::from(self.limits.max_inspect_millis) {
            if !self.out_of_time_reported {
                self.out_of_time_reported = true;
                self.limit(location.clone(), "inspection time");
            }
            return true;
        }
        false
    }

    pub(crate) fn file(
        &mut self,
        location: Location,
        name: &str,
        path: &str,
        declared: Option<String>,
        file_type: FileType,
    ) -> usize {
        self.files.push(FileInfo {
            location,
            name: name.to_string(),
            path: path.to_string(),
            declared_type: declared,
            file_type,
            properties: Properties::default(),
        });
        self.files.len() - 1
    }

    fn text(&mut self, location: &Location, text: String) {
        if !text.trim().is_empty() {
            self.texts.push(TextBlock {
                source: TextSource::Attachment,
                location: location.clone(),
                text,
            });
        }
    }

    /// Inspect one attachment (already transfer-decoded).
    pub(crate) fn attachment(
        &mut self,
        data: &[u8],
        name: &str,
        declared: Option<String>,
        charset: Option<&str>,
        location: Location,
    ) {
        let mut budget = Budget {
            left: self.limits.max_extract_bytes_per_attachment,
            entries_left: self.limits.max_archive_entries,
        };
        self.inspect_file(
            data,
            name,
            name,
            declared,
            charset,
            location,
            0,
            &mut budget,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn inspect_file(
        &mut self,
        data: &[u8],
        name: &str,
        path: &str,
        declared: Option<String>,
        charset: Option<&str>,
        location: Location,
        depth: usize,
        budget: &mut Budget,
    ) {
        let kind = filetype::sniff_magic(data).unwrap_or_else(|| filetype::text_kind(data, name));
        let index = self.file(location.clone(), name, path, declared, kind);
        if self.out_of_time(&location) {
            return;
        }
        let kind = match kind {
            FileType::Zip => self.zip(data, &location, depth, budget, index),
            FileType::Ole => {
                let kind = filetype::ole_kind(data);
                if kind == FileType::EncryptedOffice {
                    self.uninspectable(location.clone(), UninspectableReason::Encrypted);
                } else if self.charge(data.len(), budget, &location) {
                    let text = binary_strings(data);
                    self.text(&location, text);
                }
                kind
            }
            FileType::Pdf => {
                self.pdf(data, &location, budget, index);
                kind
            }
            FileType::Gzip => {
                self.gzip(data, name, &location, depth, budget);
                kind
            }
            FileType::Tar => {
                self.tar(data, &location, depth, budget);
                kind
            }
            FileType::SevenZip | FileType::Rar | FileType::Bzip2 | FileType::Xz | FileType::Cab => {
                self.uninspectable(
                    location.clone(),
                    UninspectableReason::Unsupported {
                        format: kind.name().to_string(),
                    },
                );
                kind
            }
            FileType::Text
            | FileType::Csv
            | FileType::Html
            | FileType::Xml
            | FileType::Script
            | FileType::Rtf => {
                if self.charge(data.len(), budget, &location) {
                    let text = sealgate_mime::decode_text(data, charset);
                    let text = match kind {
                        FileType::Html => sealgate_mime::html_to_text(&text),
                        FileType::Xml => {
                            let mut out = String::new();
                            xml_text(&text, &mut out);
                            out
                        }
                        _ => text,
                    };
                    self.text(&location, text);
                }
                kind
            }
            other => other,
        };
        if let Some(f) = self.files.get_mut(index) {
            f.file_type = kind;
        }
    }

    /// Read one archive member, bounded by the budget, the ratio limit and its declared size.
    fn read_member<R: Read + std::io::Seek>(
        &mut self,
        archive: &mut zip::ZipArchive<R>,
        i: usize,
        cap: usize,
        budget: &mut Budget,
        location: &Location,
    ) -> Option<Vec<u8>> {
        let mut file = match archive.by_index(i) {
            Ok(f) => f,
            Err(_) => {
                self.uninspectable(
                    location.clone(),
                    UninspectableReason::Corrupt {
                        detail: "unreadable ZIP entry".to_string(),
                    },
                );
                return None;
            }
        };
        let declared = file.size();
        let compressed = file.compressed_size();
        let ratio_cap = compressed
            .saturating_mul(self.limits.max_compression_ratio)
            .max(RATIO_FLOOR);
        if declared > ratio_cap {
            self.limit(location.clone(), "compression ratio");
            return None;
        }
        let cap = cap
            .min(budget.left)
            .min(usize::try_from(ratio_cap).unwrap_or(usize::MAX));
        let mut data = Vec::with_capacity(usize::try_from(declared).unwrap_or(0).min(cap));
        let read = (&mut file).take(cap as u64 + 1).read_to_end(&mut data);
        if read.is_err() {
            self.uninspectable(
                location.clone(),
                UninspectableReason::Corrupt {
                    detail: "ZIP entry does not decompress or fails its CRC".to_string(),
                },
            );
            return None;
        }
        if data.len() > cap {
            self.limit(
                location.clone(),
                "extraction bytes per attachment or compression ratio",
            );
            return None;
        }
        if !self.charge(data.len(), budget, location) {
            return None;
        }
        Some(data)
    }

    fn zip(
        &mut self,
        data: &[u8],
        location: &Location,
        depth: usize,
        budget: &mut Budget,
        index: usize,
    ) -> FileType {
        let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
            Ok(a) => a,
            Err(_) => {
                self.uninspectable(
                    location.clone(),
                    UninspectableReason::Corrupt {
                        detail: "not a readable ZIP archive".to_string(),
                    },
                );
                return FileType::Zip;
            }
        };
        // Local headers that disagree with the central directory, duplicate names, overlapping
        // entries or local headers hidden between them: an extractor that reads the local
        // headers would get other files than the ones inspected here.
        if archive.validate_header_consistency().is_err() {
            self.uninspectable(
                location.clone(),
                UninspectableReason::Corrupt {
                    detail: "ZIP local headers and central directory differ".to_string(),
                },
            );
            return FileType::Zip;
        }
        let count = archive.len();
        if count > budget.entries_left {
            self.limit(location.clone(), "archive entries");
        }
        let count = count.min(budget.entries_left);
        budget.entries_left -= count;
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            if let Ok(f) = archive.by_index_raw(i) {
                let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
                entries.push((i, name, f.encrypted(), f.is_dir()));
            }
        }
        let find = |n: &str| entries.iter().find(|e| e.1 == n && !e.2).map(|e| e.0);
        let mut small =
            |ex: &mut Self, archive: &mut zip::ZipArchive<_>, n: &str| -> Option<String> {
                let i = find(n)?;
                let bytes =
                    ex.read_member(archive, i, META_CAP, budget, &location.in_archive(n))?;
                Some(sealgate_mime::decode_text(&bytes, None))
            };
        let content_types = small(self, &mut archive, "[Content_Types].xml");
        let mimetype = small(self, &mut archive, "mimetype");
        let manifest = find("META-INF/MANIFEST.MF").is_some();
        let kind = filetype::zip_kind(content_types.as_deref(), mimetype.as_deref(), manifest);
        let office = matches!(
            kind,
            FileType::Docx
                | FileType::Docm
                | FileType::Xlsx
                | FileType::Xlsm
                | FileType::Pptx
                | FileType::Pptm
        );
        let odf = matches!(kind, FileType::Odt | FileType::Ods | FileType::Odp);
        let mut properties = Properties::default();
        for (i, name, encrypted, is_dir) in &entries {
            if *is_dir {
                continue;
            }
            if self.out_of_time(location) {
                return kind;
            }
            let member = location.in_archive(name);
            if *encrypted {
                self.uninspectable(member, UninspectableReason::Encrypted);
                continue;
            }
            if office || odf {
                let cap = self.limits.max_extract_bytes_per_attachment;
                if office && is_ooxml_text_part(name) || odf && name == "content.xml" {
                    if let Some(bytes) = self.read_member(&mut archive, *i, cap, budget, &member) {
                        let mut text = String::new();
                        xml_text(&sealgate_mime::decode_text(&bytes, None), &mut text);
                        self.text(location, text);
                    }
                } else if office && (name == "docProps/core.xml" || name == "docProps/app.xml")
                    || odf && name == "meta.xml"
                {
                    if let Some(bytes) =
                        self.read_member(&mut archive, *i, META_CAP, budget, &member)
                    {
                        merge_properties(
                            &mut properties,
                            &sealgate_mime::decode_text(&bytes, None),
                            odf,
                        );
                    }
                } else if name.contains("/embeddings/") || odf && name.starts_with("Object ") {
                    self.nested(&mut archive, *i, name, &member, depth, budget);
                }
                continue;
            }
            self.nested(&mut archive, *i, name, &member, depth, budget);
        }
        if let Some(f) = self.files.get_mut(index) {
            f.properties = properties;
        }
        kind
    }

    /// An archive member inspected as a file of its own, one level deeper.
    fn nested<R: Read + std::io::Seek>(
        &mut self,
        archive: &mut zip::ZipArchive<R>,
        i: usize,
        name: &str,
        member: &Location,
        depth: usize,
        budget: &mut Budget,
    ) {
        if depth + 1 > self.limits.max_archive_depth {
            self.limit(member.clone(), "archive depth");
            return;
        }
        let cap = self.limits.max_extract_bytes_per_attachment;
        if let Some(bytes) = self.read_member(archive, i, cap, budget, member) {
            let base = name.rsplit('/').next().unwrap_or(name);
            self.inspect_file(
                &bytes,
                base,
                name,
                None,
                None,
                member.clone(),
                depth + 1,
                budget,
            );
        }
    }

    fn gzip(
        &mut self,
        data: &[u8],
        name: &str,
        location: &Location,
        depth: usize,
        budget: &mut Budget,
    ) {
        let inner_name = name
            .strip_suffix(".tgz")
            .map(|n| format!("{n}.tar"))
            .or_else(|| name.strip_suffix(".gz").map(str::to_string))
            .unwrap_or_else(|| name.to_string());
        let member = location.in_archive(&inner_name);
        if depth + 1 > self.limits.max_archive_depth {
            self.limit(member, "archive depth");
            return;
        }
        let ratio_cap = (data.len() as u64)
            .saturating_mul(self.limits.max_compression_ratio)
            .max(RATIO_FLOOR);
        let cap = budget
            .left
            .min(usize::try_from(ratio_cap).unwrap_or(usize::MAX));
        let mut out = Vec::new();
        let result = flate2::read::GzDecoder::new(data)
            .take(cap as u64 + 1)
            .read_to_end(&mut out);
        if result.is_err() {
            self.uninspectable(
                location.clone(),
                UninspectableReason::Corrupt {
                    detail: "gzip does not decompress".to_string(),
                },
            );
            return;
        }
        if out.len() > cap {
            self.limit(
                location.clone(),
                "extraction bytes per attachment or compression ratio",
            );
            return;
        }
        if self.charge(out.len(), budget, location) {
            let base = inner_name
                .rsplit('/')
                .next()
                .unwrap_or(&inner_name)
                .to_string();
            self.inspect_file(
                &out,
                &base,
                &inner_name,
                None,
                None,
                member,
                depth + 1,
                budget,
            );
        }
    }

    /// POSIX ustar: 512-byte headers, octal sizes, data padded to 512.
    fn tar(&mut self, data: &[u8], location: &Location, depth: usize, budget: &mut Budget) {
        let mut off = 0usize;
        while let Some(header) = data.get(off..off + 512) {
            if header.iter().all(|&b| b == 0) {
                break;
            }
            if budget.entries_left == 0 {
                self.limit(location.clone(), "archive entries");
                break;
            }
            budget.entries_left -= 1;
            let field = |r: std::ops::Range<usize>| -> String {
                let f = header.get(r).unwrap_or_default();
                let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
                String::from_utf8_lossy(&f[..end]).into_owned()
            };
            let size_field = field(124..136);
            let Ok(size) = usize::from_str_radix(size_field.trim(), 8) else {
                self.uninspectable(
                    location.clone(),
                    UninspectableReason::Corrupt {
                        detail: "bad tar header".to_string(),
                    },
                );
                return;
            };
            let prefix = field(345..500);
            let name = field(0..100);
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let typeflag = header[156];
            let start = off + 512;
            let Some(body) = start.checked_add(size).and_then(|end| data.get(start..end)) else {
                self.uninspectable(
                    location.clone(),
                    UninspectableReason::Corrupt {
                        detail: "truncated tar".to_string(),
                    },
                );
                return;
            };
            if matches!(typeflag, b'0' | 0) {
                let member = location.in_archive(&path);
                if depth + 1 > self.limits.max_archive_depth {
                    self.limit(member, "archive depth");
                } else {
                    let base = path.rsplit('/').next().unwrap_or(&path).to_string();
                    self.inspect_file(body, &base, &path, None, None, member, depth + 1, budget);
                }
            }
            off = start + size.div_ceil(512) * 512;
        }
    }

    fn pdf(&mut self, data: &[u8], location: &Location, budget: &mut Budget, index: usize) {
        if memchr::memmem::find(data, b"/Encrypt").is_some() {
            self.uninspectable(location.clone(), UninspectableReason::Encrypted);
            return;
        }
        let mut properties = Properties::default();
        pdf_info(data, &mut properties);
        let mut text = String::new();
        let mut pos = 0;
        let finder = memchr::memmem::Finder::new(b"stream");
        while let Some(found) = finder.find(data.get(pos..).unwrap_or_default()) {
            // A stream's dictionary lies between the previous stream and this one: looking
            // further back (4 KiB each time) made a PDF of a million tiny streams scan
            // gigabytes.
            let scanned_to = pos;
            let kw = pos + found;
            pos = kw + 6;
            if kw >= 3 && data.get(kw - 3..kw) == Some(b"end") {
                continue;
            }
            let mut start = kw + 6;
            if data.get(start) == Some(&b'\r') {
                start += 1;
            }
            if data.get(start) != Some(&b'\n') {
                continue;
            }
            start += 1;
            let Some(len) =
                memchr::memmem::find(data.get(start..).unwrap_or_default(), b"endstream")
            else {
                break;
            };
            let raw = &data[start..start + len];
            pos = start + len + 9;
            let dict_from = kw.saturating_sub(4096).max(scanned_to);
            let before = &data[dict_from..kw];
            let dict = match memchr::memmem::rfind(before, b"obj") {
                Some(o) => &before[o..],
                None => before,
            };
            let has = |k: &[u8]| memchr::memmem::find(dict, k).is_some();
            if has(b"/Image")
                || has(b"/Length1")
                || has(b"/Length2")
                || has(b"/XRef")
                || has(b"/FontFile")
            {
                continue;
            }
            let decoded = if has(b"/FlateDecode") || has(b"/Fl ") || has(b"/Fl]") {
                let cap = budget.left.min(
                    usize::try_from(
                        (raw.len() as u64)
                            .saturating_mul(self.limits.max_compression_ratio)
                            .max(RATIO_FLOOR),
                    )
                    .unwrap_or(usize::MAX),
                );
                let mut out = Vec::new();
                // A truncated or damaged stream still gives what it inflated so far.
                let _ = flate2::read::ZlibDecoder::new(raw)
                    .take(cap as u64 + 1)
                    .read_to_end(&mut out);
                if out.len() > cap {
                    self.limit(
                        location.clone(),
                        "extraction bytes per attachment or compression ratio",
                    );
                    break;
                }
                out
            } else if has(b"/Filter") {
                continue;
            } else {
                raw.to_vec()
            };
            if !self.charge(decoded.len(), budget, location) {
                break;
            }
            if memchr::memmem::find(&decoded, b"<x:xmpmeta").is_some()
                || memchr::memmem::find(&decoded, b"<rdf:RDF").is_some()
            {
                merge_properties(&mut properties, &String::from_utf8_lossy(&decoded), false);
            } else if has(b"/ObjStm") {
                pdf_info(&decoded, &mut properties);
            } else {
                pdf_content_text(&decoded, &mut text);
                text.push('\n');
            }
            if self.out_of_time(location) {
                break;
            }
        }
        self.text(location, text);
        if let Some(f) = self.files.get_mut(index) {
            f.properties = properties;
        }
    }
}

/// OOXML parts that carry document text (not styles, themes or settings).
fn is_ooxml_text_part(name: &str) -> bool {
    let xml = name.ends_with(".xml");
    let main = name == "word/document.xml"
        || name.starts_with("word/header")
        || name.starts_with("word/footer")
        || matches!(
            name,
            "word/footnotes.xml"
                | "word/endnotes.xml"
                | "word/comments.xml"
                | "xl/sharedStrings.xml"
        )
        || name.starts_with("xl/worksheets/sheet")
        || name.starts_with("xl/comments")
        || name.starts_with("ppt/slides/slide")
        || name.starts_with("ppt/notesSlides/");
    xml && main
}

/// The text content of an XML document: text and CDATA, with breaks at paragraph, cell and
/// row ends. Entity references other than the five predefined ones and character references
/// are dropped, never expanded (no DTD processing: billion-laughs documents stay small).
pub(crate) fn xml_text(xml: &str, out: &mut String) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.check_comments = false;
    loop {
        match reader.read_event() {
            Ok(Event::Text(t)) => out.push_str(&t.xml10_content()),
            Ok(Event::CData(t)) => out.push_str(&t),
            Ok(Event::GeneralRef(r)) => push_reference(&r, out),
            Ok(Event::End(e)) => push_break(e.local_name().as_ref(), out),
            Ok(Event::Empty(e)) => push_break(e.local_name().as_ref(), out),
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn push_reference(r: &quick_xml::events::BytesRef<'_>, out: &mut String) {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        out.push(c);
    } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(r) {
        out.push_str(s);
    }
}

fn push_break(local: &str, out: &mut String) {
    match local {
        "p" | "h" | "row" | "tr" | "br" | "si" | "table-row" | "line-break" | "list-item" => {
            out.push('\n')
        }
        "c" | "tc" | "tab" | "s" | "table-cell" => out.push('\t'),
        _ => {}
    }
}

/// Properties from OOXML core.xml/app.xml, ODF meta.xml or XMP: the text of the elements
/// named creator, initial-creator, lastModifiedBy, title and Company (any namespace).
fn merge_properties(p: &mut Properties, xml: &str, odf: bool) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let config = reader.config_mut();
    config.check_end_names = false;
    let mut current: Option<(String, String, usize)> = None;
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                if current.is_none() {
                    let local = e.local_name().as_ref().to_string();
                    if matches!(
                        local.as_str(),
                        "creator" | "initial-creator" | "lastModifiedBy" | "title" | "Company"
                    ) {
                        current = Some((local, String::new(), depth));
                    }
                }
            }
            Ok(Event::Text(t)) => {
                if let Some((_, v, _)) = current.as_mut()
                    && v.len() < PROPERTY_CAP
                {
                    v.push_str(&t.xml10_content());
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let Some((_, v, _)) = current.as_mut() {
                    push_reference(&r, v);
                }
            }
            Ok(Event::End(_)) => {
                if let Some((name, value, d)) = current.take() {
                    if d == depth {
                        let value: String = value.split_whitespace().collect::<Vec<_>>().join(" ");
                        let value: String = value.chars().take(PROPERTY_CAP).collect();
                        if !value.is_empty() {
                            let slot = match (name.as_str(), odf) {
                                ("initial-creator", _) => &mut p.author,
                                ("creator", true) => &mut p.last_modified_by,
                                ("creator", false) => &mut p.author,
                                ("lastModifiedBy", _) => &mut p.last_modified_by,
                                ("title", _) => &mut p.title,
                                _ => &mut p.company,
                            };
                            slot.get_or_insert(value);
                        }
                    } else {
                        current = Some((name, value, d));
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if odf && p.author.is_none() {
        p.author = p.last_modified_by.clone();
    }
}

/// `/Author (…)`, `/Title <…>`, `/Company (…)` from a PDF Info dictionary (in the file or in
/// an object stream).
fn pdf_info(data: &[u8], p: &mut Properties) {
    for (key, slot) in [
        (&b"/Author"[..], &mut p.author),
        (&b"/Title"[..], &mut p.title),
        (&b"/Company"[..], &mut p.company),
    ] {
        if slot.is_some() {
            continue;
        }
        for at in memchr::memmem::find_iter(data, key).take(64) {
            let mut i = at + key.len();
            while data.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            let value = match (data.get(i), data.get(i + 1)) {
                (Some(b'('), _) => Some(literal_string(data, i).0),
                (Some(b'<'), Some(b'<')) => None,
                (Some(b'<'), _) => Some(hex_string(data, i).0),
                _ => None,
            };
            if let Some(v) = value {
                let s: String = pdf_text_string(&v)
                    .trim()
                    .chars()
                    .take(PROPERTY_CAP)
                    .collect();
                if !s.is_empty() {
                    *slot = Some(s);
                    break;
                }
            }
        }
    }
}

/// A PDF literal string starting at `data[at] == b'('`: its bytes and the index after it.
fn literal_string(data: &[u8], at: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = at;
    while let Some(&c) = data.get(i) {
        i += 1;
        match c {
            b'(' => {
                if depth > 0 {
                    out.push(c);
                }
                depth += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
                out.push(c);
            }
            b'\\' => {
                let Some(&e) = data.get(i) else { break };
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match data.get(i) {
                                Some(&d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push((v & 0xFF) as u8);
                    }
                    b'\r' => {
                        if data.get(i) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    b'\n' => {}
                    other => out.push(other),
                }
            }
            _ => out.push(c),
        }
    }
    (out, i)
}

/// A PDF hex string starting at `data[at] == b'<'`.
fn hex_string(data: &[u8], at: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut half: Option<u8> = None;
    let mut i = at + 1;
    while let Some(&c) = data.get(i) {
        i += 1;
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b'>' => break,
            _ => continue,
        };
        match half.take() {
            Some(h) => out.push(h << 4 | v),
            None => half = Some(v),
        }
    }
    if let Some(h) = half {
        out.push(h << 4);
    }
    (out, i)
}

/// PDF text strings: UTF-16BE with a byte-order mark, else PDFDocEncoding (Latin-1 here).
fn pdf_text_string(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(b"\xFE\xFF") {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(rest) = b.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    b.iter().map(|&c| char::from(c)).collect()
}

/// The strings shown by a content stream's text operators (`Tj`, `TJ`, `'`, `"`), with
/// breaks at text positioning operators.
fn pdf_content_text(content: &[u8], out: &mut String) {
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while let Some(&c) = content.get(i) {
        match c {
            b'(' => {
                let (s, next) = literal_string(content, i);
                pending.push(s);
                i = next;
            }
            b'<' if content.get(i + 1) == Some(&b'<') => i += 2,
            b'<' => {
                let (s, next) = hex_string(content, i);
                pending.push(s);
                i = next;
            }
            b'%' => {
                while content.get(i).is_some_and(|&b| b != b'\n' && b != b'\r') {
                    i += 1;
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'\'' | b'"' | b'*' => {
                let start = i;
                while content
                    .get(i)
                    .is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'\'' | b'"' | b'*'))
                {
                    i += 1;
                }
                match &content[start..i] {
                    b"Tj" | b"TJ" | b"'" | b"\"" => {
                        for s in pending.drain(..) {
                            out.push_str(&pdf_text_string(&s));
                        }
                    }
                    b"Td" | b"TD" | b"T*" | b"ET" | b"Tm" => {
                        if !out.ends_with(' ') && !out.ends_with('\n') && !out.is_empty() {
                            out.push(' ');
                        }
                        pending.clear();
                    }
                    _ => pending.clear(),
                }
            }
            _ => i += 1,
        }
    }
}

/// Printable runs of four or more characters, as 8-bit text and as UTF-16LE (what legacy
/// Office files store their text as): enough for keywords, not a faithful text extraction.
pub(crate) fn binary_strings(data: &[u8]) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for &b in data {
        if b == b'\t' || (0x20..0x7F).contains(&b) {
            run.push(char::from(b));
        } else {
            flush_run(&mut run, &mut out);
        }
    }
    flush_run(&mut run, &mut out);
    for pair in data.chunks_exact(2) {
        let u = u16::from_le_bytes([pair[0], pair[1]]);
        let printable = matches!(u, 0x20..=0x7E | 0xA0..=0x17F | 0x3000..=0x30FF | 0x4E00..=0x9FFF | 0xFF00..=0xFFEF);
        match char::from_u32(u32::from(u)).filter(|_| printable) {
            Some(ch) => run.push(ch),
            None => flush_run(&mut run, &mut out),
        }
    }
    flush_run(&mut run, &mut out);
    out
}

fn flush_run(run: &mut String, out: &mut String) {
    if run.chars().count() >= 4 {
        out.push_str(run);
        out.push('\n');
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml() {
        let mut out = String::new();
        xml_text(
            "<w:document><w:body><w:p><w:r><w:t>Confi</w:t></w:r><w:r><w:t>dential &amp; &#x263A;</w:t></w:r></w:p><w:p><w:t>next</w:t></w:p></w:body></w:document>",
            &mut out,
        );
        assert_eq!(out, "Confidential & ☺\nnext\n");
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><l>&c;x</l>"#;
        let mut out = String::new();
        xml_text(laughs, &mut out);
        assert_eq!(out, "x");
    }

    #[test]
    fn properties() {
        let mut p = Properties::default();
        merge_properties(
            &mut p,
            r#"<cp:coreProperties xmlns:dc="d" xmlns:cp="c"><dc:title>Q3</dc:title><dc:creator>Finance Team</dc:creator><cp:lastModifiedBy>Bob</cp:lastModifiedBy></cp:coreProperties>"#,
            false,
        );
        merge_properties(
            &mut p,
            "<Properties><Company>ACME &amp; Co</Company></Properties>",
            false,
        );
        assert_eq!(p.author.as_deref(), Some("Finance Team"));
        assert_eq!(p.title.as_deref(), Some("Q3"));
        assert_eq!(p.last_modified_by.as_deref(), Some("Bob"));
        assert_eq!(p.company.as_deref(), Some("ACME & Co"));
        let mut x = Properties::default();
        merge_properties(
            &mut x,
            r#"<x:xmpmeta><rdf:RDF><rdf:Description><dc:creator><rdf:Seq><rdf:li>Jane Roe</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"#,
            false,
        );
        assert_eq!(x.author.as_deref(), Some("Jane Roe"));
    }

    #[test]
    fn pdf_strings() {
        let mut out = String::new();
        pdf_content_text(
            b"BT /F1 12 Tf 72 712 Td (Hello \\(W\\)) Tj T* [(Wor) -20 (ld)] TJ <4142> Tj ET",
            &mut out,
        );
        assert_eq!(out, "Hello (W) WorldAB ");
        let mut p = Properties::default();
        pdf_info(
            b"<< /Title <FEFF00510033> /Author (Finance\\040Team) >>",
            &mut p,
        );
        assert_eq!(p.author.as_deref(), Some("Finance Team"));
        assert_eq!(p.title.as_deref(), Some("Q3"));
        assert_eq!(literal_string(b"(a(b)c", 0).0, b"a(b)c");
    }

    /// A stored ZIP whose local headers carry `local` names and whose central directory
    /// carries `central` names for the same data.
    fn stored_zip(entries: &[(&str, &str, &[u8])]) -> Vec<u8> {
        let (mut out, mut cd) = (Vec::new(), Vec::new());
        for (local, central, data) in entries {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let offset = out.len() as u32;
            let fixed = |name: &str| {
                let mut f = Vec::new();
                f.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
                f.extend_from_slice(&crc.sum().to_le_bytes());
                f.extend_from_slice(&(data.len() as u32).to_le_bytes());
                f.extend_from_slice(&(data.len() as u32).to_le_bytes());
                f.extend_from_slice(&(name.len() as u16).to_le_bytes());
                f.extend_from_slice(&[0, 0]);
                f
            };
            out.extend_from_slice(b"PK\x03\x04");
            out.extend(fixed(local));
            out.extend_from_slice(local.as_bytes());
            out.extend_from_slice(data);
            cd.extend_from_slice(b"PK\x01\x02\x14\x00");
            cd.extend(fixed(central));
            cd.extend_from_slice(&[0; 8]);
            cd.extend_from_slice(&[0; 2]);
            cd.extend_from_slice(&offset.to_le_bytes());
            cd.extend_from_slice(central.as_bytes());
        }
        let (cd_start, n) = (out.len() as u32, entries.len() as u16);
        out.extend_from_slice(&cd);
        out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_start.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    fn inspect_zip<'l>(zip: &[u8], limits: &'l Limits) -> Extractor<'l> {
        let mut ex = Extractor::new(limits, Instant::now());
        let location = Location::Attachment {
            part: "2".into(),
            name: "a.zip".into(),
            path: Vec::new(),
        };
        ex.attachment(zip, "a.zip", None, None, location);
        ex
    }

    /// Regression: the central directory was trusted alone, so an archive whose local header
    /// names another file (what an extractor reading local headers gets) was inspected as the
    /// file the central directory names.
    #[test]
    fn zip_with_local_and_central_names_differing_is_uninspectable() {
        let limits = Limits::default();
        let ok = stored_zip(&[("plan.txt", "plan.txt", b"secret plan")]);
        let ex = inspect_zip(&ok, &limits);
        assert!(ex.uninspectable.is_empty(), "{:?}", ex.uninspectable);
        assert!(ex.texts.iter().any(|t| t.text.contains("secret plan")));
        let evil = stored_zip(&[("evil.exe", "plan.txt", b"MZ secret plan")]);
        let ex = inspect_zip(&evil, &limits);
        assert!(
            ex.uninspectable
                .iter()
                .any(|u| matches!(&u.reason, UninspectableReason::Corrupt { detail } if detail.contains("local headers"))),
            "{:?}",
            ex.uninspectable
        );
        assert!(ex.texts.is_empty());
    }

    #[test]
    fn strings() {
        let mut data = b"\x00\x01Secret plan\x00".to_vec();
        data.extend("Budget".encode_utf16().flat_map(u16::to_le_bytes));
        let s = binary_strings(&data);
        assert!(s.contains("Secret plan"));
        assert!(s.contains("Budget"));
    }
}
