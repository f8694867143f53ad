//! The pre-scan: the bounds of [`MailLimits`] checked on the raw bytes before `mail_parser`
//! spends memory on them.
//!
//! It walks the mail as `mail_parser` 0.11 does — the same rule for where a header section ends
//! (the first line of nothing but white space), the same reading of `Content-Type` (by
//! `mail_parser` itself, on the few bytes of that field), the same search for a boundary
//! (`--boundary` anywhere, not only at the start of a line), the same nesting of attached
//! messages — but only counts: parts, nesting depth, attachments, and the length of every
//! header field and section. What it keeps is a stack of boundaries, one per level, so its
//! memory is O(depth) (plus one header field, at most `max_header_bytes`, while it is read).
//! Where the two could still disagree on a malformed mail, the parser's result is counted
//! again afterwards ([`super::parse`]); this scan is what keeps a hostile mail from reaching
//! the parser at all.

use memchr::memmem;

use crate::config::MailLimits;

/// A bound that does not hold, or a structure the bridge does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fail {
    pub code: &'static str,
    pub message: String,
    /// English and Vietnamese figures for the reply (`vi` is the whole Vietnamese reason).
    pub vi: String,
}

/// What the scan counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Shape {
    pub parts: u32,
    pub depth: u32,
    pub attachments: u32,
    /// Where the top-level header section ends (the body's first byte).
    pub header_end: usize,
}

/// What a part's MIME headers say, as far as the structure is concerned.
#[derive(Debug, Default)]
pub(super) struct PartInfo {
    ctype: String,
    subtype: String,
    boundary: Option<Vec<u8>>,
    /// `Content-Transfer-Encoding` is base64 or quoted-printable.
    encoded: bool,
    /// `Content-Disposition: attachment`, or a file name in it or in `Content-Type`.
    named: bool,
}

/// mail_parser's view of a part (its `MimeType`), reduced to what changes the structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Multipart { digest: bool },
    Text { body: bool },
    Message,
    Other,
}

fn kind(info: &PartInfo, parent: Kind) -> Kind {
    match info.ctype.as_str() {
        "multipart" => Kind::Multipart {
            digest: info.subtype == "digest",
        },
        "text" => Kind::Text {
            body: info.subtype == "plain" || info.subtype == "html",
        },
        "message" if info.subtype == "rfc822" || info.subtype == "global" => Kind::Message,
        "" if parent == (Kind::Multipart { digest: true }) => Kind::Message,
        "" => Kind::Text { body: true },
        _ => Kind::Other,
    }
}

/// One level of the walk (mail_parser's `MessageParserState`, less what only building needs).
#[derive(Debug)]
struct Level {
    kind: Kind,
    boundary: Option<Vec<u8>>,
}

/// Checks `raw` against `limits` (its size was checked by the caller).
pub(super) fn scan(raw: &[u8], limits: &MailLimits) -> Result<Shape, Fail> {
    let mut shape = Shape::default();
    let mut state = Level {
        kind: Kind::Message,
        boundary: None,
    };
    let mut stack: Vec<Level> = Vec::new();
    let mut pos = 0usize;
    let mut first = true;
    'outer: loop {
        if pos >= raw.len() {
            break;
        }
        let (end, info) = header_section(raw, pos, limits)?;
        if first {
            shape.header_end = end;
            first = false;
        }
        pos = end;
        shape.parts += 1;
        if shape.parts > limits.max_parts {
            return Err(fail(
                "MAIL_TOO_MANY_PARTS",
                format!("more than {} MIME parts", limits.max_parts),
                format!("thư có hơn {} phần (MIME)", limits.max_parts),
            ));
        }
        let mut k = kind(&info, state.kind);
        if let (Kind::Multipart { .. }, Some(b)) = (k, info.boundary.as_deref()) {
            if let Some(after) = find_boundary(raw, pos, b) {
                push(
                    &mut stack,
                    &mut shape,
                    limits,
                    std::mem::replace(
                        &mut state,
                        Level {
                            kind: k,
                            boundary: Some(b.to_vec()),
                        },
                    ),
                )?;
                pos = skip_crlf(raw, after);
                continue;
            }
            k = Kind::Text { body: false };
        }
        if k == Kind::Message {
            if info.encoded {
                return Err(fail(
                    "MAIL_MALFORMED",
                    "an attached message (message/rfc822) in base64 or quoted-printable, \
                     which RFC 2046 does not allow"
                        .to_owned(),
                    "thư kèm theo một thư khác được mã hóa sai quy định (RFC 2046)".to_owned(),
                ));
            }
            count_attachment(&mut shape, limits)?;
            let inherited = state.boundary.take();
            push(
                &mut stack,
                &mut shape,
                limits,
                std::mem::replace(
                    &mut state,
                    Level {
                        kind: Kind::Message,
                        boundary: inherited,
                    },
                ),
            )?;
            continue;
        }
        if info.named || !matches!(k, Kind::Text { body: true }) {
            count_attachment(&mut shape, limits)?;
        }
        // The part's body runs to the next `--boundary` of its level (or to the end).
        match state.boundary.as_deref() {
            Some(b) => match find_boundary(raw, pos, b) {
                Some(after) => pos = after,
                None => {
                    state.boundary = None;
                    pos = raw.len();
                }
            },
            None => pos = raw.len(),
        }
        if state.boundary.is_none() {
            if pos >= raw.len() {
                break;
            }
            continue;
        }
        loop {
            if state.kind == Kind::Message {
                // The end of an attached message: back to the multipart around it.
                let Some(mut parent) = stack.pop() else {
                    break 'outer;
                };
                parent.boundary = state.boundary.take();
                state = parent;
            }
            match multipart_end(raw, pos) {
                (true, after) => {
                    pos = after;
                    let Some(parent) = stack.pop() else {
                        break 'outer;
                    };
                    state = parent;
                    if let Some(b) = state.boundary.as_deref()
                        && let Some(after) = find_boundary(raw, pos, b)
                    {
                        pos = after;
                        continue;
                    }
                    break 'outer;
                }
                (false, after) => {
                    pos = after;
                    break;
                }
            }
        }
    }
    Ok(shape)
}

