//! Message bodies. A [`TextBody`] is the text of one part (plain or HTML) with, optionally,
//! its encoding for the wire already made. A [`SharedBody`] is a text rendered once for many
//! readers with a slot where each reader's own values go (their links): filling it gives the
//! same text and the same encoded bytes as encoding that reader's text with lettre's
//! `Body::new` (7bit, quoted-printable or base64, whichever it picks), but the lines without
//! a slot are quoted-printable encoded once, not once per reader.

use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// The text of one part, and its encoded form when it was made ahead.
#[derive(Clone, Debug)]
pub struct TextBody {
    text: String,
    encoded: Option<Body>,
}

impl TextBody {
    pub fn new(text: String) -> TextBody {
        TextBody { text, encoded: None }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part as sent: what lettre's `Body::new` makes of the text.
    pub fn encoded(&self) -> Body {
        match &self.encoded {
            Some(body) => body.clone(),
            None => Body::new(self.text.clone()),
        }
    }

    /// The encoded form, taken without a copy when it was made ahead.
    pub fn into_encoded(self) -> Body {
        match self.encoded {
            Some(body) => body,
            None => Body::new(self.text),
        }
    }
}

impl From<String> for TextBody {
    fn from(text: String) -> TextBody {
        TextBody::new(text)
    }
}

impl From<&str> for TextBody {
    fn from(text: &str) -> TextBody {
        TextBody::new(text.to_owned())
    }
}

#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    /// The value of that index.
    Slot(usize),
}

/// One line of the text with CRLF line ends (its CRLF included).
#[derive(Clone, Debug)]
enum Line {
    /// No slot: quoted-printable encoded once.
    Encoded(String),
    /// Pieces to fill, then encode.
    Open(Vec<Piece>),
}

/// A text with slots, rendered once and filled per reader.
#[derive(Clone, Debug)]
pub struct SharedBody {
    pieces: Vec<Piece>,
    /// The text with CRLF line ends, line by line, for quoted-printable.
    lines: Vec<Line>,
    /// Bytes of the text outside the slots, to size the reader's text.
    fixed_len: usize,
}

impl SharedBody {
    /// `rendered` with each occurrence of `placeholders[i]` standing for value `i`.
    /// Placeholders must be non-empty and none may be a prefix of another.
    pub fn new(rendered: &str, placeholders: &[&str]) -> SharedBody {
        let pieces = split(rendered, placeholders);
        let fixed_len = pieces.iter().map(|p| if let Piece::Text(t) = p { t.len() } else { 0 }).sum();
        SharedBody { lines: lines(&pieces), pieces, fixed_len }
    }

    /// How many times the slots appear.
    pub fn slot_count(&self) -> usize {
        self.pieces.iter().filter(|p| matches!(p, Piece::Slot(_))).count()
    }

    /// The reader's text, with `values[i]` in slot `i`, and its encoding.
    pub fn fill(&self, values: &[&str]) -> TextBody {
        let text = splice(&self.pieces, values, self.fixed_len);
        // The line-by-line encoding holds when no value is empty or has a line break
        // (what follows a slot then sees the same character before it); links never do.
        if values.iter().any(|v| v.is_empty() || v.contains(['\r', '\n'])) {
            return TextBody::new(text);
        }
        let encoded = match email_encoding::body::Encoding::choose(text.as_str(), false) {
            email_encoding::body::Encoding::QuotedPrintable => {
                let mut out = String::with_capacity(text.len() + text.len() / 2);
                for line in &self.lines {
                    match line {
                        Line::Encoded(encoded) => out.push_str(encoded),
                        Line::Open(pieces) => {
                            let line = splice(pieces, values, 0);
                            out.push_str(&quoted_printable::encode_to_str(line));
                        }
                    }
                }
                Body::dangerous_pre_encoded(out.into_bytes(), ContentTransferEncoding::QuotedPrintable)
            }
            email_encoding::body::Encoding::SevenBit => {
                Body::dangerous_pre_encoded(crlf(&text).into_bytes(), ContentTransferEncoding::SevenBit)
            }
            email_encoding::body::Encoding::Base64 => {
                let crlf = crlf(&text);
                let mut out = String::with_capacity(email_encoding::body::base64::encoded_len(crlf.len()));
                if email_encoding::body::base64::encode(crlf.as_bytes(), &mut out).is_err() {
                    return TextBody::new(text);
                }
                Body::dangerous_pre_encoded(out.into_bytes(), ContentTransferEncoding::Base64)
            }
            // Not chosen without SMTPUTF8; lettre decides.
            email_encoding::body::Encoding::EightBit => return TextBody::new(text),
        };
        TextBody { text, encoded: Some(encoded) }
    }
}

