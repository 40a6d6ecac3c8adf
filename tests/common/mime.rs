//! Just enough MIME to check what the app mails: unfolded headers with RFC 2047 words
//! decoded, multipart bodies split into their leaf parts, quoted-printable and base64
//! bodies decoded, and the links in them.

use base64::Engine;

#[derive(Clone, Debug)]
pub struct MimePart {
    pub headers: Vec<(String, String)>,
    /// Decoded with the part's transfer encoding, as UTF-8.
    pub body: String,
}

impl MimePart {
    /// The part's media type, lowercased, without parameters ("text/plain").
    pub fn media_type(&self) -> String {
        media_type_in(&self.headers)
    }
}

#[derive(Clone, Debug)]
pub struct ParsedMail {
    /// Top-level headers in order, unfolded; values as sent (still RFC 2047-encoded).
    pub headers: Vec<(String, String)>,
    /// The top-level media type ("multipart/alternative").
    pub media_type: String,
    /// The leaf parts (the message itself when it is not multipart).
    pub parts: Vec<MimePart>,
}

impl ParsedMail {
    pub fn parse(raw: &[u8]) -> ParsedMail {
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let (headers, body) = split_head(&text);
        let mut parts = Vec::new();
        collect_parts(&headers, body, &mut parts);
        ParsedMail { media_type: media_type_in(&headers), headers, parts }
    }

    /// A header's value as sent, e.g. to check that it is RFC 2047-encoded.
    pub fn raw_header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// A header's value with encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw_header(name).map(decode_words)
    }

    fn part(&self, media_type: &str) -> &str {
        self.parts
            .iter()
            .find(|p| p.media_type() == media_type)
            .map(|p| p.body.as_str())
            .unwrap_or_else(|| panic!("no {media_type} part in the message: {:?}", self.parts))
    }

    pub fn text(&self) -> &str {
        self.part("text/plain")
    }

    pub fn html(&self) -> &str {
        self.part("text/html")
    }

    /// Every http(s) link in the HTML part's href attributes and the text part, in order.
    pub fn links(&self) -> Vec<String> {
        let mut links = Vec::new();
        if let Some(html) = self.parts.iter().find(|p| p.media_type() == "text/html") {
            links.extend(hrefs(&html.body));
        }
        if let Some(text) = self.parts.iter().find(|p| p.media_type() == "text/plain") {
            let words = text.body.split_whitespace();
            links.extend(words.filter(|w| w.starts_with("http://") || w.starts_with("https://")).map(str::to_owned));
        }
        links
    }

    /// The first link whose path starts with `path_prefix` ("/confirm/"); panics when
    /// there is none.
    pub fn link_to(&self, path_prefix: &str) -> url::Url {
        self.links()
            .iter()
            .filter_map(|l| url::Url::parse(l).ok())
            .find(|u| u.path().starts_with(path_prefix))
            .unwrap_or_else(|| panic!("no link to {path_prefix} in {:?}", self.links()))
    }
}

/// The values of the `href="…"` attributes in an HTML document, entities decoded.
pub fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"").skip(1).map(|chunk| unescape_html(chunk.split('"').next().unwrap_or_default())).collect()
}

/// Undoes the escaping templates apply to attribute values.
fn unescape_html(text: &str) -> String {
    let entities = [("&#x2f;", "/"), ("&#x27;", "'"), ("&quot;", "\""), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")];
    entities.iter().fold(text.to_owned(), |text, (entity, plain)| text.replace(entity, plain))
}

fn media_type_in(headers: &[(String, String)]) -> String {
    let value = header_in(headers, "Content-Type").unwrap_or("text/plain");
    value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Splits "headers\n\nbody" and unfolds the headers.
fn split_head(text: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

/// A parameter of a header value: `boundary` in `multipart/alternative; boundary="x"`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (key, v) = p.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn collect_parts(headers: &[(String, String)], body: &str, parts: &mut Vec<MimePart>) {
    let content_type = header_in(headers, "Content-Type").unwrap_or("text/plain");
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = parameter(content_type, "boundary").expect("a multipart message names its boundary");
        let delimiter = format!("--{boundary}");
        let closing = format!("--{boundary}--");
        let mut current: Option<String> = None;
        for line in body.split_inclusive('\n') {
            let trimmed = line.trim_end();
            if trimmed == delimiter || trimmed == closing {
                if let Some(part) = current.take() {
                    let (part_headers, part_body) = split_head(&part);
                    // The line break before a delimiter belongs to the delimiter.
                    collect_parts(&part_headers, part_body.strip_suffix('\n').unwrap_or(part_body), parts);
                }
                if trimmed == delimiter {
                    current = Some(String::new());
                }
            } else if let Some(part) = &mut current {
                part.push_str(line);
            }
        }
        return;
    }
    let encoding = header_in(headers, "Content-Transfer-Encoding").unwrap_or("7bit").to_ascii_lowercase();
    let decoded = match encoding.as_str() {
        "quoted-printable" => quoted_printable(body),
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(compact).expect("a valid base64 body");
            String::from_utf8(bytes).expect("a UTF-8 body")
        }
        _ => body.to_owned(),
    };
    parts.push(MimePart { headers: headers.to_vec(), body: decoded });
}

fn quoted_printable(body: &str) -> String {
    let mut bytes = Vec::with_capacity(body.len());
    let mut lines = body.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        let (line, soft_break) = match line.strip_suffix('=') {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let raw = line.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            let escaped = (raw[i] == b'=').then(|| line.get(i + 1..i + 3)).flatten();
            if let Some(byte) = escaped.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                bytes.push(byte);
                i += 3;
                continue;
            }
            bytes.push(raw[i]);
            i += 1;
        }
        if !soft_break && lines.peek().is_some() {
            bytes.push(b'\n');
        }
    }
    String::from_utf8(bytes).expect("a UTF-8 quoted-printable body")
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`); whitespace
/// between two adjacent encoded words is dropped, as the RFC says.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        let Some(word) = encoded_word(candidate) else {
            out.push_str(before);
            out.push_str("=?");
            rest = &candidate[2..];
            after_word = false;
            continue;
        };
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&word.text);
        rest = &candidate[word.length..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

struct EncodedWord {
    text: String,
    length: usize,
}

fn encoded_word(s: &str) -> Option<EncodedWord> {
    let inner = s.strip_prefix("=?")?;
    let mut fields = inner.splitn(3, '?');
    let _charset = fields.next()?;
    let encoding = fields.next()?;
    let remainder = fields.next()?;
    let end = remainder.find("?=")?;
    let payload = &remainder[..end];
    let length = 2 + inner.len() - remainder.len() + end + 2;
    let bytes = match encoding.to_ascii_lowercase().as_str() {
        "b" => base64::engine::general_purpose::STANDARD.decode(payload).ok()?,
        "q" => quoted_printable(&payload.replace('_', " ")).into_bytes(),
        _ => return None,
    };
    Some(EncodedWord { text: String::from_utf8(bytes).ok()?, length })
}
