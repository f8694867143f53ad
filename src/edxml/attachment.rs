//! Attachment transfer encoding (EDXML.md §2 "Attachments"): base64, and usually one zip entry.
//!
//! Reading decides by content, not by labels, because real traffic labels attachments every
//! way (zipped and labelled zip in both places, the manifest saying `application/pdf` for a
//! zipped file, a raw PDF labelled zip; see `../shared/real-traffic/README.md`). The rule
//! ([`decode`]):
//!
//! - not a zip (`PK\x03\x04`): the file as it is;
//! - the attachment's name ends in `.zip` (any case, trailing dots aside): the zip is the file
//!   (VNPT's and Bkav's readers do not unzip it either), unless it is a wrapper: one file entry
//!   named as the attachment or `*.zip`, holding a zip (or, for a name not ending exactly in
//!   lowercase `.zip`, anything: this node's writer and VNPT's wrap such names). Unwrapped;
//!   a wrapped `….zip` is flagged, as only older lienthong nodes sent one;
//! - a zip-based document (`.docx`, `.xlsx`, `.odt`, EPUB, JAR: its entries include
//!   `[Content_Types].xml`, `mimetype` or `META-INF/…`): the file as it is;
//! - a zip of exactly one file entry: a wrapper; the entry is the file (a `.docx` inside a
//!   wrapper is that entry, a `.docx` that is not itself a zip too);
//! - any other zip: kept as it is, flagged;
//! - bytes that start as a zip does but are no readable zip (and the name is not `.zip`):
//!   refused (`ATTACHMENT_INVALID`), a damaged wrapper is not handed out as the file.
//!
//! Every disagreement between the labels (`Attachment/ContentType`, the manifest's type) and
//! what the bytes are is a warning of kind `attachment_label`. Unzipping never trusts the sizes
//! the archive declares: a cap per file, a cap on all files together, and a cap on the
//! unzipped/zipped ratio, so a zip bomb costs at most the cap.
//!
//! Writing: one entry with fixed metadata and a neutral name (`<uuid>.<ext>`, see
//! [`entry_name`]), so the same file always zips to the same bytes and a receiver that unzips
//! every attachment into one folder under its entry name can neither be walked out of it nor
//! have one file overwrite another; then base64 without line breaks, appended straight into
//! the output buffer. An attachment named exactly `….zip` is not wrapped ([`travels_as_is`]).
//! The entry is
//! Deflated when deflate pays (it saves at least a tenth of a sample of the file) and Stored
//! otherwise: already-compressed files (most PDFs' streams, JPEG, Office files, random bytes) do
//! not shrink, and deflating them was most of the CPU a 1 MB document cost. A Stored entry is
//! written straight into the base64 output, never copied into a zip buffer first, and a Stored
//! entry read is unwrapped in place.

use std::io::{Cursor, Read, Write};

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use zip::write::SimpleFileOptions;

use super::model::{Warning, WarningKind};
use super::xml::Limits;
use crate::error::{Code, FormatError};

/// The local file header signature every zip starts with.
pub const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// The `ContentType` this node labels zipped attachments with.
pub const ZIP_CONTENT_TYPE: &str = "application/zip";
/// Below this size the zip ratio is not checked (small, highly compressible files are normal).
pub const RATIO_EXEMPT_BYTES: u64 = 1024 * 1024;
/// The type given to a file whose type nothing says.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Decoding tolerates missing padding and non-zero trailing bits: both are harmless and seen
/// from encoders in the wild.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// What the bytes turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// A one-file wrapper whose entry was extracted.
    Zipped,
    /// Not a zip: taken as they are.
    Plain,
    /// A zip that is the file itself: a `.zip`, a zip-based document (`.docx`, `.odt`, …), or
    /// a zip of several entries that is no wrapper.
    ZipAsIs,
}

/// What the package says about one attachment: the facts [`decode`] weighs against the bytes.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// The attachment's name (the manifest's when it has one).
    pub name: &'a str,
    /// The manifest `Reference/ContentType`: by convention the original file's type.
    pub manifest_type: Option<&'a str>,
    /// `Attachment/ContentType`: by convention how it travels (`application/zip` when zipped).
    pub label: Option<&'a str>,
    /// Where the manifest's `ContentType` is (or would be), for warnings.
    pub manifest_path: &'a str,
    /// Where the attachment's `ContentType` is (or would be), for warnings.
    pub label_path: &'a str,
}

/// A decoded attachment.
#[derive(Debug)]
pub struct Decoded {
    /// The file as its sender meant it.
    pub data: Vec<u8>,
    pub transfer: Transfer,
    /// The file's type: the manifest's unless it contradicts the bytes, else guessed from the
    /// name (see [`type_of_name`]).
    pub content_type: String,
    /// Every way the labels disagree with the bytes.
    pub warnings: Vec<Warning>,
}

/// Running total of decoded bytes across the attachments of one package.
#[derive(Debug, Default)]
pub struct Budget {
    used: u64,
}

/// Whether a MIME type names a file format that is itself a zip archive: zip, Office Open XML
/// (`.docx`, `.xlsx`, `.pptx`), OpenDocument, and `+zip` types such as EPUB. Such files sent
/// without the usual wrapper start with `PK\x03\x04` just as the wrapper does.
pub fn is_zip_based_type(content_type: &str) -> bool {
    let t = base_type(content_type);
    is_zip_type(&t)
        || t.ends_with("+zip")
        || t.starts_with("application/vnd.openxmlformats-officedocument.")
        || t.starts_with("application/vnd.oasis.opendocument.")
}

/// Whether a MIME type is the zip archive's own (`application/zip` and its common alias).
pub fn is_zip_type(content_type: &str) -> bool {
    let t = base_type(content_type);
    t == ZIP_CONTENT_TYPE || t == "application/x-zip-compressed"
}

fn base_type(content_type: &str) -> String {
    let lower = content_type.trim().to_ascii_lowercase();
    lower.split(';').next().unwrap_or("").trim().to_owned()
}

/// Whether an attachment name says a zip archive (`.zip` in any case, trailing dots and spaces
/// aside, as a file system would take it): read, such a file is the archive its sender meant,
/// not a wrapper, unless it is a wrapper around a zip ([`decode`]).
pub fn is_zip_name(name: &str) -> bool {
    name.trim_end_matches(['.', ' '])
        .to_ascii_lowercase()
        .ends_with(".zip")
}

/// Whether the writer sends an attachment named `name` (as written) as it is, not wrapped:
/// only when the name ends exactly in lowercase `.zip`, the one form every receiver's rule
/// ("no unzip when the name ends in `.zip`", a case-sensitive `endsWith` in VNPT's Java) takes
/// for a zip. A `.zip` sent as it is is saved as it is; anything else may be unzipped by a
/// receiver, so it must be a wrapper whose one entry has a neutral name, never the sender's
/// archive with its own entry names (`../../x`). `A.ZIP` wrapped reaches a receiver that does
/// not unzip it as a zip inside a zip: harmless. Trailing dots and spaces never get here:
/// [`super::file_name::unsafe_to_send`] refuses them.
pub fn travels_as_is(name: &str) -> bool {
    name.ends_with(".zip")
}

