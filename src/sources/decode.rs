//! Bytes of an upstream feed to UTF-8 text: the character set comes from a byte-order
//! mark, the Content-Type header or the XML prolog (legacy Vietnamese feeds are often
//! windows-1258), and HTML entities that XML does not define (`&agrave;`) become
//! character references, so every entity in the document is decoded exactly once.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8};

/// The document as UTF-8, its prolog (if any) now saying so.
pub fn decode_document(bytes: &[u8], content_type: Option<&str>) -> String {
    let (encoding, body) = match Encoding::for_bom(bytes) {
        Some((encoding, bom)) => (encoding, &bytes[bom..]),
        None => (choose_encoding(bytes, content_type), bytes),
    };
    let (text, _) = encoding.decode_without_bom_handling(body);
    let text = replace_prolog(&text);
    html_entities_to_references(&text).into_owned()
}

/// The Content-Type charset, unless it claims UTF-8 for bytes that are not while the
/// prolog names another charset (a web server's default header over a legacy file).
fn choose_encoding(bytes: &[u8], content_type: Option<&str>) -> &'static Encoding {
    let from_header = content_type.and_then(charset_parameter).and_then(|l| Encoding::for_label(l.as_bytes()));
    let from_prolog = prolog_encoding(bytes).and_then(|l| Encoding::for_label(l.as_bytes()));
    match (from_header, from_prolog) {
        (Some(header), Some(prolog)) if header == UTF_8 && std::str::from_utf8(bytes).is_err() => prolog,
        (Some(header), _) => header,
        (None, Some(prolog)) => prolog,
        (None, None) => UTF_8,
    }
}

fn charset_parameter(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("charset").then(|| value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// The `encoding="…"` of an `<?xml …?>` prolog; the prolog is ASCII in every charset a
/// feed uses.
fn prolog_encoding(bytes: &[u8]) -> Option<String> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = bytes[start..].strip_prefix(b"<?xml")?;
    let end = rest.windows(2).position(|w| w == b"?>")?;
    let prolog = std::str::from_utf8(&rest[..end]).ok()?;
    let after = &prolog[prolog.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_owned())
}

/// Replaces the prolog, whose encoding no longer holds, with a UTF-8 one.
fn replace_prolog(text: &str) -> Cow<'_, str> {
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix("<?xml")
        && let Some(end) = rest.find("?>")
    {
        return Cow::Owned(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{}", &rest[end + 2..]));
    }
    Cow::Borrowed(text)
}

const XML_ENTITIES: [&str; 5] = ["amp", "lt", "gt", "quot", "apos"];

/// The code points of an HTML named entity, e.g. `agrave` → 'à'.
fn named_entity(name: &str) -> Option<(u32, u32)> {
    markup5ever::data::NAMED_ENTITIES.get(format!("{name};").as_str()).copied().filter(|(first, _)| *first != 0)
}

/// Turns HTML named entities into numeric references outside CDATA sections and
/// comments (where text is literal). `&amp;agrave;` stays as it is: it means the text
/// "&agrave;", and decoding it too would decode twice.
pub fn html_entities_to_references(xml: &str) -> Cow<'_, str> {
    if !xml.contains('&') {
        return Cow::Borrowed(xml);
    }
    let mut out = String::with_capacity(xml.len() + 64);
    let mut copied = 0;
    let mut i = 0;
    let bytes = xml.as_bytes();
    while let Some(offset) = memchr::memchr2(b'&', b'<', &bytes[i..]) {
        let at = i + offset;
        let rest = &xml[at..];
        let literal_end = if rest.starts_with("<![CDATA[") {
            Some(rest.find("]]>").map_or(xml.len(), |e| at + e + 3))
        } else if rest.starts_with("<!--") {
            Some(rest.find("-->").map_or(xml.len(), |e| at + e + 3))
        } else {
            None
        };
        if let Some(end) = literal_end {
            i = end;
            continue;
        }
        i = at + 1;
        if bytes[at] != b'&' {
            continue;
        }
        let name_len = rest[1..].bytes().take(40).take_while(u8::is_ascii_alphanumeric).count();
        if name_len == 0 || rest.as_bytes().get(1 + name_len) != Some(&b';') {
            continue;
        }
        let name = &rest[1..1 + name_len];
        if XML_ENTITIES.contains(&name) {
            continue;
        }
        if let Some((first, second)) = named_entity(name) {
            out.push_str(&xml[copied..at]);
            out.push_str(&format!("&#{first};"));
            if second != 0 {
                out.push_str(&format!("&#{second};"));
            }
            copied = at + name_len + 2;
            i = copied;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(xml);
    }
    out.push_str(&xml[copied..]);
    Cow::Owned(out)
}

/// Decodes the entities of HTML text once: named, decimal and hexadecimal.
pub fn decode_html_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let decoded = after.find(';').filter(|end| *end <= 40).and_then(|end| {
            let name = &after[..end];
            let c = if let Some(num) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(num, 16).ok().and_then(char::from_u32).map(String::from)
            } else if let Some(num) = name.strip_prefix('#') {
                num.parse::<u32>().ok().and_then(char::from_u32).map(String::from)
            } else {
                named_entity(name).map(|(first, second)| {
                    [first, second].into_iter().filter(|c| *c != 0).filter_map(char::from_u32).collect()
                })
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push_str(&c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charset_comes_from_the_header_then_the_prolog() {
        // "Việt" in windows-1258: e with circumflex (0xEA), then a combining dot below (0xF2).
        let xml = b"<?xml version=\"1.0\" encoding=\"windows-1258\"?><t>Vi\xEA\xF2t</t>";
        let text = decode_document(xml, None);
        assert_eq!(text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><t>Vi\u{EA}\u{323}t</t>");
        assert_eq!(decode_document(xml, Some("text/xml; charset=utf-8")), text, "a UTF-8 header over legacy bytes");
        let latin1 = b"<?xml version=\"1.0\"?><t>Caf\xE9</t>";
        assert!(decode_document(latin1, Some("application/rss+xml; charset=\"ISO-8859-1\"")).contains("Café"));
        let bom = b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"windows-1252\"?><t>\xC3\xA9</t>";
        assert!(decode_document(bom, None).contains("<t>é</t>"));
    }

    #[test]
    fn entities_are_decoded_once() {
        assert_eq!(
            html_entities_to_references("<t>Tr&agrave; &amp;agrave; &lt;</t>"),
            "<t>Tr&#224; &amp;agrave; &lt;</t>"
        );
        assert_eq!(html_entities_to_references("<![CDATA[&agrave;]]>&nbsp;"), "<![CDATA[&agrave;]]>&#160;");
        assert_eq!(html_entities_to_references("a & b &unknown; &"), "a & b &unknown; &");
        assert_eq!(decode_html_entities("T&ocirc;m &amp;amp; c&#225; &#x1EA1; &"), "Tôm &amp; cá ạ &");
    }
}
