//! Page and email templates (minijinja), embedded in the binary and overridable: a file
//! with the same relative name in the templates folder (setting `templates_dir`) replaces
//! the embedded one at start. `.html` templates escape what they print; `.txt` do not.
//! Translations live in `templates/strings.json`, one object per language, passed to
//! every template as `t`.

use std::path::Path;

use anyhow::Context;
use minijinja::{AutoEscape, Environment, HtmlEscape};
use serde_json::Value;

use crate::config::Language;

const EMBEDDED: &[(&str, &str)] = &[
    ("web/layout.html", include_str!("../templates/web/layout.html")),
    ("web/subscribe.html", include_str!("../templates/web/subscribe.html")),
    ("web/notice.html", include_str!("../templates/web/notice.html")),
    ("web/preferences.html", include_str!("../templates/web/preferences.html")),
    ("web/unsubscribe.html", include_str!("../templates/web/unsubscribe.html")),
    ("web/admin/layout.html", include_str!("../templates/web/admin/layout.html")),
    ("web/admin/login.html", include_str!("../templates/web/admin/login.html")),
    ("web/admin/dashboard.html", include_str!("../templates/web/admin/dashboard.html")),
    ("web/admin/lists.html", include_str!("../templates/web/admin/lists.html")),
    ("web/admin/list_form.html", include_str!("../templates/web/admin/list_form.html")),
    ("web/admin/list_delete.html", include_str!("../templates/web/admin/list_delete.html")),
    ("web/admin/list_preview.html", include_str!("../templates/web/admin/list_preview.html")),
    ("web/admin/runs_table.html", include_str!("../templates/web/admin/runs_table.html")),
    ("web/admin/subscribers.html", include_str!("../templates/web/admin/subscribers.html")),
    ("web/admin/subscriber.html", include_str!("../templates/web/admin/subscriber.html")),
    ("web/admin/subscriber_delete.html", include_str!("../templates/web/admin/subscriber_delete.html")),
    ("web/admin/import.html", include_str!("../templates/web/admin/import.html")),
    ("web/admin/import_report.html", include_str!("../templates/web/admin/import_report.html")),
    ("web/admin/export.html", include_str!("../templates/web/admin/export.html")),
    ("web/admin/tokens.html", include_str!("../templates/web/admin/tokens.html")),
    ("web/admin/audit.html", include_str!("../templates/web/admin/audit.html")),
    ("web/admin/sources.html", include_str!("../templates/web/admin/sources.html")),
    ("email/confirm.html", include_str!("../templates/email/confirm.html")),
    ("email/confirm.txt", include_str!("../templates/email/confirm.txt")),
    ("email/digest.html", include_str!("../templates/email/digest.html")),
    ("email/digest.txt", include_str!("../templates/email/digest.txt")),
];

const STRINGS: &str = include_str!("../templates/strings.json");

pub struct Templates {
    env: Environment<'static>,
    strings: Value,
}

impl Templates {
    /// The embedded templates, each replaced by `<dir>/<name>` when that file exists.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        for (name, embedded) in EMBEDDED {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read the template {}", path.display()))?,
                None => (*embedded).to_owned(),
            };
            env.add_template_owned(*name, source).with_context(|| format!("the template {name} does not parse"))?;
        }
        let strings = match dir.map(|d| d.join("strings.json")).filter(|p| p.is_file()) {
            Some(path) => std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?,
            None => STRINGS.to_owned(),
        };
        let strings: Value = serde_json::from_str(&strings).context("strings.json is not valid JSON")?;
        Ok(Templates { env, strings })
    }

    /// The translations for `lang`, as templates see them in `t`.
    pub fn strings(&self, lang: Language) -> &Value {
        &self.strings[lang.code()]
    }

    /// Renders `name` with `context` (a JSON object) plus `t` and `lang`.
    pub fn render(&self, name: &str, lang: Language, mut context: Value) -> anyhow::Result<String> {
        if let Some(map) = context.as_object_mut() {
            map.insert("t".into(), self.strings(lang).clone());
            map.insert("lang".into(), lang.code().into());
        }
        let template = self.env.get_template(name).with_context(|| format!("no template {name}"))?;
        template.render(context).with_context(|| format!("rendering {name}"))
    }

    /// How `{{ value }}` prints `value` in the template `name`: HTML-escaped in `.html`
    /// templates, as is in `.txt` ones; `None` for another escaping.
    pub fn printed(&self, name: &str, value: &str) -> Option<String> {
        match minijinja::default_auto_escape_callback(name) {
            AutoEscape::Html => Some(HtmlEscape(value).to_string()),
            AutoEscape::None => Some(value.to_owned()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_language_has_every_string() {
        let templates = Templates::load(None).unwrap();
        let vi = templates.strings(Language::Vi).as_object().unwrap();
        let en = templates.strings(Language::En).as_object().unwrap();
        let mut vi_keys: Vec<_> = vi.keys().collect();
        let mut en_keys: Vec<_> = en.keys().collect();
        vi_keys.sort();
        en_keys.sort();
        assert_eq!(vi_keys, en_keys);
    }

    #[test]
    fn a_folder_overrides_a_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email")).unwrap();
        std::fs::write(dir.path().join("email/confirm.txt"), "custom {{ confirm_url }}").unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let text = templates.render("email/confirm.txt", Language::Vi, json!({"confirm_url": "https://x/c"})).unwrap();
        assert_eq!(text, "custom https://x/c");
    }
}