fn fail(code: &'static str, message: String, vi: String) -> Fail {
    Fail { code, message, vi }
}

fn push(
    stack: &mut Vec<Level>,
    shape: &mut Shape,
    limits: &MailLimits,
    level: Level,
) -> Result<(), Fail> {
    stack.push(level);
    let depth = u32::try_from(stack.len()).unwrap_or(u32::MAX);
    shape.depth = shape.depth.max(depth);
    if depth > limits.max_depth {
        return Err(fail(
            "MAIL_TOO_DEEP",
            format!("MIME parts nested more than {} deep", limits.max_depth),
            format!("thư lồng nhau quá {} cấp (MIME)", limits.max_depth),
        ));
    }
    Ok(())
}

fn count_attachment(shape: &mut Shape, limits: &MailLimits) -> Result<(), Fail> {
    shape.attachments += 1;
    if shape.attachments > limits.max_attachments {
        return Err(fail(
            "MAIL_TOO_MANY_ATTACHMENTS",
            format!("more than {} attachments", limits.max_attachments),
            format!("thư có hơn {} tệp đính kèm", limits.max_attachments),
        ));
    }
    Ok(())
}

/// The offset just after the next `--boundary` at or after `from`, anywhere (as mail_parser
/// looks for it).
fn find_boundary(raw: &[u8], from: usize, boundary: &[u8]) -> Option<usize> {
    let hay = raw.get(from..)?;
    memmem::find_iter(hay, boundary)
        .find(|&i| i >= 2 && &hay[i - 2..i] == b"--")
        .map(|i| from + i + boundary.len())
}

/// mail_parser's `skip_crlf`: spaces, tabs and CRs, then one LF.
fn skip_crlf(raw: &[u8], mut pos: usize) -> usize {
    while let Some(&c) = raw.get(pos) {
        match c {
            b'\r' | b' ' | b'\t' => pos += 1,
            b'\n' => return pos + 1,
            _ => break,
        }
    }
    pos
}

/// mail_parser's `is_multipart_end`, after a boundary: `--` closes the multipart; otherwise
/// the line end is skipped and the next part's headers follow.
fn multipart_end(raw: &[u8], pos: usize) -> (bool, usize) {
    match (raw.get(pos), raw.get(pos + 1)) {
        (Some(b'\r'), Some(b'\n')) => (false, pos + 2),
        (Some(b'-'), Some(b'-')) => (true, pos + 2),
        (Some(b'\n'), _) => (false, pos + 1),
        (Some(a), _) if a.is_ascii_whitespace() => (false, skip_crlf(raw, pos + 1)),
        _ => (false, pos),
    }
}