/// The extension of `name` (without the dot, lowercase) when it is a plain one: 1 to 10 ASCII
/// letters or digits after the last dot of the last path component.
pub fn extension(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let (stem, ext) = last.trim_end_matches(['.', ' ']).rsplit_once('.')?;
    (!stem.is_empty()
        && (1..=10).contains(&ext.len())
        && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
    .then(|| ext.to_ascii_lowercase())
}

/// The MIME type of the file types clerks attach, by extension; `None` for others.
pub fn type_of_name(name: &str) -> Option<&'static str> {
    Some(match extension(name)?.as_str() {
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "rtf" => "application/rtf",
        "txt" => "text/plain",
        "xml" | "edxml" => "application/xml",
        "zip" => ZIP_CONTENT_TYPE,
        "rar" => "application/vnd.rar",
        "7z" => "application/x-7z-compressed",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "tif" | "tiff" => "image/tiff",
        _ => return None,
    })
}

/// The entry names that mark a zip-based document rather than a wrapper: Office Open XML's
/// `[Content_Types].xml`, OpenDocument's and EPUB's `mimetype`, and the `META-INF/` folder of
/// OpenDocument, EPUB and JAR. A wrapper holds one file under some name; none of these is a
/// file anyone sends alone.
fn is_container_entry(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"[Content_Types].xml")
        || name == b"mimetype"
        || name.starts_with(b"META-INF/")
}

/// Decodes `ContentTransferEncoded` text under `limits`, counting against `budget`, and decides
/// by its content what the file is (the rule is in the module documentation). `path` names the
/// element in errors.
pub fn decode(
    text: &str,
    labels: &Labels,
    limits: &Limits,
    budget: &mut Budget,
    path: &str,
) -> Result<Decoded, FormatError> {
    let bytes = decode_base64(text).map_err(|p| FormatError::new(Code::Base64Invalid, path, p))?;
    let remaining = limits
        .max_total_attachment_bytes
        .saturating_sub(budget.used);
    let mut warnings = Vec::new();
    let (data, transfer, container) = if !bytes.starts_with(ZIP_MAGIC) {
        check_plain(bytes.len() as u64, limits, remaining, path)?;
        (bytes, Transfer::Plain, false)
    } else if is_zip_name(labels.name) {
        match unwrap_zip_in_zip(&bytes, labels.name, limits, remaining, path) {
            Some(range) => {
                if travels_as_is(labels.name.trim()) {
                    warnings.push(Warning::new(
                        WarningKind::AttachmentLabel,
                        labels.label_path,
                        format!(
                            "{:?} wrapped in a second zip, as older writers (lienthong \
                             before 2026-12) sent a .zip; unwrapped",
                            labels.name
                        ),
                    ));
                }
                let mut bytes = bytes;
                let data = match range {
                    Unzipped::Stored(range) => {
                        bytes.truncate(range.end);
                        bytes.drain(..range.start);
                        bytes
                    }
                    Unzipped::One(inner) => inner,
                };
                (data, Transfer::Zipped, false)
            }
            None => {
                check_plain(bytes.len() as u64, limits, remaining, path)?;
                (bytes, Transfer::ZipAsIs, false)
            }
        }
    } else {
        let archive = zip::ZipArchive::new(Cursor::new(bytes.as_slice()))
            .map_err(|e| invalid(path, format!("broken zip: {e}")))?;
        let entries = archive.len();
        let container = archive.file_names_raw().any(is_container_entry);
        let one_file = entries == 1 && !archive.file_names_raw().any(|n| n.ends_with(b"/"));
        if !container && one_file {
            match unzip_single(archive, &bytes, limits, remaining, path)? {
                Unzipped::Stored(range) => {
                    // The file is a run of the zip: cut it out in place instead of copying it.
                    let mut bytes = bytes;
                    bytes.truncate(range.end);
                    bytes.drain(..range.start);
                    (bytes, Transfer::Zipped, false)
                }
                Unzipped::One(inner) => (inner, Transfer::Zipped, false),
            }
        } else {
            drop(archive);
            check_plain(bytes.len() as u64, limits, remaining, path)?;
            // A document format the labels name (not the bare zip, which is also what a
            // wrapper is labelled) explains a zip of several entries; nothing else does.
            let document = |t: &str| is_zip_based_type(t) && !is_zip_type(t);
            let zip_based = labels.manifest_type.is_some_and(document)
                || type_of_name(labels.name).is_some_and(document);
            if !container && !zip_based {
                warnings.push(Warning::new(
                    WarningKind::AttachmentLabel,
                    labels.label_path,
                    format!(
                        "a zip of {entries} entries, not a one-file wrapper, for {:?}; kept as it is",
                        labels.name
                    ),
                ));
            }
            (bytes, Transfer::ZipAsIs, container)
        }
    };
    budget.used = budget.used.saturating_add(data.len() as u64);
    let content_type = content_type(labels, transfer, container, &data, &mut warnings);
    Ok(Decoded {
        data,
        transfer,
        content_type,
        warnings,
    })
}

/// The zip archive a zip-named attachment's `bytes` wrap, or `None` when they are the archive
/// itself. A wrapper is a zip of exactly one file entry, named as the attachment or `*.zip`
/// (any case: this node's and VNPT's `<uuid>.zip`, older lienthong nodes' attachment name),
/// that holds a zip — or holds anything when the name does not end exactly in `.zip`, since
/// such a name is wrapped by this node's writer and VNPT's whatever the file is. Anything
/// that fails on the way (unreadable, over a cap, a CRC mismatch) is no wrapper: the `.zip` is
/// then kept as it was sent, as a damaged `.zip` always was.
fn unwrap_zip_in_zip(
    bytes: &[u8],
    name: &str,
    limits: &Limits,
    remaining: u64,
    path: &str,
) -> Option<Unzipped> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    if archive.len() != 1 {
        return None;
    }
    {
        let mut entry = archive.by_index(0).ok()?;
        let entry_name = entry.name_raw();
        let named = entry_name == name.trim().as_bytes()
            || entry_name.to_ascii_lowercase().ends_with(b".zip");
        if entry.is_dir() || !named {
            return None;
        }
        if travels_as_is(name.trim()) {
            let mut head = Vec::with_capacity(ZIP_MAGIC.len());
            (&mut entry)
                .take(ZIP_MAGIC.len() as u64)
                .read_to_end(&mut head)
                .ok()?;
            if head != ZIP_MAGIC {
                return None;
            }
        }
    }
    let inner = unzip_single(archive, bytes, limits, remaining, path).ok()?;
    Some(inner)
}