/// `rendered` cut at each placeholder.
fn split(rendered: &str, placeholders: &[&str]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    loop {
        let next = placeholders
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .filter_map(|(i, p)| rest.find(p).map(|at| (at, i, p.len())))
            .min();
        let Some((at, slot, len)) = next else { break };
        if at > 0 {
            pieces.push(Piece::Text(rest[..at].to_owned()));
        }
        pieces.push(Piece::Slot(slot));
        rest = &rest[at + len..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    pieces
}

fn splice(pieces: &[Piece], values: &[&str], capacity: usize) -> String {
    let mut text = String::with_capacity(capacity + values.iter().map(|v| v.len()).sum::<usize>());
    for piece in pieces {
        match piece {
            Piece::Text(t) => text.push_str(t),
            Piece::Slot(i) => text.push_str(values.get(*i).copied().unwrap_or_default()),
        }
    }
    text
}

/// The pieces with CRLF line ends, line by line, the lines without a slot encoded.
fn lines(pieces: &[Piece]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let finish = |current: &mut Vec<Piece>, lines: &mut Vec<Line>| {
        let line = std::mem::take(current);
        if line.iter().any(|p| matches!(p, Piece::Slot(_))) {
            lines.push(Line::Open(line));
        } else {
            let text = splice(&line, &[], 0);
            lines.push(Line::Encoded(quoted_printable::encode_to_str(text)));
        }
    };
    for piece in pieces {
        match piece {
            Piece::Slot(i) => current.push(Piece::Slot(*i)),
            Piece::Text(text) => {
                // A piece starts the text or follows a slot, whose value never ends in
                // CR: a line feed at its start gets its CR, as in the whole text.
                let text = crlf(text);
                let mut rest = text.as_str();
                while let Some(end) = rest.find('\n') {
                    current.push(Piece::Text(rest[..=end].to_owned()));
                    finish(&mut current, &mut lines);
                    rest = &rest[end + 1..];
                }
                if !rest.is_empty() {
                    current.push(Piece::Text(rest.to_owned()));
                }
            }
        }
    }
    if !current.is_empty() {
        finish(&mut current, &mut lines);
    }
    lines
}

/// CRLF line ends as lettre makes them: a CR before each LF that has none.
fn crlf(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut from = 0;
    for at in memchr::memchr_iter(b'\n', bytes) {
        if at == 0 || bytes[at - 1] != b'\r' {
            out.push_str(&text[from..at]);
            out.push('\r');
            from = at;
        }
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What lettre sends for `text`, as (encoding, bytes).
    fn lettre(text: &str) -> (String, Vec<u8>) {
        let body = Body::new(text.to_owned());
        (format!("{:?}", body.encoding()), body.into_vec())
    }

    fn filled(shared: &SharedBody, values: &[&str]) -> (String, Vec<u8>) {
        let body = shared.fill(values).into_encoded();
        (format!("{:?}", body.encoding()), body.into_vec())
    }

    const SLOTS: [&str; 2] = ["\u{e000}slot-a\u{e001}", "\u{e000}slot-b\u{e001}"];

    fn check(template: &str, values: &[&str]) {
        let shared = SharedBody::new(template, &SLOTS);
        let text = template.replace(SLOTS[0], values[0]).replace(SLOTS[1], values[1]);
        assert_eq!(shared.fill(values).as_str(), text);
        assert_eq!(filled(&shared, values), lettre(&text), "template {template:?} values {values:?}");
    }

    #[test]
    fn filling_encodes_as_lettre_does() {
        let long = "x".repeat(90);
        let spaces = format!("{} \n", "y".repeat(74));
        let viet = "Bản tin sáng: Ủy ban nhân dân huyện Hiệp Hòa tổ chức hội nghị tổng kết công tác năm";
        let templates = [
            // 7bit: short ASCII lines.
            format!("Hi\nprefs {}\nunsub {}\n", SLOTS[0], SLOTS[1]),
            // Quoted-printable: mostly ASCII, one long line, '=' signs, trailing spaces and tabs.
            format!("<a href=\"{}\">x</a> {long}\n{spaces}tab\t\n{viet}\n=3D {}", SLOTS[0], SLOTS[1]),
            // A slot at the start and the end, a line feed right after a slot, CRLF already.
            format!("{}\nmiddle {long}{long}\r\n\r\nend {}", SLOTS[0], SLOTS[1]),
            format!("\n\n{}{}\n", SLOTS[1], SLOTS[0]),
            // Base64: mostly non-ASCII.
            format!("{viet}{viet}{viet}\nĐ {} Đ {}\n", SLOTS[0], SLOTS[1]),
            // A lone CR, a line of exactly 76 and of 75 bytes around a slot.
            format!("a\rb\n{}{}\n{}{}", "z".repeat(70), SLOTS[0], "w".repeat(60), SLOTS[1]),
            // No slot at all.
            format!("{long}\n{viet}"),
        ];
        let values = [
            ["https://tin.example/preferences/AAA", "https://tin.example/unsubscribe/BBB"],
            ["p", "u"],
            ["https:&#x2f;&#x2f;tin.example&#x2f;p&#x2f;Đ=", "a b "],
            [&"q".repeat(200), "="],
        ];
        for template in &templates {
            for v in &values {
                check(template, v);
            }
        }
    }

    #[test]
    fn empty_values_or_line_breaks_fall_back_to_lettre() {
        let template = format!("a\r{}\nb {}\n{}", SLOTS[0], SLOTS[1], "Đ".repeat(40));
        check(&template, &["", "x"]);
        check(&template, &["x\n", "y\r"]);
    }

    #[test]
    fn crlf_matches_lettre() {
        for text in ["", "\n", "a\nb", "a\r\nb\n", "\r\r\n\n", "Đ\nđ\r"] {
            let expected = Body::new_with_encoding(text.to_owned(), ContentTransferEncoding::Binary).unwrap();
            assert_eq!(crlf(text).into_bytes(), expected.into_vec(), "{text:?}");
        }
    }
}
