//! Text as the law reads it (`../shared/domain.md` §5): whether a free-text field says
//! anything at all, and the one canonical form of a person's name in which pseudonyms are made
//! and searches matched.
//!
//! Canonical name form 2 (this build; form 1 was lowercase with white space collapsed):
//! 1. Unicode NFC, so a macron typed precomposed (ā) or combining (a + U+0304) is one letter;
//! 2. default-ignorable code points removed (zero-width space and joiners, soft hyphen, bidi
//!    marks, variation selectors, …);
//! 3. Unicode default case folding, then NFC again;
//! 4. every run of white space (any Unicode `White_Space`) becomes one space, and every dash
//!    (Unicode `Dash`: hyphen, en dash, fullwidth hyphen-minus, minus sign, …) becomes `-`;
//!    leading and trailing spaces are dropped.
//!
//! For names of ASCII letters, spaces and hyphens, form 2 equals form 1, so pseudonyms of such
//! names are unchanged. Records written before form 2 keep their form-1 pseudonyms: an auditor's
//! search computes both forms and finds records of either.

use caseless::default_case_fold_str;
use unicode_normalization::UnicodeNormalization;

/// Whether `c` has the Unicode property Default_Ignorable_Code_Point (DerivedCoreProperties.txt,
/// Unicode 15.1): characters that render as nothing.
pub fn is_default_ignorable(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

/// Whether `c` has the Unicode property Dash (PropList.txt, Unicode 15.1).
pub fn is_dash(c: char) -> bool {
    matches!(c as u32,
        0x002D | 0x058A | 0x05BE | 0x1400 | 0x1806 | 0x2010..=0x2015 | 0x2053 | 0x207B | 0x208B
        | 0x2212 | 0x2E17 | 0x2E1A | 0x2E3A..=0x2E3B | 0x2E40 | 0x2E5D | 0x301C | 0x3030
        | 0x30A0 | 0xFE31..=0xFE32 | 0xFE58 | 0xFE63 | 0xFF0D | 0x10EAD)
}

/// Whether `c` reorders or hides text on a terminal: the bidi embeddings, overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069) and the bidi marks (U+200E, U+200F, U+061C).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// The first character of `text` that structured text must not hold: a control character (C0,
/// DEL, C1) other than those `allowed`, or a bidi control.
pub fn forbidden_char(text: &str, allowed: &[char]) -> Option<(usize, char)> {
    text.char_indices()
        .find(|&(_, c)| (c.is_control() && !allowed.contains(&c)) || is_bidi_control(c))
}

/// Whether the text says something: it holds a character that is neither white space nor
/// default-ignorable. A reason of blanks or zero-width spaces is no reason.
pub fn says_something(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_whitespace() && !is_default_ignorable(c))
}

/// The canonical form (form 2, above) of a name.
pub fn canonical_name(name: &str) -> String {
    let visible: String = name.nfc().filter(|c| !is_default_ignorable(*c)).collect();
    let folded: String = default_case_fold_str(&visible).nfc().collect();
    let mut out = String::with_capacity(folded.len());
    let mut pending_space = false;
    for c in folded.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(if is_dash(c) { '-' } else { c });
    }
    out
}

/// Canonical name form 1, kept so searches still find records written before form 2.
pub fn canonical_name_form1(name: &str) -> String {
    name.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_text_says_nothing() {
        for blank in [
            "",
            " ",
            "\t\n ",
            "\u{3000}",
            "\u{200B}",
            " \u{200D}\u{FEFF} ",
            "\u{00A0}",
            "\u{2060}",
        ] {
            assert!(!says_something(blank), "{blank:?}");
        }
        for text in ["a", " x ", "\u{200B}Kia ora", "ā", "1"] {
            assert!(says_something(text), "{text:?}");
        }
    }

    #[test]
    fn the_same_name_written_differently_is_one_canonical_name() {
        let cases = [
            // precomposed and decomposed macrons
            ("Tūhoe-Ngāti", "Tu\u{0304}hoe-Nga\u{0304}ti"),
            // fullwidth hyphen, en dash, non-breaking hyphen
            ("Smith-Jones", "Smith\u{FF0D}Jones"),
            ("Smith-Jones", "Smith\u{2013}Jones"),
            ("Smith-Jones", "Smith\u{2011}Jones"),
            // zero-width space and soft hyphen
            ("Ngata", "Nga\u{200B}ta"),
            ("Ngata", "Nga\u{00AD}ta"),
            // case and white space of every kind
            ("te rangi", "  TE\u{00A0}\u{3000}Rangi "),
            // full case folding
            ("strauss", "STRAUß"),
        ];
        for (a, b) in cases {
            assert_eq!(canonical_name(a), canonical_name(b), "{a:?} vs {b:?}");
        }
        assert_ne!(canonical_name("Ngata"), canonical_name("Ngati"));
    }

    #[test]
    fn ascii_names_keep_their_form_1() {
        for name in ["Ngata", "  Aroha  Mere ", "SMITH-JONES", "o'brien"] {
            assert_eq!(canonical_name(name), canonical_name_form1(name), "{name:?}");
        }
    }
}
