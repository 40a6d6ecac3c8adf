//! Text cleaning applied to everything that comes in: Unicode NFC (Vietnamese typed on some
//! systems, or decoded from windows-1258, arrives decomposed and must still match the same
//! words) and removal of the characters XML 1.0 forbids, so every feed stays well-formed.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// True for characters XML 1.0 does not allow in a document.
fn forbidden_in_xml(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// True when `s` is surely NFC and free of XML-forbidden characters, from one pass over
/// its bytes: ASCII other than control characters, the two-byte characters below U+0300
/// (Latin-1 and the Latin extensions: no combining marks), Latin Extended Additional
/// (U+1E00–U+1EFF, the precomposed Vietnamese letters) and U+2002–U+203F (dashes, curly
/// quotes, the ellipsis) all have NFC quick-check Yes and combining class 0, so any text
/// made of them only is NFC. Anything else (a combining mark, another script, a control
/// character) makes it false, and the full check decides.
fn surely_clean(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += match b {
            b'\t' | b'\n' | b'\r' | 0x20..=0x7F => 1,
            0xC2..=0xCB => 2,
            0xE1 if matches!(bytes.get(i + 1), Some(0xB8..=0xBB)) => 3,
            0xE2 if bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0x82..=0xBF)) => 3,
            _ => return false,
        };
    }
    true
}

/// True when `s` may hold a character XML forbids: a byte scan (control characters are
/// single bytes; U+FFFE and U+FFFF start with 0xEF) instead of decoding every character.
fn may_hold_forbidden(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF) && s.chars().any(forbidden_in_xml)
}

/// True when `s` needs no cleaning: no XML-forbidden character, already NFC.
fn is_clean(s: &str) -> bool {
    surely_clean(s) || (!may_hold_forbidden(s) && is_nfc_quick(s.chars()) == IsNormalized::Yes)
}

/// NFC-normalizes `s` and drops XML-forbidden characters. Newlines and tabs are kept.
pub fn clean_text(s: &str) -> String {
    if is_clean(s) {
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
    fn every_character_the_byte_scan_passes_is_nfc_with_combining_class_zero() {
        use unicode_normalization::char::canonical_combining_class;
        let mut passed = 0;
        for c in (0..0x3_0000).filter_map(char::from_u32) {
            let one = c.to_string();
            if !surely_clean(&one) {
                continue;
            }
            passed += 1;
            assert!(!forbidden_in_xml(c), "{c:?} is forbidden in XML");
            assert_eq!(is_nfc_quick(one.chars()), IsNormalized::Yes, "{c:?} is not surely NFC");
            assert_eq!(canonical_combining_class(c), 0, "{c:?} combines");
        }
        // Tab, line feed, carriage return and U+0020–U+007F (99), U+0080–U+02FF (640),
        // U+1E00–U+1EFF (256), U+2002–U+203F (62).
        assert_eq!(passed, 99 + 640 + 256 + 62);
        assert!(surely_clean("Kinh tế — “Hiệp Hòa” đạt 100%…\n"));
        assert!(!surely_clean("Kinh te\u{302}\u{301}"));
        assert!(!surely_clean("a\u{0}b"));
        assert!(!surely_clean("a\u{FFFF}b"));
        assert!(!surely_clean("tiếng 日本"));
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
