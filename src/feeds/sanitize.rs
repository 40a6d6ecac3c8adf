//! Article HTML made safe for feed readers: no scripts, styles, event handlers or
//! `javascript:` URLs, and relative links made absolute against the article's URL.

use ammonia::{Builder, UrlRelative};
use url::Url;

pub fn sanitize_html(html: &str, article_url: &str) -> String {
    let mut builder = Builder::default();
    builder.add_tags(["figure", "figcaption"]).link_rel(Some("noopener"));
    match Url::parse(article_url) {
        Ok(base) => builder.url_relative(UrlRelative::RewriteWithBase(base)),
        Err(_) => builder.url_relative(UrlRelative::Deny),
    };
    builder.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://hiephoa.example/tin-tuc/kinh-te/bai-viet";

    #[test]
    fn dangerous_markup_is_removed() {
        let table = [
            ("<p>a<script>alert(1)</script></p>", "<p>a</p>"),
            ("<p style=\"color:red\">b</p><style>p{}</style>", "<p>b</p>"),
            ("<img src=\"x.jpg\" onerror=\"alert(1)\">", "<img src=\"https://hiephoa.example/tin-tuc/kinh-te/x.jpg\">"),
            ("<a href=\"javascript:alert(1)\">c</a>", "<a rel=\"noopener\">c</a>"),
            ("<a href=\"/tin-tuc\">d</a>", "<a href=\"https://hiephoa.example/tin-tuc\" rel=\"noopener\">d</a>"),
            ("<iframe src=\"https://evil.example\"></iframe><p>e</p>", "<p>e</p>"),
            ("<p>Đảng bộ &amp; nhân dân</p>", "<p>Đảng bộ &amp; nhân dân</p>"),
        ];
        for (input, expected) in table {
            assert_eq!(sanitize_html(input, BASE), expected, "{input}");
        }
    }
}
