//! The human views of the command line: a list ([`Table`]: one header line and one line per
//! row) and a record ([`Fields`]: `label: value` lines). Both align by *display* width (a
//! Vietnamese letter with its marks is one column whether it is stored composed or decomposed; a
//! CJK letter is two), and an empty cell or value shows `-`, so nothing ever shifts.
//!
//! A table is fitted to the terminal by shortening one chosen column with `…`, then, if that is
//! not enough, by leaving out the columns marked optional (in the order they were marked). Output
//! to a pipe or a file is never shortened (a script reading it gets every character; it should
//! use `--json` anyway) unless `COLUMNS` is set, which is then obeyed as a terminal's width.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns separated by this many spaces.
const GAP: usize = 2;
/// A shortened column keeps at least this many columns of text.
const MIN_FLEX: usize = 8;

/// A list ready to print.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// The column that gives way when the line is wider than the terminal (the subject, a
    /// name): the others are codes and dates a reader needs whole.
    flexible: Option<usize>,
    /// Columns left out, first to last, when shortening the flexible one is not enough: a
    /// narrow terminal still gets whole lines with the columns that matter most.
    optional: Vec<usize>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            flexible: None,
            optional: Vec::new(),
        }
    }

    /// Marks column `index` as left out when the terminal is too narrow for all of them; the
    /// first marked goes first.
    pub fn optional(mut self, index: usize) -> Table {
        self.optional.push(index);
        self
    }

    /// Marks column `index` as the one shortened to fit the terminal.
    pub fn flexible(mut self, index: usize) -> Table {
        self.flexible = Some(index);
        self
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, each line ending in `\n`; `width` is the terminal's (None: no limit).
    pub fn render(&self, width: Option<usize>) -> String {
        let header: Vec<String> = self.headers.clone();
        let body: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| cell(c)).collect())
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
        for r in &body {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.width());
            }
        }
        let mut shown: Vec<bool> = vec![true; widths.len()];
        if let Some(limit) = width {
            let total = |shown: &[bool], widths: &[usize]| -> usize {
                let cols: Vec<usize> = (0..widths.len()).filter(|i| shown[*i]).collect();
                cols.iter().map(|i| widths[*i]).sum::<usize>() + GAP * cols.len().saturating_sub(1)
            };
            let mut optional = self.optional.iter().filter(|i| **i < widths.len());
            loop {
                let flex = self.flexible.filter(|f| *f < widths.len() && shown[*f]);
                let over = total(&shown, &widths);
                if over <= limit {
                    break;
                }
                let floor = flex.map(|f| MIN_FLEX.min(widths[f])).unwrap_or(0);
                let least = flex.map(|f| over - widths[f] + floor).unwrap_or(over);
                if least > limit
                    && let Some(i) = optional.next()
                {
                    shown[*i] = false;
                    continue;
                }
                if let Some(f) = flex {
                    widths[f] = limit.saturating_sub(over - widths[f]).max(floor);
                }
                break;
            }
        }
        let cols: Vec<usize> = (0..widths.len()).filter(|i| shown[*i]).collect();
        let mut out = String::new();
        for line in std::iter::once(&header).chain(body.iter()) {
            let mut text = String::new();
            for (n, i) in cols.iter().enumerate() {
                let w = widths[*i];
                let c = fit(&line[*i], w);
                text.push_str(&c);
                if n + 1 < cols.len() {
                    text.push_str(&" ".repeat(w.saturating_sub(c.width()) + GAP));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table to stdout, fitted to the terminal when stdout is one. A closed pipe
    /// (`… | head`) ends the output quietly.
    pub fn print(&self) {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(self.render(terminal_width()).as_bytes());
    }
}

/// A cell as shown: control characters (a tab or newline inside a subject would break the
/// alignment) as spaces, an empty cell as `-`.
fn cell(c: &str) -> String {
    let clean: String = c
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect();
    if clean.trim().is_empty() {
        "-".to_owned()
    } else {
        clean
    }
}

/// A record as `label: value` lines, the values starting in one column (by display width).
#[derive(Default)]
pub struct Fields {
    lines: Vec<(String, String)>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Adds a line; an empty (or blank) value shows `-`.
    pub fn add(&mut self, label: &str, value: impl Into<String>) -> &mut Fields {
        self.lines.push((label.to_owned(), value.into()));
        self
    }

    /// The lines, each starting with `indent` spaces and ending in `\n`.
    pub fn render(&self, indent: usize) -> String {
        let width = self
            .lines
            .iter()
            .map(|(l, _)| l.width() + 1)
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (label, value) in &self.lines {
            let label = format!("{label}:");
            let pad = width - label.width() + 1;
            out.push_str(&" ".repeat(indent));
            out.push_str(&label);
            out.push_str(&" ".repeat(pad));
            out.push_str(&cell(value));
            out.push('\n');
        }
        out
    }
}

/// `text` cut to `width` display columns, ending in `…` when cut.
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for ch in text.chars() {
        let w = ch.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(ch);
    }
    out.push('…');
    out
}

/// The width to fit the output to: `COLUMNS` when set (the user asked for it, even for a pipe),
/// else the terminal's on stdout; `None` when stdout is not a terminal.
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal as _;
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; fd 1 is open (stdout).
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_display_width_composed_or_not() {
        let mut t = Table::new(&["ID", "TRÍCH YẾU", "TRẠNG THÁI"]);
        // "Hồ" composed (NFC) and decomposed (NFD: o + circumflex + grave) are both 2 columns.
        t.row(vec!["1".into(), "V/v Hồ sơ".into(), "03".into()]);
        t.row(vec![
            "12".into(),
            "V/v Ho\u{302}\u{300} sơ".into(),
            "".into(),
        ]);
        let text = t.render(None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID  TRÍCH YẾU  TRẠNG THÁI");
        assert_eq!(lines[1], "1   V/v Hồ sơ  03");
        assert_eq!(lines[2], "12  V/v Ho\u{302}\u{300} sơ  -");
        let col = |l: &str| l.split("  ").filter(|s| !s.is_empty()).count();
        assert!(lines.iter().all(|l| col(l) == 3));
    }

    #[test]
    fn the_flexible_column_gives_way_to_the_terminal_width() {
        let mut t = Table::new(&["ID", "SUBJECT", "TO"]).flexible(1);
        t.row(vec![
            "7".into(),
            "Về việc triển khai hệ thống quản lý văn bản".into(),
            "000.00.00.H41".into(),
        ]);
        let text = t.render(Some(40));
        for l in text.lines() {
            assert!(l.width() <= 40, "{l:?}");
        }
        assert!(text.contains('…'));
        assert!(text.contains("000.00.00.H41"));
        // Unlimited: nothing cut.
        assert!(!t.render(None).contains('…'));
    }

    #[test]
    fn optional_columns_go_when_shortening_is_not_enough() {
        let mut t = Table::new(&["ID", "TIME", "TO", "SUBJECT"])
            .flexible(3)
            .optional(1)
            .optional(2);
        t.row(vec![
            "7".into(),
            "2026-12-07 12:26".into(),
            "000.00.00.H41".into(),
            "Về việc triển khai hệ thống quản lý văn bản".into(),
        ]);
        let wide = t.render(Some(60));
        assert!(wide.contains("TIME") && wide.contains("TO"), "{wide}");
        let narrow = t.render(Some(30));
        assert!(!narrow.contains("TIME"), "{narrow}");
        assert!(narrow.contains("000.00.00.H41"), "{narrow}");
        let tiny = t.render(Some(20));
        assert!(!tiny.contains("000.00.00.H41"), "{tiny}");
        for l in narrow.lines().chain(tiny.lines()) {
            assert!(l.width() <= 30, "{l:?}");
        }
        for l in tiny.lines() {
            assert!(l.width() <= 20, "{l:?}");
        }
    }

    #[test]
    fn fields_align_values_by_display_width() {
        let mut f = Fields::new();
        f.add("Số/ký hiệu", "1/STTTT-CĐS")
            .add("Nơi gửi", "")
            // "Trích yếu" decomposed: still 9 columns.
            .add("Tri\u{301}ch yê\u{301}u", "V/v");
        assert_eq!(
            f.render(2),
            "  Số/ký hiệu: 1/STTTT-CĐS\n  Nơi gửi:    -\n  Tri\u{301}ch yê\u{301}u:  V/v\n"
        );
    }

    #[test]
    fn control_characters_and_empty_cells_do_not_shift_columns() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["x\ty\nz".into(), " ".into()]);
        assert_eq!(t.render(None), "A      B\nx y z  -\n");
    }
}
