//! Fast XML escaping for the feed writers: runs of ordinary text are copied whole,
//! found with memchr, so 3 KB of Vietnamese content costs little more than a copy.

/// Escapes text content (`&`, `<`, `>`).
pub fn push_text(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for i in memchr::memchr3_iter(b'&', b'<', b'>', bytes) {
        out.push_str(&s[start..i]);
        out.push_str(match bytes[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            _ => "&gt;",
        });
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Escapes an attribute value.
pub use crate::domain::text::push_escaped as push_attr;

/// Writes `s` as CDATA; a `]]>` inside is split across two sections so it survives.
pub fn push_cdata(out: &mut String, s: &str) {
    out.push_str("<![CDATA[");
    let mut rest = s;
    while let Some(i) = memchr::memmem::find(rest.as_bytes(), b"]]>") {
        out.push_str(&rest[..i + 2]);
        out.push_str("]]><![CDATA[");
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out.push_str("]]>");
}

/// `<name>escaped text</name>`
pub fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_text(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let mut out = String::new();
        push_text(&mut out, "Tôm & cá <tươi> \"ngon\"");
        assert_eq!(out, "Tôm &amp; cá &lt;tươi&gt; \"ngon\"");
        out.clear();
        push_attr(&mut out, "a\"b&c");
        assert_eq!(out, "a&quot;b&amp;c");
    }

    #[test]
    fn cdata_end_markers_are_split() {
        let mut out = String::new();
        push_cdata(&mut out, "a]]>b]]>");
        assert_eq!(out, "<![CDATA[a]]]]><![CDATA[>b]]]]><![CDATA[>]]>");
    }
}
