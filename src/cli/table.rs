//! The human view of a list: one header line and one line per row, columns aligned by *display*
//! width (a Vietnamese letter with its marks is one column whether it is stored composed or
//! decomposed; a CJK letter is two), fitted to the terminal by shortening one chosen column
//! with `…`. Output to a pipe or a file is never shortened (a script reading it gets every
//! character; it should use `--json` anyway). An empty cell shows `-`, so columns never shift.

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
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            flexible: None,
        }
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
        let cell = |c: &str| -> String {
            // Control characters (a tab or newline inside a subject) would break the alignment.
            let clean: String = c
                .chars()
                .map(|ch| if ch.is_control() { ' ' } else { ch })
                .collect();
            if clean.trim().is_empty() {
                "-".to_owned()
            } else {
                clean
            }
        };
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
        if let (Some(limit), Some(flex)) = (width, self.flexible)
            && flex < widths.len()
        {
            let total: usize = widths.iter().sum::<usize>() + GAP * (widths.len() - 1);
            if total > limit {
                let others = total - widths[flex];
                let room = limit.saturating_sub(others).max(MIN_FLEX.min(widths[flex]));
                widths[flex] = room;
            }
        }
        let last = widths.len().saturating_sub(1);
        let mut out = String::new();
        for line in std::iter::once(&header).chain(body.iter()) {
            let mut text = String::new();
            for (i, (c, w)) in line.iter().zip(&widths).enumerate() {
                let c = fit(c, *w);
                text.push_str(&c);
                if i < last {
                    text.push_str(&" ".repeat(w - c.width() + GAP));
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

/// The width of the terminal on stdout: `COLUMNS` when set, else the terminal's own; `None`
/// when stdout is not a terminal.
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
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
    fn control_characters_and_empty_cells_do_not_shift_columns() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["x\ty\nz".into(), " ".into()]);
        assert_eq!(t.render(None), "A      B\nx y z  -\n");
    }
}