/// The header section from `start`: checks every field (folded lines together) against
/// `max_header_bytes` and the section against `max_headers_bytes`, reads the MIME fields, and
/// returns the offset of the body (after the line of white space that ends the section, or
/// the end of the mail).
pub(super) fn header_section(
    raw: &[u8],
    start: usize,
    limits: &MailLimits,
) -> Result<(usize, PartInfo), Fail> {
    let field_max = limits.max_header_bytes as usize;
    let section_max = limits.max_headers_bytes as usize;
    let too_long = |what: String, vi: String| fail("MAIL_HEADER_TOO_LONG", what, vi);
    let mut pos = start;
    let mut field_start = start;
    let mut field_len = 0usize;
    // MIME fields of this section: (start, end) ranges, at most a few.
    let mut mime: Vec<(usize, usize)> = Vec::new();
    let mut mime_bytes = 0usize;
    let mut current_is_mime = false;
    let end = loop {
        if pos >= raw.len() {
            break raw.len();
        }
        // Look for the line end no further than a field may be long.
        let window_end = raw
            .len()
            .min(pos.saturating_add(field_max).saturating_add(2));
        let line_end = memchr::memchr(b'\n', &raw[pos..window_end]).map(|i| pos + i);
        let next = match line_end {
            Some(i) => i + 1,
            None if window_end == raw.len() => raw.len(),
            None => {
                return Err(too_long(
                    format!("a header field longer than {field_max} bytes"),
                    format!("một dòng tiêu đề của thư dài hơn {field_max} byte"),
                ));
            }
        };
        if next - start > section_max {
            return Err(too_long(
                format!("a header section longer than {section_max} bytes"),
                format!("phần tiêu đề của thư dài hơn {section_max} byte"),
            ));
        }
        let line = &raw[pos..line_end.unwrap_or(raw.len())];
        if line.iter().all(u8::is_ascii_whitespace) {
            if current_is_mime {
                mime.push((field_start, pos));
            }
            break next;
        }
        if matches!(line[0], b' ' | b'\t') {
            field_len += line.len();
        } else {
            if current_is_mime {
                mime.push((field_start, pos));
            }
            field_start = pos;
            field_len = line.len();
            current_is_mime = is_mime_field(line);
        }
        if field_len > field_max {
            return Err(too_long(
                format!("a header field longer than {field_max} bytes"),
                format!("một dòng tiêu đề của thư dài hơn {field_max} byte"),
            ));
        }
        if current_is_mime && mime.len() >= 16 {
            return Err(fail(
                "MAIL_MALFORMED",
                "more than 16 MIME header fields in one part".to_owned(),
                "một phần của thư có quá nhiều tiêu đề MIME".to_owned(),
            ));
        }
        pos = next;
    };
    if current_is_mime && end == raw.len() && mime.last().is_none_or(|&(s, _)| s != field_start) {
        mime.push((field_start, raw.len()));
    }
    let mut buf = Vec::new();
    for &(s, e) in &mime {
        mime_bytes += e - s;
        if mime_bytes > field_max * 4 {
            break;
        }
        buf.extend_from_slice(&raw[s..e]);
        if !buf.ends_with(b"\n") {
            buf.push(b'\n');
        }
    }
    Ok((end, part_info(&buf)))
}

/// Whether a header line starts a field mail_parser reads as `Content-Type`,
/// `Content-Transfer-Encoding` or `Content-Disposition` (its names ignore white space and case).
fn is_mime_field(line: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    let name: Vec<u8> = line[..colon]
        .iter()
        .filter(|c| !c.is_ascii_whitespace())
        .map(u8::to_ascii_lowercase)
        .collect();
    matches!(
        name.as_slice(),
        b"content-type" | b"content-transfer-encoding" | b"content-disposition"
    )
}

