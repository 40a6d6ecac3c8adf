//! Article files: `.json` (one object or an array), `.jsonl` (one object a line) and `.md`
//! (YAML front matter with the article fields, Markdown body as the content). Used by
//! `bantin import`; folders are walked recursively.

use std::path::{Path, PathBuf};

use pulldown_cmark::{Options, Parser, html};
use serde_json::Value;

use crate::domain::FieldError;

pub const EXTENSIONS: [&str; 3] = ["json", "jsonl", "md"];

/// One item read from a file: where it stands in the file ("line 3", "item 2") and
/// either its JSON or why it could not be read.
pub struct FileItem {
    pub locator: String,
    pub value: Result<Value, FieldError>,
}

/// Items of a file split for the ingest path: the readable ones' JSON with their
/// locators, in order, and each unreadable one's locator with why.
pub struct SplitItems<'a> {
    pub values: Vec<Value>,
    pub locators: Vec<&'a str>,
    pub unreadable: Vec<(&'a str, &'a FieldError)>,
}

pub fn split(items: &[FileItem]) -> SplitItems<'_> {
    let mut split =
        SplitItems { values: Vec::with_capacity(items.len()), locators: Vec::new(), unreadable: Vec::new() };
    for item in items {
        match &item.value {
            Ok(value) => {
                split.values.push(value.clone());
                split.locators.push(item.locator.as_str());
            }
            Err(e) => split.unreadable.push((item.locator.as_str(), e)),
        }
    }
    split
}

fn has_article_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands the paths given on the command line into article files, sorted within each
/// folder. Files named explicitly must have a known extension; inside folders other
/// files (images, notes) are passed over.
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            let walker = walkdir::WalkDir::new(path).follow_links(true).sort_by_file_name();
            for entry in walker {
                match entry {
                    Ok(e) if e.file_type().is_file() && has_article_extension(e.path()) => files.push(e.into_path()),
                    Ok(_) => {}
                    Err(e) => errors.push((e.path().unwrap_or(path).to_path_buf(), e.to_string())),
                }
            }
        } else if !path.exists() {
            errors.push((path.clone(), "no such file or folder".into()));
        } else if has_article_extension(path) {
            files.push(path.clone());
        } else {
            errors.push((path.clone(), format!("not an article file (expected .{})", EXTENSIONS.join(", ."))));
        }
    }
    (files, errors)
}

/// Reads a file into its items. An error here means nothing in the file could be read.
pub fn read(path: &Path) -> Result<Vec<FileItem>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| format!("is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "json" => read_json(text),
        "jsonl" => Ok(read_jsonl(text)),
        "md" => read_markdown(text, path).map(|v| vec![FileItem { locator: "front matter".into(), value: Ok(v) }]),
        _ => Err("unknown file type".into()),
    }
}

fn read_json(text: &str) -> Result<Vec<FileItem>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    Ok(match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| FileItem { locator: format!("item {}", i + 1), value: Ok(v) })
            .collect(),
        other => vec![FileItem { locator: "object".into(), value: Ok(other) }],
    })
}

fn read_jsonl(text: &str) -> Vec<FileItem> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| FileItem {
            locator: format!("line {}", i + 1),
            value: serde_json::from_str(line).map_err(|e| FieldError::general(format!("malformed JSON: {e}"))),
        })
        .collect()
}

/// Splits `---` front matter from the body.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("---")?;
    let rest = rest.strip_prefix("\r\n").or_else(|| rest.strip_prefix('\n'))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

pub fn markdown_to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, options));
    out
}

fn read_markdown(text: &str, path: &Path) -> Result<Value, String> {
    let (front, body) = split_front_matter(text)
        .ok_or("has no front matter: start the file with a line ---, the article fields in YAML, then ---")?;
    let mut fields: Value =
        serde_yaml_ng::from_str(front).map_err(|e| format!("front matter is not valid YAML: {e}"))?;
    let Value::Object(map) = &mut fields else {
        return Err("front matter must be YAML fields like `title: …`".into());
    };
    if !map.contains_key("id")
        && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
    {
        map.insert("id".into(), Value::String(stem.to_owned()));
    }
    if !body.trim().is_empty() {
        if map.contains_key("content_html") || map.contains_key("content_text") {
            return Err("has both a Markdown body and content_html/content_text in its front matter".into());
        }
        map.insert("content_html".into(), Value::String(markdown_to_html(body)));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_and_body_become_an_article() {
        let text = "---\ntitle: Lúa mùa được mùa\ncategory: [Tin Tức, Kinh tế]\n---\n\nNông dân **phấn khởi**.\n";
        let v = read_markdown(text, Path::new("x/lua-mua.md")).unwrap();
        assert_eq!(v["id"], "lua-mua");
        assert_eq!(v["title"], "Lúa mùa được mùa");
        assert_eq!(v["content_html"], "<p>Nông dân <strong>phấn khởi</strong>.</p>\n");
    }

    #[test]
    fn markdown_without_front_matter_is_refused() {
        assert!(read_markdown("# Tiêu đề\n", Path::new("a.md")).is_err());
        assert!(read_markdown("---\ntitle: x\n", Path::new("a.md")).is_err());
    }

    #[test]
    fn jsonl_reports_bad_lines_by_number() {
        let items = read_jsonl("{\"id\":\"a\"}\n\n{oops\n");
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].locator, "line 3");
        assert!(items[1].value.is_err());
    }
}
