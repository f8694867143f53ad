//! The bodies of the node's mails, written once as blocks and rendered twice: plain text and
//! HTML (every value escaped). Values come from packages, the configuration or another mail, so
//! each is cleaned here too: one-line values by [`header_text`], running text by [`body_text`].

use time::{Date, OffsetDateTime};

use crate::edxml::dates::VIETNAM_OFFSET;
use crate::mail::address::header_text;
pub(super) use crate::mail::address::text_lines as body_text;

/// A part of a mail body.
pub(super) enum Block {
    /// A paragraph (running text; line breaks kept).
    Para(String),
    /// Label: value rows (labels are ours, values cleaned to one line).
    Rows(Vec<(&'static str, String)>),
    /// A bulleted list.
    List(Vec<String>),
    /// A link, shown with its text.
    Link { text: String, url: String },
    /// A small print paragraph (the automatic-mail notice, codes for technicians).
    Small(String),
}

/// `s` with `&`, `<`, `>`, `"` and `'` as HTML entities.
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `dd/MM/yyyy`, as Vietnamese documents write dates.
pub(super) fn vn_date(d: Date) -> String {
    format!("{:02}/{:02}/{:04}", d.day(), u8::from(d.month()), d.year())
}

/// `HH:mm ngày dd/MM/yyyy`, Vietnam time.
pub(super) fn vn_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(VIETNAM_OFFSET);
    format!(
        "{:02}:{:02} ngày {}",
        t.hour(),
        t.minute(),
        vn_date(t.date())
    )
}

/// `http(s)://…` made of `base` and `path` when both are there and the result is a plain URL
/// (no white space, control characters, quotes or angle brackets that could break out of the
/// text or the `href`).
pub(super) fn link(base: Option<&str>, path: Option<&str>) -> Option<String> {
    let (base, path) = (base?.trim(), path?.trim());
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return None;
    }
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let plain = url.len() <= 2000
        && url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`'));
    plain.then_some(url)
}

/// The plain-text rendering.
pub(super) fn plain(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Para(t) | Block::Small(t) => out.push_str(t),
            Block::Rows(rows) => {
                let width = rows
                    .iter()
                    .map(|(l, _)| l.chars().count())
                    .max()
                    .unwrap_or(0);
                for (i, (label, value)) in rows.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    let pad = width - label.chars().count();
                    out.push_str(&format!("  {label}:{} {value}", " ".repeat(pad)));
                }
            }
            Block::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    out.push_str(&format!("  - {item}"));
                }
            }
            Block::Link { text, url } => out.push_str(&format!("{text}: {url}")),
        }
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// The HTML rendering: a small document whose every text is escaped.
pub(super) fn html(title: &str, blocks: &[Block]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"vi\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n\
         <body style=\"font-family: Arial, sans-serif; font-size: 14px; line-height: 1.5\">\n",
        html_escape(title)
    );
    for b in blocks {
        match b {
            Block::Para(t) => {
                let lines: Vec<String> = t.split('\n').map(html_escape).collect();
                out.push_str(&format!("<p>{}</p>\n", lines.join("<br>\n")));
            }
            Block::Small(t) => {
                let lines: Vec<String> = t.split('\n').map(html_escape).collect();
                out.push_str(&format!(
                    "<p style=\"color: #555; font-size: 12px\">{}</p>\n",
                    lines.join("<br>\n")
                ));
            }
            Block::Rows(rows) => {
                out.push_str("<table style=\"border-collapse: collapse\">\n");
                for (label, value) in rows {
                    out.push_str(&format!(
                        "<tr><th style=\"text-align: left; vertical-align: top; padding: 2px 12px 2px 0\">{}</th>\
                         <td style=\"padding: 2px 0\">{}</td></tr>\n",
                        html_escape(label),
                        html_escape(value)
                    ));
                }
                out.push_str("</table>\n");
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", html_escape(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Link { text, url } => {
                out.push_str(&format!(
                    "<p><a href=\"{}\">{}</a></p>\n",
                    html_escape(url),
                    html_escape(text)
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// One-line value for a row (at most `max` characters).
pub(super) fn one_line(s: &str, max: usize) -> String {
    header_text(s, max)
}