/// The MIME fields read by mail_parser itself (a few hundred bytes at most in practice, never
/// more than four fields' worth), so the boundary is the one it will look for.
fn part_info(fields: &[u8]) -> PartInfo {
    use mail_parser::MimeHeaders as _;
    let mut info = PartInfo::default();
    if fields.is_empty() {
        return info;
    }
    let mut buf = fields.to_vec();
    buf.extend_from_slice(b"\n");
    let Some(m) = mail_parser::MessageParser::new().parse_headers(&buf) else {
        return info;
    };
    let part = m.root_part();
    if let Some(ct) = part.content_type() {
        info.ctype = ct.ctype().to_ascii_lowercase();
        info.subtype = ct.subtype().unwrap_or("").to_ascii_lowercase();
        info.boundary = ct
            .attribute("boundary")
            .filter(|b| !b.is_empty())
            .map(|b| b.as_bytes().to_vec());
        info.named |= ct.has_attribute("name");
    }
    if let Some(cd) = part.content_disposition() {
        info.named |= cd.is_attachment() || cd.has_attribute("filename");
    }
    info.encoded = part.content_transfer_encoding().is_some_and(|e| {
        e.eq_ignore_ascii_case("base64") || e.eq_ignore_ascii_case("quoted-printable")
    });
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> MailLimits {
        MailLimits::default()
    }

    /// A multipart/mixed of `n` small text parts.
    fn many_parts(n: usize) -> Vec<u8> {
        let mut m =
            b"From: a@b.vn\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n".to_vec();
        for i in 0..n {
            m.extend_from_slice(
                format!("--XX\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n").as_bytes(),
            );
        }
        m.extend_from_slice(b"--XX--\r\n");
        m
    }

    /// `n` multiparts, each inside the one before.
    fn deep(n: usize) -> Vec<u8> {
        let mut m = b"From: a@b.vn\r\n".to_vec();
        for i in 0..n {
            m.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nleaf\r\n");
        for i in (0..n).rev() {
            m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
        }
        m
    }

    #[test]
    fn counts_parts_and_depth() {
        let s = scan(&many_parts(3), &limits()).unwrap();
        assert_eq!((s.parts, s.depth, s.attachments), (4, 1, 0));
        let s = scan(&deep(5), &limits()).unwrap();
        assert_eq!((s.parts, s.depth), (6, 5));
        let s = scan(b"From: a@b.vn\r\nSubject: x\r\n\r\nbody\r\n", &limits()).unwrap();
        assert_eq!((s.parts, s.depth, s.header_end), (1, 0, 28));
    }

    #[test]
    fn refuses_10000_parts_at_the_limit() {
        let m = many_parts(10_000);
        let e = scan(&m, &limits()).unwrap_err();
        assert_eq!(e.code, "MAIL_TOO_MANY_PARTS");
        // Exactly at the limit (the multipart itself is a part) passes.
        let s = scan(&many_parts(199), &limits()).unwrap();
        assert_eq!(s.parts, 200);
        assert_eq!(
            scan(&many_parts(200), &limits()).unwrap_err().code,
            "MAIL_TOO_MANY_PARTS"
        );
    }

    #[test]
    fn refuses_60_deep() {
        assert_eq!(
            scan(&deep(60), &limits()).unwrap_err().code,
            "MAIL_TOO_DEEP"
        );
        assert_eq!(scan(&deep(10), &limits()).unwrap().depth, 10);
        assert_eq!(
            scan(&deep(11), &limits()).unwrap_err().code,
            "MAIL_TOO_DEEP"
        );
    }

    #[test]
    fn attached_messages_nest() {
        let m = b"From: a@b.vn\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--o\r\nContent-Type: message/rfc822\r\n\r\n\
From: c@d.vn\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n\
--i\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\r\n%PDF\r\n--i--\r\n\
--o--\r\n";
        let s = scan(m, &limits()).unwrap();
        // mixed, text, message, its multipart, the pdf
        assert_eq!((s.parts, s.depth, s.attachments), (5, 3, 2));
        let encoded = b"From: a@b.vn\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n\
--o\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nRnJvbTogYUBiLnZuDQoNCng=\r\n--o--\r\n";
        assert_eq!(scan(encoded, &limits()).unwrap_err().code, "MAIL_MALFORMED");
    }

    #[test]
    fn boundaries_count_anywhere_on_a_line() {
        // mail_parser finds `--XX` in the middle of a line too: so does the scan.
        let m = b"From: a@b.vn\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n\
--XX\r\n\r\none--XX\r\n\r\ntwo--XX\r\n\r\nthree--XX--\r\n";
        assert_eq!(scan(m, &limits()).unwrap().parts, 4);
        // RFC 2231 continuations are read as mail_parser reads them.
        let m = b"From: a@b.vn\r\nContent-Type: multipart/mixed;\r\n boundary*0=\"A\"; boundary*1=\"B\"\r\n\r\n\
--AB\r\n\r\none\r\n--AB\r\n\r\ntwo\r\n--AB--\r\n";
        assert_eq!(scan(m, &limits()).unwrap().parts, 3);
    }

    #[test]
    fn header_lengths() {
        let mut m = b"From: a@b.vn\r\nSubject: ".to_vec();
        m.extend(std::iter::repeat_n(b'x', 1 << 20));
        m.extend_from_slice(b"\r\n\r\nbody");
        assert_eq!(
            scan(&m, &limits()).unwrap_err().code,
            "MAIL_HEADER_TOO_LONG"
        );
        // Folding does not hide a long field.
        let mut m = b"From: a@b.vn\r\nSubject: x".to_vec();
        for _ in 0..3000 {
            m.extend_from_slice(b"\r\n folded");
        }
        m.extend_from_slice(b"\r\n\r\nbody");
        assert_eq!(
            scan(&m, &limits()).unwrap_err().code,
            "MAIL_HEADER_TOO_LONG"
        );
        // Many short fields: the section's bound.
        let mut m = Vec::new();
        for i in 0..30_000 {
            m.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        m.extend_from_slice(b"\r\nbody");
        assert_eq!(
            scan(&m, &limits()).unwrap_err().code,
            "MAIL_HEADER_TOO_LONG"
        );
        // A field just under the bound passes.
        let mut m = b"Subject: ".to_vec();
        m.extend(std::iter::repeat_n(b'y', 16 * 1024 - 20));
        m.extend_from_slice(b"\r\n\r\nbody");
        assert!(scan(&m, &limits()).is_ok());
    }
}
