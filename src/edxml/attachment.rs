//! Attachment transfer encoding (EDXML.md §2 "Attachments"): base64, and usually one zip entry.
//!
//! Reading: strip whitespace, base64-decode, and if the bytes are a zip (`PK\x03\x04`) unzip its
//! single entry — never trusting the sizes the archive declares, with a cap per file, a cap on all
//! files together, and a cap on the unzipped/zipped ratio, so a zip bomb costs at most the cap.
//! Writing: one entry with fixed metadata (so the same file always zips to the same bytes, which
//! keeps writing deterministic), then base64 without line breaks, appended straight into the
//! output buffer. The entry is Deflated when deflate pays (it saves at least a tenth of a sample
//! of the file) and Stored otherwise: already-compressed files (most PDFs' streams, JPEG, Office
//! files, random bytes) do not shrink, and deflating them was most of the CPU a 1 MB document
//! cost. A Stored entry is written straight into the base64 output, never copied into a zip
//! buffer first, and a Stored entry read is unwrapped in place.

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
            Unzipped::Stored(range)
                if original_is_zip_based && !bytes[range.clone()].starts_with(ZIP_MAGIC) =>
            {
                as_is(bytes, Transfer::ZipAsIs)?
            }
            Unzipped::Stored(range) => {
                // The file is a run of the zip: cut it out in place instead of copying it.
                let mut bytes = bytes;
                bytes.truncate(range.end);
                bytes.drain(..range.start);
                (bytes, Transfer::Zipped)
            }
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
    /// A Stored entry, within the caps and with its CRC checked: the file is these bytes of the
    /// zip.
    Stored(std::ops::Range<usize>),
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

/// The zip entry's name for a file called `name`: a name ending in `/` or `\\` would make the
/// entry a directory, which every reader (this one too) refuses as an attachment, so those are
/// dropped; `file` when nothing is left.
fn entry_name(name: &str) -> &str {
    match name.trim_end_matches(['/', '\\']) {
        "" => "file",
        n => n,
    }
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
    let entry_name = entry_name(name);
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

/// Appends the base64 of the single-entry zip of `data` (named `name`) to `out`: Deflated when
/// [`deflate_pays`], else Stored. A Stored entry is encoded from `data` directly, so the only
/// copy of the file that this makes is its base64 text.
pub fn append_zipped_base64(name: &str, data: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
    let entry_name = entry_name(name);
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

    #[test]
    fn a_name_ending_in_a_slash_still_zips_as_a_file() {
        // Found by fuzz/ (clerk_multipart): a file named `công văn.pdf/` was zipped as a
        // directory entry, and the reader refused the package the node had signed.
        let limits = Limits::default();
        for name in ["công văn.pdf/", "a\\", "/", ""] {
            for data in [&b"%PDF-1.4 stored"[..], &[b'a'; 4096][..]] {
                let mut text = Vec::new();
                append_zipped_base64(name, data, &mut text).unwrap();
                let text = String::from_utf8(text).unwrap();
                let d = decode(&text, false, &limits, &mut Budget::default(), "x").unwrap();
                assert_eq!(d.data, data, "{name:?}");
            }
        }
    }

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
        assert!(decode(&b64(&good), false, &total, &mut budget, "a").is_ok());
        let e = decode(&b64(&good), false, &total, &mut budget, "b").unwrap_err();
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
