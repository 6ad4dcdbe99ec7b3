//! Output is an attack surface: text from a counterpart (a reason, an answer, a name, a protocol
//! title) must never drive the caseworker's terminal. Everything the human output prints from
//! the broker goes through here: control characters (C0 but tab and newline, DEL, C1) and bidi
//! embedding, override and isolate controls are shown visibly escaped (`\u{1b}`), and a newline
//! inside a field starts an indented continuation, so no sender can forge a line of the output.

/// Indentation of a field's continuation lines.
pub(super) const CONTINUATION: &str = "          | ";

/// Whether `c` reorders or hides text on a terminal: the bidi embeddings, overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069) and the bidi marks (U+200E, U+200F, U+061C).
pub(super) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn escape(c: char, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "\\u{{{:x}}}", c as u32);
}

/// A line of output: newlines become indented continuations; tabs stay.
pub(super) fn line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => {
                out.push('\n');
                out.push_str(CONTINUATION);
            }
            '\t' => out.push('\t'),
            c if c.is_control() || is_bidi_control(c) => escape(c, &mut out),
            c => out.push(c),
        }
    }
    out
}

/// A table cell: like [`line`], but a newline or tab is shown escaped, keeping the row on one
/// line and its columns aligned.
pub(super) fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_bidi_control(c) => escape(c, &mut out),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_reaches_the_terminal_raw() {
        let hostile = "ok\u{1b}[2J\u{1b}]0;title\u{7}\u{9b}31m\u{7f}\r\u{202E}evil\u{2066}";
        for shown in [line(hostile), cell(hostile)] {
            assert!(
                !shown
                    .chars()
                    .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c)),
                "{shown:?}"
            );
            assert!(
                shown.contains("\\u{1b}[2J") && shown.contains("\\u{202e}"),
                "{shown:?}"
            );
        }
        assert_eq!(
            line("a\nstatus COMPLETED"),
            format!("a\n{CONTINUATION}status COMPLETED")
        );
        assert_eq!(cell("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(line("Ngā\ttamariki"), "Ngā\ttamariki");
    }
}
