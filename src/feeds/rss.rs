//! RSS 2.0 with the content, Dublin Core, Atom and Media RSS namespaces.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::xml::{element, push_attr, push_cdata};
use super::{FeedFormat, FeedPage, GENERATOR, GENERATOR_VERSION, image_type};

/// RFC 822 date with the site's offset, e.g. "Wed, 25 Nov 2026 08:00:00 +0700".
fn rfc822(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).to_rfc2822()
}

fn atom_link(out: &mut String, rel: &str, href: &str, media_type: Option<&str>) {
    out.push_str("<atom:link rel=\"");
    out.push_str(rel);
    out.push_str("\" href=\"");
    push_attr(out, href);
    if let Some(t) = media_type {
        out.push_str("\" type=\"");
        out.push_str(t);
    }
    out.push_str("\"/>");
}

pub fn render(page: &FeedPage) -> String {
    let meta = &page.meta;
    let tz = meta.timezone;
    let mut out = String::with_capacity(1024 + page.items.iter().map(|i| i.content_html.len() + 1024).sum::<usize>());
    out.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\" ",
        "xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" ",
        "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:media=\"http://search.yahoo.com/mrss/\">\n<channel>\n"
    ));
    element(&mut out, "title", &meta.title);
    element(&mut out, "link", page.alternate_url());
    element(&mut out, "description", &meta.description);
    element(&mut out, "language", &meta.language);
    element(&mut out, "lastBuildDate", &rfc822(page.updated, tz));
    element(&mut out, "generator", &format!("{GENERATOR} {GENERATOR_VERSION}"));
    element(&mut out, "ttl", &meta.ttl_minutes.to_string());
    atom_link(&mut out, "self", &page.self_url(FeedFormat::Rss), Some(FeedFormat::Rss.media_type()));
    for hub in &meta.hubs {
        atom_link(&mut out, "hub", hub, None);
    }
    if page.this_cursor.is_some() {
        atom_link(&mut out, "first", &page.page_url(FeedFormat::Rss, None), Some(FeedFormat::Rss.media_type()));
    }
    if let Some(next) = &page.next_cursor {
        atom_link(&mut out, "next", &page.page_url(FeedFormat::Rss, Some(next)), Some(FeedFormat::Rss.media_type()));
    }
    out.push('\n');
    for item in &page.items {
        out.push_str("<item>");
        element(&mut out, "title", &item.title);
        element(&mut out, "link", &item.url);
        out.push_str("<guid isPermaLink=\"false\">");
        super::xml::push_text(&mut out, &item.id);
        out.push_str("</guid>");
        element(&mut out, "pubDate", &rfc822(item.published, tz));
        if let Some(author) = &item.author {
            element(&mut out, "dc:creator", author);
        }
        if let Some(summary) = &item.summary {
            element(&mut out, "description", summary);
        }
        if !item.content_html.is_empty() {
            out.push_str("<content:encoded>");
            push_cdata(&mut out, &item.content_html);
            out.push_str("</content:encoded>");
        }
        if let Some((name, _)) = &item.category {
            element(&mut out, "category", name);
        }
        for tag in &item.tags {
            element(&mut out, "category", tag);
        }
        // Media RSS rather than <enclosure>, which must state the file's length in bytes.
        if let Some(image) = &item.image {
            out.push_str("<media:content url=\"");
            push_attr(&mut out, image);
            out.push_str("\" medium=\"image\" type=\"");
            out.push_str(image_type(image));
            out.push_str("\"/>");
        }
        out.push_str("</item>\n");
    }
    out.push_str("</channel>\n</rss>\n");
    out
}
