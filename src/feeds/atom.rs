//! Atom 1.0 (RFC 4287).

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

use super::xml::{element, push_attr, push_cdata, push_text};
use super::{FeedFormat, FeedPage, GENERATOR, GENERATOR_VERSION, image_type};

fn rfc3339(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn link(out: &mut String, rel: &str, href: &str, media_type: &str) {
    out.push_str("<link rel=\"");
    out.push_str(rel);
    out.push_str("\" href=\"");
    push_attr(out, href);
    out.push('"');
    if !media_type.is_empty() {
        out.push_str(" type=\"");
        out.push_str(media_type);
        out.push('"');
    }
    out.push_str("/>");
}

pub fn render(page: &FeedPage) -> String {
    let meta = &page.meta;
    let tz = meta.timezone;
    let atom = FeedFormat::Atom.media_type();
    let mut out = String::with_capacity(1024 + page.items.iter().map(|i| i.content_html.len() + 1024).sum::<usize>());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"");
    push_attr(&mut out, &meta.language);
    out.push_str("\">\n");
    element(&mut out, "id", &meta.id);
    element(&mut out, "title", &meta.title);
    element(&mut out, "subtitle", &meta.description);
    element(&mut out, "updated", &rfc3339(page.updated, tz));
    link(&mut out, "self", &page.self_url(FeedFormat::Atom), atom);
    link(&mut out, "alternate", page.alternate_url(), "text/html");
    for hub in &meta.hubs {
        link(&mut out, "hub", hub, "");
    }
    if page.this_cursor.is_some() {
        link(&mut out, "first", &page.page_url(FeedFormat::Atom, None), atom);
    }
    if let Some(next) = &page.next_cursor {
        link(&mut out, "next", &page.page_url(FeedFormat::Atom, Some(next)), atom);
    }
    out.push_str("<author><name>");
    push_text(&mut out, &meta.site_name);
    out.push_str("</name></author><generator version=\"");
    out.push_str(GENERATOR_VERSION);
    out.push_str("\">");
    out.push_str(GENERATOR);
    out.push_str("</generator>\n");
    for item in &page.items {
        out.push_str("<entry>");
        element(&mut out, "id", &item.id);
        out.push_str("<title type=\"text\">");
        push_text(&mut out, &item.title);
        out.push_str("</title>");
        link(&mut out, "alternate", &item.url, "text/html");
        element(&mut out, "published", &rfc3339(item.published, tz));
        element(&mut out, "updated", &rfc3339(item.updated.max(item.published), tz));
        if let Some(author) = &item.author {
            out.push_str("<author><name>");
            push_text(&mut out, author);
            out.push_str("</name></author>");
        }
        if let Some(summary) = &item.summary {
            out.push_str("<summary type=\"text\">");
            push_text(&mut out, summary);
            out.push_str("</summary>");
        }
        if !item.content_html.is_empty() {
            out.push_str("<content type=\"html\">");
            push_cdata(&mut out, &item.content_html);
            out.push_str("</content>");
        }
        if let Some((name, path)) = &item.category {
            out.push_str("<category term=\"");
            push_attr(&mut out, path);
            out.push_str("\" label=\"");
            push_attr(&mut out, name);
            out.push_str("\"/>");
        }
        for tag in &item.tags {
            out.push_str("<category term=\"");
            push_attr(&mut out, tag);
            out.push_str("\"/>");
        }
        if let Some(image) = &item.image {
            link(&mut out, "enclosure", image, image_type(image));
        }
        out.push_str("</entry>\n");
    }
    out.push_str("</feed>\n");
    out
}