/// The file's type, and the warnings for labels that contradict what the bytes turned out to
/// be.
fn content_type(
    l: &Labels,
    transfer: Transfer,
    container: bool,
    data: &[u8],
    warnings: &mut Vec<Warning>,
) -> String {
    let shown = |t: Option<&str>| format!("{:?}", t.unwrap_or("(nothing)"));
    let label_zip = l.label.is_some_and(is_zip_type);
    let mut label_warning = |message: String| {
        warnings.push(Warning::new(
            WarningKind::AttachmentLabel,
            l.label_path,
            message,
        ));
    };
    match transfer {
        Transfer::Zipped if !label_zip => {
            label_warning(format!("zipped but labelled {}; unzipped", shown(l.label)));
        }
        Transfer::Plain if label_zip => {
            label_warning("labelled application/zip but not zipped; taken as it is".to_owned());
        }
        Transfer::ZipAsIs if label_zip && container => label_warning(
            "labelled application/zip but it is a zip-based document itself, not wrapped; \
             taken as it is"
                .to_owned(),
        ),
        _ => {}
    }
    // What the bytes and the name say the file is, when the labels do not.
    let guessed = || {
        type_of_name(l.name)
            .or_else(|| data.starts_with(b"%PDF-").then_some("application/pdf"))
            .unwrap_or(OCTET_STREAM)
    };
    let manifest_warning = |warnings: &mut Vec<Warning>, message: String| {
        warnings.push(Warning::new(
            WarningKind::AttachmentLabel,
            l.manifest_path,
            message,
        ));
    };
    // A zip archive as such (a `.zip`, or a zip of several files): `application/zip` is its
    // own type.
    let archive_itself = (transfer == Transfer::ZipAsIs && !container)
        || (transfer == Transfer::Zipped && is_zip_name(l.name) && data.starts_with(ZIP_MAGIC));
    match l.manifest_type {
        // The manifest calls a file that is not a zip archive a zip: the transfer type written
        // where the original type belongs.
        Some(t) if is_zip_type(t) && !archive_itself => {
            let g = guessed();
            let what = match transfer {
                Transfer::Zipped => "was wrapped in a zip",
                Transfer::Plain => "is not a zip",
                Transfer::ZipAsIs => "is a zip-based document",
            };
            manifest_warning(
                warnings,
                format!(
                    "the manifest says {t:?} but {:?} {what}; read as {g}",
                    l.name
                ),
            );
            g.to_owned()
        }
        Some(t) => {
            if container && !is_zip_based_type(t) {
                manifest_warning(
                    warnings,
                    format!("the manifest says {t:?} but the file is a zip-based document"),
                );
            }
            t.to_owned()
        }
        None => match l.label {
            Some(t) if !is_zip_type(t) => t.to_owned(),
            Some(t) if archive_itself => t.to_owned(),
            _ => {
                let g = guessed();
                warnings.push(Warning::new(
                    WarningKind::ValueDefaulted,
                    l.manifest_path,
                    format!("no original type; read as {g}"),
                ));
                g.to_owned()
            }
        },
    }
}

/// Base64 with any ASCII whitespace (line breaks every 76 characters are common) removed first.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let b = text.as_bytes();
    let decoded = if b.iter().any(u8::is_ascii_whitespace) {
        let compact: Vec<u8> = b
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        LENIENT.decode(compact)
    } else {
        LENIENT.decode(b)
    };
    decoded.map_err(|e| format!("not valid base64: {e}"))
}

fn check_plain(len: u64, limits: &Limits, remaining: u64, path: &str) -> Result<(), FormatError> {
    if len > limits.max_attachment_bytes {
        return Err(too_large(
            path,
            format!(
                "{len} bytes, over the per-file limit of {}",
                limits.max_attachment_bytes
            ),
        ));
    }
    if len > remaining {
        return Err(too_large(
            path,
            format!(
                "attachments total over the limit of {} bytes",
                limits.max_total_attachment_bytes
            ),
        ));
    }
    Ok(())
}

fn too_large(path: &str, problem: String) -> FormatError {
    FormatError::new(Code::AttachmentTooLarge, path, problem)
}

fn invalid(path: &str, problem: impl Into<String>) -> FormatError {
    FormatError::new(Code::AttachmentInvalid, path, problem)
}

enum Unzipped {
    One(Vec<u8>),
    /// A Stored entry, within the caps and with its CRC checked: the file is these bytes of the
    /// zip.
    Stored(std::ops::Range<usize>),
}

/// Extracts the single entry of `archive` (read from `zipped`), reading at most the smallest
/// cap plus one byte.
fn unzip_single(
    mut archive: zip::ZipArchive<Cursor<&[u8]>>,
    zipped: &[u8],
    limits: &Limits,
    remaining_total: u64,
    path: &str,
) -> Result<Unzipped, FormatError> {
    let mut entry = archive
        .by_index(0)
        .map_err(|e| invalid(path, format!("broken zip: {e}")))?;
    if entry.is_dir() {
        return Err(invalid(path, "the zip holds a directory, not a file"));
    }
    let ratio_cap = (zipped.len() as u64)
        .saturating_mul(limits.max_zip_ratio)
        .max(RATIO_EXEMPT_BYTES);
    let caps = [
        (
            limits.max_attachment_bytes,
            format!(
                "over the per-file limit of {} bytes",
                limits.max_attachment_bytes
            ),
        ),
        (
            remaining_total,
            format!(
                "attachments total over the limit of {} bytes",
                limits.max_total_attachment_bytes
            ),
        ),
        (
            ratio_cap,
            format!(
                "unzips to more than {} times its {} zipped bytes (zip bomb?)",
                limits.max_zip_ratio,
                zipped.len()
            ),
        ),
    ];
    let cap = caps.iter().map(|(c, _)| *c).min().unwrap_or(0);
    let over_cap = |caps: [(u64, String); 3]| {
        let why = caps
            .into_iter()
            .find(|(c, _)| *c == cap)
            .map(|(_, why)| why)
            .unwrap_or_default();
        too_large(path, why)
    };
    if entry.compression() == zip::CompressionMethod::Stored
        && let Some(start) = entry.data_start()
    {
        // Stored: the file is the next `compressed_size` bytes. Both sizes must agree and the
        // run must lie inside the zip, whatever the headers claim; the CRC is checked here
        // because nothing reads the entry through the zip crate's checking reader.
        let len = entry.compressed_size();
        if entry.size() != len {
            return Err(invalid(
                path,
                format!(
                    "a stored entry of {len} bytes that says it unpacks to {}",
                    entry.size()
                ),
            ));
        }
        let range = usize::try_from(start)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(s, l)| Some(s..s.checked_add(l)?))
            .filter(|r| r.end <= zipped.len())
            .ok_or_else(|| invalid(path, "broken zip: the stored entry runs past its end"))?;
        if len > cap {
            return Err(over_cap(caps));
        }
        if crc32fast::hash(&zipped[range.clone()]) != entry.crc32() {
            return Err(invalid(path, "cannot unzip: CRC-32 mismatch"));
        }
        return Ok(Unzipped::Stored(range));
    }
    // The declared size only sizes the first allocation, never beyond the cap.
    let initial = entry.size().min(cap).min(64 * 1024 * 1024);
    let mut data = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
    (&mut entry)
        .take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| invalid(path, format!("cannot unzip: {e}")))?;
    if data.len() as u64 > cap {
        return Err(over_cap(caps));
    }
    Ok(Unzipped::One(data))
}

