//! Text cleaning applied to everything that comes in: Unicode NFC (Vietnamese typed on some
//! systems, or decoded from windows-1258, arrives decomposed and must still match the same
//! words) and removal of the characters XML 1.0 forbids, so every feed stays well-formed.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// True for characters XML 1.0 does not allow in a document.
fn forbidden_in_xml(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// True when `s` may hold a character XML forbids: a byte scan (control characters are
/// single bytes; U+FFFE and U+FFFF start with 0xEF) instead of decoding every character.
fn may_hold_forbidden(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF) && s.chars().any(forbidden_in_xml)
}

/// NFC-normalizes `s` and drops XML-forbidden characters. Newlines and tabs are kept.
pub fn clean_text(s: &str) -> String {
    if !may_hold_forbidden(s) && is_nfc_quick(s.chars()) == IsNormalized::Yes {
        return s.to_owned();
    }
    s.chars().filter(|c| !forbidden_in_xml(*c)).nfc().collect()
}

/// Like [`clean_text`], for one-line values (titles, names): every run of white space,
/// line breaks included, becomes one space, and the ends are trimmed.
pub fn clean_line(s: &str) -> String {
    let text = clean_text(s);
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 16);
    push_escaped(&mut out, s);
    out
}

/// Appends `s` escaped for HTML or XML text and (either kind of quoted) attribute values.
pub fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// Turns plain text into HTML paragraphs: blank lines separate paragraphs, single line
/// breaks inside a paragraph become `<br>`.
pub fn paragraphs_from_text(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut html = String::with_capacity(normalized.len() + 64);
    for block in normalized.split("\n\n") {
        let lines: Vec<&str> = block.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        html.push_str("<p>");
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                html.push_str("<br>");
            }
            html.push_str(&escape_html(line));
        }
        html.push_str("</p>");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decomposed_vietnamese_becomes_composed() {
        // "Kinh tế" with the tone mark as a combining character (NFD).
        let decomposed = "Kinh te\u{302}\u{301}";
        assert_ne!(decomposed, "Kinh tế");
        assert_eq!(clean_text(decomposed), "Kinh tế");
    }

    #[test]
    fn control_characters_are_removed_but_newlines_kept() {
        assert_eq!(clean_text("a\u{0}b\u{8}c\u{B}d\u{1F}e\u{FFFF}"), "abcde");
        assert_eq!(clean_text("dòng 1\ndòng\t2\r\n"), "dòng 1\ndòng\t2\r\n");
    }

    #[test]
    fn clean_line_collapses_white_space() {
        assert_eq!(clean_line("  Tin \n\t Tức  "), "Tin Tức");
    }

    #[test]
    fn text_becomes_escaped_paragraphs() {
        assert_eq!(
            paragraphs_from_text("Dòng một\ndòng hai\n\n<b>đoạn</b> & hai\n\n\n"),
            "<p>Dòng một<br>dòng hai</p><p>&lt;b&gt;đoạn&lt;/b&gt; &amp; hai</p>"
        );
    }
}
