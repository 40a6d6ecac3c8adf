//! OPML 2.0 listing every feed, categories nested as in the site.

use chrono::{DateTime, Utc};

use super::xml::push_attr;
use super::{FeedFormat, FeedKey};
use crate::store::{AuthorRef, CategoryRef};

fn outline(out: &mut String, indent: usize, text: &str, base_url: &str, key: &FeedKey, html_url: &str, close: bool) {
    out.push_str(&"  ".repeat(indent));
    out.push_str("<outline type=\"rss\" text=\"");
    push_attr(out, text);
    out.push_str("\" title=\"");
    push_attr(out, text);
    out.push_str("\" xmlUrl=\"");
    push_attr(out, &key.url(base_url, FeedFormat::Rss));
    out.push_str("\" htmlUrl=\"");
    push_attr(out, html_url);
    out.push_str(if close { "\"/>\n" } else { "\">\n" });
}

pub fn render(
    site_name: &str,
    base_url: &str,
    site_url: &str,
    categories: &[CategoryRef],
    authors: &[AuthorRef],
    now: DateTime<Utc>,
) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n<head><title>");
    super::xml::push_text(&mut out, site_name);
    out.push_str("</title><dateCreated>");
    out.push_str(&now.to_rfc2822());
    out.push_str("</dateCreated><docs>http://opml.org/spec2.opml</docs></head>\n<body>\n");
    outline(&mut out, 1, site_name, base_url, &FeedKey::All, site_url, true);
    // Categories come ordered by path, so a child follows its parent: open an outline
    // for each category and close it when the next one is not below it.
    let mut open: Vec<&str> = Vec::new();
    for (i, c) in categories.iter().enumerate() {
        let has_children = categories.get(i + 1).is_some_and(|next| next.path.starts_with(&format!("{}/", c.path)));
        let name = c.names.last().map(String::as_str).unwrap_or(&c.path);
        outline(&mut out, open.len() + 1, name, base_url, &FeedKey::Category(c.path.clone()), site_url, !has_children);
        if has_children {
            open.push(&c.path);
        }
        while let Some(parent) = open.last() {
            let next_is_inside = categories.get(i + 1).is_some_and(|next| next.path.starts_with(&format!("{parent}/")));
            if next_is_inside {
                break;
            }
            open.pop();
            out.push_str(&"  ".repeat(open.len() + 1));
            out.push_str("</outline>\n");
        }
    }
    if !authors.is_empty() {
        out.push_str("  <outline text=\"Authors\" title=\"Authors\">\n");
        for a in authors {
            outline(&mut out, 2, &a.name, base_url, &FeedKey::Author(a.slug.clone()), site_url, true);
        }
        out.push_str("  </outline>\n");
    }
    out.push_str("</body>\n</opml>\n");
    out
}