/// Zips `data` as the single Deflate entry `name`, with fixed metadata (1980-01-01 00:00,
/// mode 0644, level 6), so equal input gives equal output.
pub fn zip_single(name: &str, data: &[u8]) -> Result<Vec<u8>, FormatError> {
    let fail = |e: &dyn std::fmt::Display| {
        FormatError::new(
            Code::AttachmentInvalid,
            "(zip)",
            format!("cannot zip {name:?}: {e}"),
        )
    };
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(zip::DateTime::DEFAULT)
        .unix_permissions(0o644)
        .large_file(data.len() as u64 >= u64::from(u32::MAX));
    let entry_name = if name.is_empty() { "file" } else { name };
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(data.len() / 2 + 512)));
    w.start_file(entry_name, options).map_err(|e| fail(&e))?;
    w.write_all(data).map_err(|e| fail(&e))?;
    let out = w.finish().map_err(|e| fail(&e))?;
    Ok(out.into_inner())
}

/// How much of the start of a file is deflated to decide whether deflating it pays.
pub const DEFLATE_SAMPLE_BYTES: usize = 64 * 1024;

/// Whether deflating `data` pays: its first [`DEFLATE_SAMPLE_BYTES`] deflate to at most nine
/// tenths. The sample is deflated at level 1, several times faster than the level 6 the entry is
/// written with and as good a test of whether the bytes compress at all. A function of the bytes
/// only, so writing stays deterministic. A file whose start does not compress but whose rest
/// would is stored: the price is size, never correctness.
///
/// Before deflating, the sample's byte entropy is counted (a few microseconds against tens for
/// the deflate trial): bytes that look uniformly random, as compressed files do, are stored
/// without the trial. A file whose bytes look random but repeat in long runs (a random block
/// copied over and over) is stored where deflate would have shrunk it: size, not correctness.
pub fn deflate_pays(data: &[u8]) -> bool {
    use flate2::Compression;
    use flate2::write::DeflateEncoder;
    let sample = &data[..data.len().min(DEFLATE_SAMPLE_BYTES)];
    if sample.is_empty() {
        return false;
    }
    if looks_random(sample) {
        return false;
    }
    let mut e = DeflateEncoder::new(
        Vec::with_capacity(sample.len() / 2 + 64),
        Compression::new(1),
    );
    // Writing into a Vec cannot fail; if it did, deflating is the safe old behaviour.
    if e.write_all(sample).is_err() {
        return true;
    }
    e.finish()
        .map_or(true, |out| out.len() * 10 <= sample.len() * 9)
}

/// Samples smaller than this always get the deflate trial: the estimate is too rough.
const MIN_ENTROPY_SAMPLE: usize = 4096;

/// Whether `sample` looks uniformly random by its order-0 byte entropy.
///
/// The plug-in estimate of `n` uniformly random bytes runs low by about 255 / (2 n ln 2) bits;
/// the bar is 8 bits less twice that and 0.003, so it scales with the sample: 7.907 bits at
/// 4 KiB, 7.961 at 10 KiB, 7.991 at 64 KiB. Measured when it was set: 200 random samples of
/// each size all above it; of 3,501 samples (4, 10 and 64 KiB) of the machine's .gz, .jar,
/// .png, .so and font files above it, none that zlib at level 1 shrank by a tenth (a flat 7.9
/// let through 11 of 1,362 such, PNGs and .gz files zlib shrank by 11–21 %).
fn looks_random(sample: &[u8]) -> bool {
    if sample.len() < MIN_ENTROPY_SAMPLE {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[usize::from(b)] += 1;
    }
    let n = sample.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    bits >= 8.0 - 255.0 / (n * std::f64::consts::LN_2) - 0.003
}

/// The neutral name of the zip entry that carries attachment `name`: `<uuid>.<ext>`, as VNPT's
/// writer names its entries, never the attachment's name. VNPT's reader unzips every
/// attachment into one folder under its entry name, so a name with `/`, `..` or over 255 bytes
/// would break or escape that folder, and two attachments of the same name would overwrite
/// each other. The UUID is derived from `seed` (the DocumentId and ContentId, unique per
/// attachment) so writing stays deterministic; the extension is the safe attachment name's
/// ([`super::file_name::safe_file_name`]), only when it is 1 to 10 ASCII letters or digits.
pub fn entry_name(seed: &str, name: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    let id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    match extension(&super::file_name::safe_file_name(name)) {
        Some(ext) => format!("{id}.{ext}"),
        None => id.to_string(),
    }
}

/// Appends the base64 of the single-entry zip of `data` (named `name`) to `out`: Deflated when
/// [`deflate_pays`], else Stored. A Stored entry is encoded from `data` directly, so the only
/// copy of the file that this makes is its base64 text.
pub fn append_zipped_base64(name: &str, data: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
    let entry_name = if name.is_empty() { "file" } else { name };
    // The hand-written entry has no Zip64 fields: at 4 GiB and above let the zip crate write it.
    if deflate_pays(data) || u32::try_from(data.len()).is_err() {
        let zipped = zip_single(name, data)?;
        append_base64(&zipped, out);
        return Ok(());
    }
    let (head, tail) = stored_frame(entry_name, data);
    let mut b = Base64Appender::new(out, head.len() + data.len() + tail.len());
    b.push(&head);
    b.push(data);
    b.push(&tail);
    b.finish();
    Ok(())
}

/// The bytes of a one-entry Stored zip before and after the file's bytes: the local file header,
/// and the central directory with its end record. Fixed metadata as [`zip_single`] writes it
/// (1980-01-01 00:00, Unix mode 0644, the UTF-8 flag for a non-ASCII name). `data` is under 4 GiB.
fn stored_frame(name: &str, data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    const VERSION_NEEDED: u16 = 10; // 1.0: stored
    const MADE_BY: u16 = (3 << 8) | 20; // Unix, 2.0
    const DOS_DATE_1980: u16 = (1 << 5) | 1; // 1980-01-01
    let flags: u16 = if name.is_ascii() { 0 } else { 1 << 11 };
    let crc = crc32fast::hash(data);
    let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let name = &name.as_bytes()[..usize::from(name_len)];
    let mut head = Vec::with_capacity(30 + name.len());
    head.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    for v in [VERSION_NEEDED, flags, 0, 0, DOS_DATE_1980] {
        head.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, size, size] {
        head.extend_from_slice(&v.to_le_bytes());
    }
    head.extend_from_slice(&name_len.to_le_bytes());
    head.extend_from_slice(&0u16.to_le_bytes());
    head.extend_from_slice(name);

    let mut tail = Vec::with_capacity(46 + name.len() + 22);
    tail.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    for v in [MADE_BY, VERSION_NEEDED, flags, 0, 0, DOS_DATE_1980] {
        tail.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, size, size] {
        tail.extend_from_slice(&v.to_le_bytes());
    }
    for v in [name_len, 0, 0, 0, 0] {
        tail.extend_from_slice(&v.to_le_bytes());
    }
    tail.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes()); // external attributes
    tail.extend_from_slice(&0u32.to_le_bytes()); // the local header is at 0
    tail.extend_from_slice(name);
    let cd_size = u32::try_from(tail.len()).unwrap_or(u32::MAX);
    let cd_offset = u32::try_from(head.len() + data.len()).unwrap_or(u32::MAX);
    tail.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, 1, 1] {
        tail.extend_from_slice(&v.to_le_bytes());
    }
    tail.extend_from_slice(&cd_size.to_le_bytes());
    tail.extend_from_slice(&cd_offset.to_le_bytes());
    tail.extend_from_slice(&0u16.to_le_bytes());
    (head, tail)
}

