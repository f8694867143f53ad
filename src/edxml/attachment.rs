//! Attachment transfer encoding (EDXML.md §2 "Attachments"): base64, and usually one zip entry.
//!
//! Reading: strip whitespace, base64-decode, and if the bytes are a zip (`PK\x03\x04`) unzip its
//! single entry — never trusting the sizes the archive declares, with a cap per file, a cap on all
//! files together, and a cap on the unzipped/zipped ratio, so a zip bomb costs at most the cap.
//! Writing: one Deflate entry with fixed metadata (so the same file always zips to the same
//! bytes, which keeps writing deterministic), then base64 without line breaks, appended straight
//! into the output buffer.

use std::io::{Cursor, Read, Write};

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use zip::write::SimpleFileOptions;

use super::xml::Limits;
use crate::error::{Code, FormatError};

/// The local file header signature every zip starts with.
pub const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// The `ContentType` this node labels zipped attachments with.
pub const ZIP_CONTENT_TYPE: &str = "application/zip";
/// Below this size the zip ratio is not checked (small, highly compressible files are normal).
pub const RATIO_EXEMPT_BYTES: u64 = 1024 * 1024;

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
    /// A zip whose single entry was extracted.
    Zipped,
    /// Not a zip: taken as they are.
    Plain,
    /// A zip taken as it is, because the manifest says the original file is zip-based (a `.zip`,
    /// `.docx`, `.odt`, …) and the archive is not a one-file wrapper around such a file.
    ZipAsIs,
}

/// A decoded attachment.
#[derive(Debug)]
pub struct Decoded {
    pub data: Vec<u8>,
    pub transfer: Transfer,
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
    let lower = content_type.trim().to_ascii_lowercase();
    let t = lower.split(';').next().unwrap_or("").trim();
    t == ZIP_CONTENT_TYPE
        || t == "application/x-zip-compressed"
        || t.ends_with("+zip")
        || t.starts_with("application/vnd.openxmlformats-officedocument.")
        || t.starts_with("application/vnd.oasis.opendocument.")
}

/// Decodes `ContentTransferEncoded` text under `limits`, counting against `budget`.
///
/// `original_is_zip_based` says the manifest's type is a zip-based format
/// ([`is_zip_based_type`]). Only then may a zip be the file itself: when it does not hold
/// exactly one entry, or when its one entry is not itself a zip (the usual wrapper around a
/// `.docx` holds the `.docx`). Otherwise a zip that is not one file is refused. `path` names the
/// element in errors.
pub fn decode(
    text: &str,
    original_is_zip_based: bool,
    limits: &Limits,
    budget: &mut Budget,
    path: &str,
) -> Result<Decoded, FormatError> {
    let bytes = decode_base64(text).map_err(|p| FormatError::new(Code::Base64Invalid, path, p))?;
    let remaining = limits
        .max_total_attachment_bytes
        .saturating_sub(budget.used);
    let as_is = |bytes: Vec<u8>, transfer| -> Result<(Vec<u8>, Transfer), FormatError> {
        check_plain(bytes.len() as u64, limits, remaining, path)?;
        Ok((bytes, transfer))
    };
    let (data, transfer) = if bytes.starts_with(ZIP_MAGIC) {
        match unzip_single(&bytes, limits, remaining, path)? {
            Unzipped::One(inner) if original_is_zip_based && !inner.starts_with(ZIP_MAGIC) => {
                as_is(bytes, Transfer::ZipAsIs)?
            }
            Unzipped::One(inner) => (inner, Transfer::Zipped),
            Unzipped::NotOne(_) if original_is_zip_based => as_is(bytes, Transfer::ZipAsIs)?,
            Unzipped::NotOne(n) => {
                return Err(FormatError::new(
                    Code::AttachmentInvalid,
                    path,
                    format!("the zip holds {n} entries; exactly one file is expected"),
                ));
            }
        }
    } else {
        as_is(bytes, Transfer::Plain)?
    };
    budget.used = budget.used.saturating_add(data.len() as u64);
    Ok(Decoded { data, transfer })
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
    NotOne(usize),
}

/// Extracts the single entry of `zipped`, reading at most the smallest cap plus one byte.
fn unzip_single(
    zipped: &[u8],
    limits: &Limits,
    remaining_total: u64,
    path: &str,
) -> Result<Unzipped, FormatError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zipped))
        .map_err(|e| invalid(path, format!("broken zip: {e}")))?;
    if archive.len() != 1 {
        return Ok(Unzipped::NotOne(archive.len()));
    }
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
    // The declared size only sizes the first allocation, never beyond the cap.
    let initial = entry.size().min(cap).min(64 * 1024 * 1024);
    let mut data = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
    (&mut entry)
        .take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| invalid(path, format!("cannot unzip: {e}")))?;
    if data.len() as u64 > cap {
        let why = caps
            .into_iter()
            .find(|(c, _)| *c == cap)
            .map(|(_, why)| why)
            .unwrap_or_default();
        return Err(too_large(path, why));
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

    fn dec(text: &str, limits: &Limits) -> Result<Decoded, FormatError> {
        decode(text, false, limits, &mut Budget::default(), "x")
    }

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
        assert!(decode(&b64(&[1u8; 100]), false, &total, &mut budget, "a").is_ok());
        let e = decode(&b64(&[1u8; 100]), false, &total, &mut budget, "b").unwrap_err();
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

        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for n in ["a", "b"] {
            w.start_file(n, SimpleFileOptions::default()).unwrap();
            w.write_all(b"x").unwrap();
        }
        let two = w.finish().unwrap().into_inner();
        assert_eq!(
            dec(&b64(&two), &Limits::default()).unwrap_err().code,
            Code::AttachmentInvalid
        );
        let as_is = decode(
            &b64(&two),
            true,
            &Limits::default(),
            &mut Budget::default(),
            "x",
        )
        .unwrap();
        assert_eq!(as_is.transfer, Transfer::ZipAsIs);
        assert_eq!(as_is.data, two);
        let opts = Limits::default();
        // A one-entry zip that is the original file itself (its entry is not a zip)...
        let one = zip_single("a.txt", b"abc").unwrap();
        let d = decode(&b64(&one), true, &opts, &mut Budget::default(), "x").unwrap();
        assert_eq!((d.transfer, d.data), (Transfer::ZipAsIs, one.clone()));
        // ... and the usual wrapper around a zip-based file.
        let wrapped = zip_single("a.zip", &one).unwrap();
        let d = decode(&b64(&wrapped), true, &opts, &mut Budget::default(), "x").unwrap();
        assert_eq!((d.transfer, d.data), (Transfer::Zipped, one));
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