/// Base64 (standard, padded) of several byte runs as if they were one, appended to a `Vec`:
/// whole 3-byte groups are encoded in place, the remainder carried to the next run.
struct Base64Appender<'a> {
    out: &'a mut Vec<u8>,
    carry: [u8; 3],
    carried: usize,
}

impl<'a> Base64Appender<'a> {
    fn new(out: &'a mut Vec<u8>, total: usize) -> Self {
        out.reserve(total.div_ceil(3) * 4);
        Base64Appender {
            out,
            carry: [0; 3],
            carried: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        if self.carried > 0 {
            let take = (3 - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&bytes[..take]);
            self.carried += take;
            bytes = &bytes[take..];
            if self.carried < 3 {
                return;
            }
            let group = self.carry;
            self.encode(&group);
            self.carried = 0;
        }
        let whole = bytes.len() / 3 * 3;
        self.encode(&bytes[..whole]);
        let rest = &bytes[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    /// Encodes `bytes` (whole groups, or the padded end) at the end of the output.
    fn encode(&mut self, bytes: &[u8]) {
        append_base64(bytes, self.out);
    }

    fn finish(self) {
        let rest = self.carry;
        append_base64(&rest[..self.carried], self.out);
    }
}

/// Appends the base64 of `bytes` (standard alphabet, padded, no line breaks) to `out`, encoding
/// in place so no intermediate string is built.
pub fn append_base64(bytes: &[u8], out: &mut Vec<u8>) {
    let Some(len) = base64::encoded_len(bytes.len(), true) else {
        // Only for inputs near usize::MAX, which cannot be in memory; fall back anyway.
        out.extend_from_slice(STANDARD.encode(bytes).as_bytes());
        return;
    };
    let start = out.len();
    out.resize(start + len, 0);
    // The slice is exactly the encoded length, so this cannot fail.
    if STANDARD.encode_slice(bytes, &mut out[start..]).is_err() {
        out.truncate(start);
        out.extend_from_slice(STANDARD.encode(bytes).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file named `name`, with the manifest type `manifest` and the transfer label `label`.
    fn labels<'a>(name: &'a str, manifest: Option<&'a str>, label: Option<&'a str>) -> Labels<'a> {
        Labels {
            name,
            manifest_type: manifest,
            label,
            manifest_path: "Reference[1]/ContentType",
            label_path: "Attachment[1]/ContentType",
        }
    }

    /// As the writer labels a PDF: manifest `application/pdf`, attachment `application/zip`.
    fn dec(text: &str, limits: &Limits) -> Result<Decoded, FormatError> {
        let l = labels("f.pdf", Some("application/pdf"), Some(ZIP_CONTENT_TYPE));
        decode(text, &l, limits, &mut Budget::default(), "x")
    }

    fn dec_as(bytes: &[u8], l: &Labels) -> Decoded {
        decode(
            &b64(bytes),
            l,
            &Limits::default(),
            &mut Budget::default(),
            "x",
        )
        .unwrap()
    }

    /// The warnings as (kind, path).
    fn warned(d: &Decoded) -> Vec<(WarningKind, &str)> {
        d.warnings
            .iter()
            .map(|w| (w.kind, w.path.as_str()))
            .collect()
    }

    const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    const LABEL: WarningKind = WarningKind::AttachmentLabel;
    const AT_LABEL: &str = "Attachment[1]/ContentType";
    const AT_MANIFEST: &str = "Reference[1]/ContentType";

    /// A zip of `entries`, as any archiver writes it.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (n, body) in entries {
            w.start_file(*n, SimpleFileOptions::default()).unwrap();
            w.write_all(body).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// A minimal Office Open XML file: several entries, `[Content_Types].xml` first.
    fn docx() -> Vec<u8> {
        zip_of(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("_rels/.rels", b"<Relationships/>"),
            ("word/document.xml", b"<w:document/>"),
        ])
    }

    const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n";

    fn b64(bytes: &[u8]) -> String {
        let mut v = Vec::new();
        append_base64(bytes, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn zip_roundtrip_is_deterministic() {
        let data = "Nội dung công văn. ".repeat(1000).into_bytes();
        let a = zip_single("công văn.txt", &data).unwrap();
        let b = zip_single("công văn.txt", &data).unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with(ZIP_MAGIC));
        let d = dec(&b64(&a), &Limits::default()).unwrap();
        assert_eq!(d.data, data);
        assert_eq!(d.transfer, Transfer::Zipped);
    }

    #[test]
    fn plain_and_whitespace() {
        let d = dec("SGVs\r\nbG8=\n", &Limits::default()).unwrap();
        assert_eq!(d.data, b"Hello");
        assert_eq!(d.transfer, Transfer::Plain);
        assert_eq!(dec("SGVsbG8", &Limits::default()).unwrap().data, b"Hello");
        assert_eq!(
            dec("SGV$bG8=", &Limits::default()).unwrap_err().code,
            Code::Base64Invalid
        );
        assert_eq!(dec("", &Limits::default()).unwrap().data, b"");
    }

    #[test]
    fn caps() {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let z = zip_single("z", &zeros).unwrap();
        let e = dec(&b64(&z), &Limits::default()).unwrap_err();
        assert_eq!(e.code, Code::AttachmentTooLarge, "{e}");
        assert!(e.problem.contains("zip bomb"), "{e}");
        let small = Limits {
            max_attachment_bytes: 100,
            ..Limits::default()
        };
        let z = zip_single("z", &[7u8; 101]).unwrap();
        assert_eq!(
            dec(&b64(&z), &small).unwrap_err().code,
            Code::AttachmentTooLarge
        );
        assert_eq!(
            dec(&b64(&[1u8; 101]), &small).unwrap_err().code,
            Code::AttachmentTooLarge
        );
        assert!(dec(&b64(&[1u8; 100]), &small).is_ok());
        // The total is shared.
        let total = Limits {
            max_total_attachment_bytes: 150,
            ..Limits::default()
        };
        let mut budget = Budget::default();
        let l = labels("a.pdf", None, None);
        assert!(decode(&b64(&[1u8; 100]), &l, &total, &mut budget, "a").is_ok());
        let e = decode(&b64(&[1u8; 100]), &l, &total, &mut budget, "b").unwrap_err();
        assert_eq!(e.code, Code::AttachmentTooLarge);
    }

    #[test]
    fn broken_and_multi_entry_zips() {
        let mut bad = ZIP_MAGIC.to_vec();
        bad.extend_from_slice(&[0u8; 40]);
        assert_eq!(
            dec(&b64(&bad), &Limits::default()).unwrap_err().code,
            Code::AttachmentInvalid
        );
        // A zip of several entries that is no document format: kept as it is, flagged.
        let two = zip_of(&[("a", b"x"), ("b", b"x")]);
        let d = dec(&b64(&two), &Limits::default()).unwrap();
        assert_eq!((d.transfer, &d.data), (Transfer::ZipAsIs, &two));
        assert_eq!(warned(&d), [(LABEL, AT_LABEL)]);
        assert!(
            d.warnings[0].message.contains("2 entries"),
            "{:?}",
            d.warnings
        );
        let zip = Some(ZIP_CONTENT_TYPE);
        let d = dec_as(&two, &labels("x.pdf", zip, zip));
        assert_eq!(warned(&d), [(LABEL, AT_LABEL)]);
        // Named as a zip-based document: that explains its entries.
        let d = dec_as(&two, &labels("x.xlsx", zip, zip));
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        // A one-entry zip whose entry is a directory is no wrapper either.
        let dir = {
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            w.add_directory("d/", SimpleFileOptions::default()).unwrap();
            w.finish().unwrap().into_inner()
        };
        assert_eq!(dec(&b64(&dir), &Limits::default()).unwrap().data, dir);
    }

    /// A zipped PDF labelled `application/pdf` in both places: unzipped, the label flagged.
    #[test]
    fn zip_labelled_pdf_is_unzipped() {
        let wrapped = zip_single("x", PDF).unwrap();
        let pdf = Some("application/pdf");
        let d = dec_as(&wrapped, &labels("Công văn.pdf", pdf, pdf));
        assert_eq!((d.transfer, d.data.as_slice()), (Transfer::Zipped, PDF));
        assert_eq!(d.content_type, "application/pdf");
        assert_eq!(warned(&d), [(LABEL, AT_LABEL)]);
        // Labelled zip in both places (VNPT's kit, Bkav): unzipped, the manifest's type is
        // the transfer's, so the file's is taken from its name, and that is flagged.
        let zip = Some(ZIP_CONTENT_TYPE);
        let d = dec_as(&wrapped, &labels("1896_QD-TTg.doc", zip, zip));
        assert_eq!((d.transfer, d.data.as_slice()), (Transfer::Zipped, PDF));
        assert_eq!(d.content_type, "application/msword");
        assert_eq!(warned(&d), [(LABEL, AT_MANIFEST)]);
        // As the writer labels it: nothing to flag.
        let d = dec_as(&wrapped, &labels("a.pdf", pdf, zip));
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    }

    /// A raw PDF labelled zip: the PDF as it is, both labels flagged, typed as a PDF.
    #[test]
    fn raw_pdf_labelled_zip_is_kept() {
        let zip = Some(ZIP_CONTENT_TYPE);
        let d = dec_as(PDF, &labels("a.pdf", zip, zip));
        assert_eq!((d.transfer, d.data.as_slice()), (Transfer::Plain, PDF));
        assert_eq!(d.content_type, "application/pdf");
        assert_eq!(warned(&d), [(LABEL, AT_LABEL), (LABEL, AT_MANIFEST)]);
        // No extension: the content says PDF.
        let d = dec_as(PDF, &labels("văn bản", zip, zip));
        assert_eq!(d.content_type, "application/pdf");
        // The manifest right, the label wrong: one warning.
        let d = dec_as(PDF, &labels("a.pdf", Some("application/pdf"), zip));
        assert_eq!(warned(&d), [(LABEL, AT_LABEL)]);
    }

    /// A `.docx` sent without a wrapper is the file itself, not a wrapper of its first entry,
    /// whatever the labels say.
    #[test]
    fn docx_itself_is_not_a_wrapper() {
        let docx = docx();
        let zip = Some(ZIP_CONTENT_TYPE);
        for (manifest, label, warnings) in [
            (Some(DOCX), Some(DOCX), vec![]),
            (Some(DOCX), zip, vec![(LABEL, AT_LABEL)]),
            (zip, zip, vec![(LABEL, AT_LABEL), (LABEL, AT_MANIFEST)]),
            (
                Some("application/pdf"),
                Some(DOCX),
                vec![(LABEL, AT_MANIFEST)],
            ),
        ] {
            let d = dec_as(&docx, &labels("Dự thảo.docx", manifest, label));
            assert_eq!(
                (d.transfer, &d.data),
                (Transfer::ZipAsIs, &docx),
                "{manifest:?}"
            );
            assert_eq!(warned(&d), warnings, "{manifest:?} {label:?}");
        }
        // Named .doc, it is still the document; its type is what the name says.
        let d = dec_as(&docx, &labels("a.doc", zip, zip));
        assert_eq!(
            (d.transfer, d.content_type.as_str()),
            (Transfer::ZipAsIs, "application/msword")
        );
        // Even one entry, if it is the document's marker, is a document and not a wrapper.
        let marker = zip_of(&[("[Content_Types].xml", b"<Types/>")]);
        assert_eq!(
            dec_as(&marker, &labels("a.docx", Some(DOCX), zip)).transfer,
            Transfer::ZipAsIs
        );
        let odt = zip_of(&[("mimetype", b"application/vnd.oasis.opendocument.text")]);
        assert_eq!(
            dec_as(&odt, &labels("a.odt", None, zip)).transfer,
            Transfer::ZipAsIs
        );
    }

    /// A one-entry wrapper around a `.docx` gives the `.docx`; around a file named `.docx` that
    /// is not a zip at all (an old `.doc` renamed), that file, not the wrapper.
    #[test]
    fn docx_inside_a_one_entry_wrapper_is_unwrapped() {
        let docx = docx();
        let zip = Some(ZIP_CONTENT_TYPE);
        for name_inside in ["Dự thảo.docx", "a/b/../c.bin", ""] {
            let wrapped = zip_single(name_inside, &docx).unwrap();
            let d = dec_as(&wrapped, &labels("Dự thảo.docx", Some(DOCX), zip));
            assert_eq!(
                (d.transfer, &d.data),
                (Transfer::Zipped, &docx),
                "{name_inside:?}"
            );
            assert!(d.warnings.is_empty(), "{:?}", d.warnings);
            assert_eq!(d.content_type, DOCX);
        }
        let old_doc = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 an OLE2 .doc renamed".to_vec();
        let wrapped = zip_single("x.docx", &old_doc).unwrap();
        let d = dec_as(&wrapped, &labels("Dự thảo.docx", Some(DOCX), zip));
        assert_eq!((d.transfer, d.data), (Transfer::Zipped, old_doc));
    }

    /// A `.zip` attachment is the archive itself, whatever it holds, unless it is a wrapper
    /// around a zip (next tests).
    #[test]
    fn zip_attachment_is_kept_as_it_is() {
        let zip = Some(ZIP_CONTENT_TYPE);
        let one = zip_single("bên trong.pdf", PDF).unwrap();
        // One entry, but not a zip inside and not named as a wrapper's is.
        let pdf_named_zip = zip_single("hồ sơ.zip", PDF).unwrap();
        for (data, name) in [
            (&one, "hồ sơ.zip"),
            (&one, "HỒ SƠ.ZIP"),
            (&pdf_named_zip, "hồ sơ.zip"),
            (&docx(), "x.zip "),
        ] {
            let d = dec_as(data, &labels(name, zip, zip));
            assert_eq!((d.transfer, &d.data), (Transfer::ZipAsIs, data), "{name}");
            assert!(d.warnings.is_empty(), "{:?}", d.warnings);
            assert_eq!(d.content_type, ZIP_CONTENT_TYPE);
        }
        // Not parsed at all: a damaged .zip is the sender's file, as damaged as it was sent.
        let d = dec_as(&one[..40], &labels("a.zip", zip, zip));
        assert_eq!(d.data, &one[..40]);
    }

    /// A `.zip` as older lienthong nodes sent it: wrapped in a zip whose one entry is named
    /// after the attachment (Stored when it did not deflate, Deflated otherwise). Unwrapped,
    /// flagged, typed as the zip it is.
    #[test]
    fn zip_wrapped_by_an_older_node_is_unwrapped_and_flagged() {
        let zip = Some(ZIP_CONTENT_TYPE);
        let evil = zip_of(&[("../../escape.txt", b"x"), ("b.txt", b"y")]);
        let compressible = zip_of(&[("a.txt", "Nội dung. ".repeat(3000).as_bytes())]);
        for (name, data) in [("Hồ sơ.zip", &evil), ("hồ sơ 2.zip", &compressible)] {
            // The old writer: one entry named after the attachment, through the same path.
            for text in [written(name, data), b64(&zip_single(name, data).unwrap())] {
                let d = decode(
                    &text,
                    &labels(name, zip, zip),
                    &Limits::default(),
                    &mut Budget::default(),
                    "x",
                )
                .unwrap();
                assert_eq!((d.transfer, &d.data), (Transfer::Zipped, data), "{name}");
                assert_eq!(warned(&d), [(LABEL, AT_LABEL)], "{name}");
                assert!(d.warnings[0].message.contains("older"), "{:?}", d.warnings);
                assert_eq!(d.content_type, ZIP_CONTENT_TYPE);
            }
        }
        // Wrapped under a `*.zip` entry name of another kind (VNPT's `<uuid>.zip`) too.
        let wrapped = zip_single("0b6c1f2e-1c1d-4a5b-8e9f-0a1b2c3d4e5f.ZIP", &evil).unwrap();
        let d = dec_as(&wrapped, &labels("a.zip", zip, zip));
        assert_eq!((d.transfer, &d.data), (Transfer::Zipped, &evil));
        // A zip of one zip under another name is an archive of an archive: kept.
        let kept = zip_single("inner.bin", &evil).unwrap();
        let d = dec_as(&kept, &labels("a.zip", zip, zip));
        assert_eq!((d.transfer, &d.data), (Transfer::ZipAsIs, &kept));
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    }

    /// A name that says zip but not exactly `….zip` (`A.ZIP`): this node's writer wraps it under
    /// a neutral `<uuid>.zip` entry whatever the file is; read back as that file, unflagged.
    #[test]
    fn zip_named_otherwise_is_unwrapped_from_the_writers_wrapper() {
        let zip = Some(ZIP_CONTENT_TYPE);
        let evil = zip_of(&[("../../escape.txt", b"x")]);
        let pdf = Some("application/pdf");
        for (name, data, manifest) in [("HỒ SƠ.ZIP", &evil, zip), ("a.Zip", &PDF.to_vec(), pdf)]
        {
            let text = written(&entry_name("d\ncid:1", name), data);
            let d = decode(
                &text,
                &labels(name, manifest, zip),
                &Limits::default(),
                &mut Budget::default(),
                "x",
            )
            .unwrap();
            assert_eq!((d.transfer, &d.data), (Transfer::Zipped, data), "{name}");
            assert!(d.warnings.is_empty(), "{name}: {:?}", d.warnings);
        }
    }

    #[test]
    fn only_exact_zip_names_travel_as_they_are() {
        assert!(travels_as_is("hồ sơ.zip"));
        for name in [
            "a.zip.",
            "a.zip ",
            "A.ZIP",
            "a.Zip",
            "a.zip\u{200B}",
            "zip",
            "a.pdf",
        ] {
            assert!(!travels_as_is(name), "{name:?}");
        }
    }

    /// The caps hold whatever the decision: the ratio for a wrapper, the per-file and total
    /// sizes for a file kept as it is (a `.zip`, a document, a zip of several entries).
    #[test]
    fn caps_hold_for_every_decision() {
        let zip = Some(ZIP_CONTENT_TYPE);
        let bomb = zip_single("a.doc", &vec![0u8; 4 * 1024 * 1024]).unwrap();
        let e = decode(
            &b64(&bomb),
            &labels("a.doc", zip, zip),
            &Limits::default(),
            &mut Budget::default(),
            "x",
        )
        .unwrap_err();
        assert_eq!(e.code, Code::AttachmentTooLarge);
        assert!(e.problem.contains("zip bomb"), "{e}");
        let small = Limits {
            max_attachment_bytes: 100,
            ..Limits::default()
        };
        let big_zip = zip_single("a.txt", &random(300)).unwrap();
        let several = zip_of(&[("a", &random(200)), ("b", b"x")]);
        let docx = zip_of(&[("[Content_Types].xml", &random(200)[..])]);
        for (data, name) in [(&big_zip, "a.zip"), (&several, "a.pdf"), (&docx, "a.docx")] {
            let e = decode(
                &b64(data),
                &labels(name, zip, zip),
                &small,
                &mut Budget::default(),
                "x",
            )
            .unwrap_err();
            assert_eq!(e.code, Code::AttachmentTooLarge, "{name}");
        }
        let total = Limits {
            max_total_attachment_bytes: (big_zip.len() * 3 / 2) as u64,
            ..Limits::default()
        };
        let mut budget = Budget::default();
        let l = labels("a.zip", zip, zip);
        assert!(decode(&b64(&big_zip), &l, &total, &mut budget, "a").is_ok());
        let e = decode(&b64(&big_zip), &l, &total, &mut budget, "b").unwrap_err();
        assert_eq!(e.code, Code::AttachmentTooLarge);
    }

    /// Entry names are `<uuid>.<ext>`: deterministic per seed, different per seed, the extension
    /// only when it is a plain one of the safe name.
    #[test]
    fn entry_names_are_neutral() {
        let a = entry_name("doc\ncid:1", "../../Công văn 12/UBND.PDF");
        assert_eq!(a, entry_name("doc\ncid:1", "../../Công văn 12/UBND.PDF"));
        let (id, ext) = a.split_once('.').unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{a}");
        assert_eq!(ext, "pdf");
        assert_ne!(
            entry_name("doc\ncid:2", "UBND.pdf"),
            entry_name("doc\ncid:1", "UBND.pdf")
        );
        for (name, ext) in [
            ("báo cáo.tar.gz", Some("gz")),
            ("README", None),
            ("a.tệp", None),
            ("a.pdf\u{202E}", Some("pdf")),
            (&format!("{}.docx", "x".repeat(400)), Some("docx")),
            ("..", None),
        ] {
            let n = entry_name("s", name);
            assert_eq!(n.split_once('.').map(|(_, e)| e), ext, "{name:?} -> {n}");
            assert!(n.is_ascii() && n.len() <= 36 + 11, "{n}");
        }
    }

    /// What the writer puts in `ContentTransferEncoded` for `data`.
    fn written(name: &str, data: &[u8]) -> String {
        let mut v = Vec::new();
        append_zipped_base64(name, data, &mut v).unwrap();
        String::from_utf8(v).unwrap()
    }

    fn random(n: usize) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(5);
        (0..n).map(|_| rng.u8(..)).collect()
    }

    /// The local header's compression method.
    fn method(zip: &[u8]) -> u16 {
        u16::from_le_bytes([zip[8], zip[9]])
    }

    #[test]
    fn incompressible_files_are_stored_and_read_back() {
        for (name, n) in [("a.pdf", 0), ("a.pdf", 1), ("b.bin", 2), ("tệp.pdf", 3)]
            .into_iter()
            .chain([("big.pdf", 200_001), ("c.jpg", 70_000)])
        {
            let data = random(n);
            let text = written(name, &data);
            let zip = decode_base64(&text).unwrap();
            assert!(zip.starts_with(ZIP_MAGIC));
            assert_eq!(method(&zip), 0, "{name} {n}: stored");
            // The zip crate reads what we wrote by hand, name, CRC and all.
            let mut a = zip::ZipArchive::new(Cursor::new(&zip)).unwrap();
            let mut e = a.by_index(0).unwrap();
            assert_eq!(e.name().unwrap(), name);
            let mut back = Vec::new();
            e.read_to_end(&mut back).unwrap();
            assert_eq!(back, data);
            drop(e);
            let d = dec(&text, &Limits::default()).unwrap();
            assert_eq!((d.transfer, d.data), (Transfer::Zipped, data.clone()));
            assert_eq!(text, written(name, &data), "deterministic");
        }
        // Compressible files are still deflated, as before.
        let text = "Nội dung công văn. ".repeat(5000).into_bytes();
        let zip = decode_base64(&written("a.txt", &text)).unwrap();
        assert_eq!(method(&zip), 8);
        assert_eq!(zip, zip_single("a.txt", &text).unwrap());
        assert!(!deflate_pays(&random(100_000)));
        assert!(deflate_pays(&text));
    }

    /// The entropy bar skips the deflate trial only for bytes deflate cannot shrink: random
    /// samples of every size above the minimum, but not text, not random bytes drawn from half
    /// or a quarter of the byte values (7 or 6 bits per byte), and not samples too small to
    /// judge.
    #[test]
    fn only_random_looking_samples_skip_the_deflate_trial() {
        for n in [MIN_ENTROPY_SAMPLE, 10 * 1024, 30_000, DEFLATE_SAMPLE_BYTES] {
            assert!(looks_random(&random(n)), "{n} random bytes");
        }
        assert!(!looks_random(&random(MIN_ENTROPY_SAMPLE - 1)));
        let text = "Nội dung công văn số 12/STTTT-VP. "
            .repeat(2000)
            .into_bytes();
        assert!(!looks_random(&text));
        for mask in [0x7f, 0x3f] {
            let narrow: Vec<u8> = random(DEFLATE_SAMPLE_BYTES)
                .iter()
                .map(|b| b & mask)
                .collect();
            assert!(!looks_random(&narrow), "mask {mask:#x}");
        }
    }

    #[test]
    fn base64_appender_is_base64_of_the_concatenation() {
        let data = random(50);
        for a in 0..6 {
            for b in a..12 {
                let mut out = b"x".to_vec();
                let mut e = Base64Appender::new(&mut out, data.len());
                e.push(&data[..a]);
                e.push(&data[a..b]);
                e.push(&data[b..]);
                e.finish();
                assert_eq!(out[1..], *STANDARD.encode(&data).as_bytes(), "{a} {b}");
            }
        }
    }

    /// A hand-made stored zip whose headers can lie.
    fn stored_zip(data: &[u8], crc: u32, size: u32) -> Vec<u8> {
        let (mut head, mut tail) = stored_frame("f.pdf", data);
        for (buf, at) in [(&mut head, 14), (&mut tail, 16)] {
            buf[at..at + 4].copy_from_slice(&crc.to_le_bytes());
            buf[at + 8..at + 12].copy_from_slice(&size.to_le_bytes());
        }
        let mut z = head;
        z.extend_from_slice(data);
        z.extend_from_slice(&tail);
        z
    }

    #[test]
    fn stored_entries_are_checked() {
        let data = random(1000);
        let crc = crc32fast::hash(&data);
        let good = stored_zip(&data, crc, 1000);
        assert_eq!(dec(&b64(&good), &Limits::default()).unwrap().data, data);
        // CRC mismatch.
        let bad = stored_zip(&data, crc ^ 1, 1000);
        let e = dec(&b64(&bad), &Limits::default()).unwrap_err();
        assert_eq!(e.code, Code::AttachmentInvalid, "{e}");
        assert!(e.problem.contains("CRC"), "{e}");
        // A stored entry that says it unpacks to more than it holds (a bomb's lie).
        let lying = stored_zip(&data, crc, 4_000_000_000);
        assert_eq!(
            dec(&b64(&lying), &Limits::default()).unwrap_err().code,
            Code::AttachmentInvalid
        );
        // Caps hold for stored entries too.
        let small = Limits {
            max_attachment_bytes: 999,
            ..Limits::default()
        };
        assert_eq!(
            dec(&b64(&good), &small).unwrap_err().code,
            Code::AttachmentTooLarge
        );
        let total = Limits {
            max_total_attachment_bytes: 1500,
            ..Limits::default()
        };
        let mut budget = Budget::default();
        let l = labels("f.pdf", None, None);
        assert!(decode(&b64(&good), &l, &total, &mut budget, "a").is_ok());
        let e = decode(&b64(&good), &l, &total, &mut budget, "b").unwrap_err();
        assert_eq!(e.code, Code::AttachmentTooLarge);
        // A stored entry claiming more bytes than the zip holds.
        let mut cut = good.clone();
        cut.truncate(30 + 5 + 500);
        let mut frame = stored_frame("f.pdf", &data).1;
        let off = u32::try_from(cut.len()).unwrap();
        let n = frame.len();
        frame[n - 6..n - 2].copy_from_slice(&off.to_le_bytes());
        cut.extend_from_slice(&frame);
        assert_eq!(
            dec(&b64(&cut), &Limits::default()).unwrap_err().code,
            Code::AttachmentInvalid
        );
    }

    #[test]
    fn zip_based_types() {
        for t in [
            "application/zip",
            "Application/ZIP; charset=binary",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.oasis.opendocument.text",
            "application/epub+zip",
        ] {
            assert!(is_zip_based_type(t), "{t}");
        }
        for t in ["application/pdf", "application/msword", "image/jpeg", ""] {
            assert!(!is_zip_based_type(t), "{t}");
        }
    }
}
