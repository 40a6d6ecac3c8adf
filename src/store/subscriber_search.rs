//! How PostgreSQL finds admin search text (`search_subscribers`) at a million subscribers.
//!
//! A text matches a subscriber when the email key or the name key contains it. One
//! `LIKE '%text%'` over both columns left the planner a single choice for every text, and
//! each kind of text needs another: a whole address intersected the trigrams every
//! address shares (55–230 ms), two letters cannot use a trigram index at all (a scan of the
//! table, 0.5–1 s). So the text becomes a few *conditions*, each matching one way the text
//! can occur and each answerable by one index of migration `20261126130000`; the store
//! takes the newest page of each and merges them. With the statistics of that migration,
//! the planner walks ids newest first when a condition matches many rows (the page fills
//! at once) and uses its index when it matches few.
//!
//! Every condition is exact on its own (the rows it finds are the rows whose email or
//! name holds the text in that place) and together they cover every place, given what
//! [`EmailAddress`](crate::domain::email::EmailAddress) guarantees of an email key: ASCII,
//! one `@`, a domain of letters, digits, `-` and `.`.

use super::audience::{like_pattern, prefix_pattern};

/// A piece of SQL or a value bound in its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Part {
    Sql(&'static str),
    Bind(String),
}

/// The conditions of `WHERE` clauses (over `subscribers s`), one per way the text can
/// occur; a subscriber matches the text when it matches any of them.
pub(super) fn text_conditions(key: &str) -> Vec<Vec<Part>> {
    if key.chars().count() <= 2 || !key.chars().any(char::is_alphanumeric) {
        // Trigram indexes have nothing to look up in these texts.
        return vec![grams_condition(key)];
    }
    let mut conditions = Vec::new();
    if key.is_ascii() {
        match key.split_once('@') {
            Some((local, domain)) if !domain.contains('@') => conditions.extend(address_conditions(local, domain)),
            Some(_) => {}
            None => conditions.extend(inside_address_conditions(key)),
        }
    }
    conditions.push(vec![Part::Sql("s.name_key LIKE "), Part::Bind(like_pattern(key)), Part::Sql(" ESCAPE '\\'")]);
    conditions
}

/// `CASE WHEN <either key contains the text> THEN TRUE END`: the check itself, written so
/// the planner counts it as halving the rows rather than as the selectivity of its own
/// (its estimate of `LIKE '%…%'` on a column without a histogram hit is 1 in 10,000, which
/// would make every text look rare). In a walk by id it is evaluated before the costlier
/// condition it accompanies.
fn either_key_contains(key: &str) -> Vec<Part> {
    let pattern = like_pattern(key);
    vec![
        Part::Sql("CASE WHEN s.email_key LIKE "),
        Part::Bind(pattern.clone()),
        Part::Sql(" ESCAPE '\\' OR s.name_key LIKE "),
        Part::Bind(pattern),
        Part::Sql(" ESCAPE '\\' THEN TRUE END"),
    ]
}

/// Rows holding every character pair of the text (or, for one character, that character)
/// in either key, then the text itself. Pairs holding a line break are left out: the index
/// does not keep them.
fn grams_condition(key: &str) -> Vec<Part> {
    let chars: Vec<char> = key.chars().collect();
    let mut grams: Vec<String> = chars.windows(2).filter(|w| !w.contains(&'\n')).map(|w| w.iter().collect()).collect();
    if grams.is_empty() {
        grams = chars.iter().filter(|c| **c != '\n').map(char::to_string).collect();
    }
    grams.sort();
    grams.dedup();
    let mut parts = vec![Part::Sql("(subscriber_grams(s.email_key, s.name_key) COLLATE \"C\") @> ARRAY[")];
    for (i, gram) in grams.into_iter().enumerate() {
        if i > 0 {
            parts.push(Part::Sql(", "));
        }
        parts.push(Part::Bind(gram));
    }
    parts.push(Part::Sql("]::text[] AND "));
    parts.extend(either_key_contains(key));
    parts
}

const LOCAL: &str = "split_part(s.email_key, '@', 1)";
const DOMAIN: &str = "split_part(s.email_key, '@', 2)";

/// `local@domain` (either may be empty) inside an address: the address's local part ends
/// with `local` and its domain starts with `domain`. The domain is either exactly
/// `domain` (newest first along the `(domain, id)` index) or longer.
fn address_conditions(local: &str, domain: &str) -> Vec<Vec<Part>> {
    let ends_with_local = || {
        if local.is_empty() {
            return Vec::new();
        }
        let reversed: String = local.chars().rev().collect();
        vec![
            Part::Sql("reverse("),
            Part::Sql(LOCAL),
            Part::Sql(") LIKE "),
            Part::Bind(prefix_pattern(&reversed)),
            Part::Sql(" ESCAPE '\\' AND "),
        ]
    };
    if domain.is_empty() {
        let mut only = ends_with_local();
        only.push(Part::Sql("TRUE"));
        return vec![only];
    }
    let mut exact = ends_with_local();
    exact.extend([Part::Sql(DOMAIN), Part::Sql(" = "), Part::Bind(domain.to_owned())]);
    // Every ASCII string that starts with `domain` and is longer sorts (bytewise) after it
    // and before `domain` followed by U+0080; email keys are ASCII. The range is what the
    // planner estimates well, and the check beside it keeps the result exact anyway.
    let mut longer = ends_with_local();
    longer.extend([
        Part::Sql(DOMAIN),
        Part::Sql(" ~>~ "),
        Part::Bind(domain.to_owned()),
        Part::Sql(" AND "),
        Part::Sql(DOMAIN),
        Part::Sql(" ~<~ "),
        Part::Bind(format!("{domain}\u{80}")),
        Part::Sql(" AND CASE WHEN "),
        Part::Sql(DOMAIN),
        Part::Sql(" LIKE "),
        Part::Bind(prefix_pattern(domain)),
        Part::Sql(" ESCAPE '\\' THEN TRUE END"),
    ]);
    vec![exact, longer]
}

/// A text without `@` inside the local part or inside the domain. The trigram indexes look
/// up its longest dot-separated piece when that has six characters or more (`nongsan17`
/// of `nongsan17.com.vn`: the trigrams of `com` and `vn` are in nearly every row, and
/// intersecting them costs more than checking the few rows the piece finds).
fn inside_address_conditions(key: &str) -> Vec<Vec<Part>> {
    let piece = key.split('.').max_by_key(|p| p.len()).unwrap_or(key);
    let piece = if piece.len() >= 6 { piece } else { key };
    let mut conditions = Vec::new();
    for (column, possible) in [
        (LOCAL, true),
        // Domains hold only letters, digits, `-` and `.`.
        (DOMAIN, key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')),
    ] {
        if !possible {
            continue;
        }
        let mut condition = vec![Part::Sql(column), Part::Sql(" LIKE "), Part::Bind(like_pattern(piece))];
        condition.push(Part::Sql(" ESCAPE '\\'"));
        if piece != key {
            condition.extend([
                Part::Sql(" AND CASE WHEN "),
                Part::Sql(column),
                Part::Sql(" LIKE "),
                Part::Bind(like_pattern(key)),
                Part::Sql(" ESCAPE '\\' THEN TRUE END"),
            ]);
        }
        conditions.push(condition);
    }
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(parts: &[Part]) -> String {
        parts
            .iter()
            .map(|p| match p {
                Part::Sql(s) => (*s).to_owned(),
                Part::Bind(v) => format!("<{v}>"),
            })
            .collect()
    }

    fn all(key: &str) -> Vec<String> {
        text_conditions(key).iter().map(|c| sql(c)).collect()
    }

    #[test]
    fn short_texts_and_texts_without_letters_use_character_pairs() {
        assert_eq!(
            all("qz"),
            ["(subscriber_grams(s.email_key, s.name_key) COLLATE \"C\") @> ARRAY[<qz>]::text[] AND CASE WHEN \
                 s.email_key LIKE <%qz%> ESCAPE '\\' OR s.name_key LIKE <%qz%> ESCAPE '\\' THEN TRUE END"]
        );
        assert!(all("đ")[0].starts_with("(subscriber_grams(s.email_key, s.name_key) COLLATE \"C\") @> ARRAY[<đ>]"));
        assert!(all("%")[0].contains("ARRAY[<%>]::text[] AND CASE WHEN s.email_key LIKE <%\\%%>"));
        // Pairs, each once, in order.
        assert!(all("-.-.")[0].contains("ARRAY[<-.>, <.->]::text[]"));
    }

    #[test]
    fn an_address_is_a_reversed_local_suffix_and_a_domain_prefix() {
        let c = all("an.le@gmail.com");
        assert_eq!(c.len(), 3, "{c:#?}");
        assert_eq!(
            c[0],
            "reverse(split_part(s.email_key, '@', 1)) LIKE <el.na%> ESCAPE '\\' AND split_part(s.email_key, '@', 2) = <gmail.com>"
        );
        assert!(c[1].contains("~>~ <gmail.com> AND split_part(s.email_key, '@', 2) ~<~ <gmail.com\u{80}>"), "{}", c[1]);
        assert!(c[1].ends_with("LIKE <gmail.com%> ESCAPE '\\' THEN TRUE END"), "{}", c[1]);
        assert_eq!(c[2], "s.name_key LIKE <%an.le@gmail.com%> ESCAPE '\\'");
        // No local part: every local part; no domain: every domain.
        assert!(all("@vnu.edu.vn")[0].starts_with("split_part(s.email_key, '@', 2) = <vnu.edu.vn>"));
        assert_eq!(all("le_@")[0], "reverse(split_part(s.email_key, '@', 1)) LIKE <\\_el%> ESCAPE '\\' AND TRUE");
        // Two @ or a non-ASCII letter: only a name can hold it.
        assert_eq!(all("a@b@c"), ["s.name_key LIKE <%a@b@c%> ESCAPE '\\'"]);
        assert_eq!(all("lê@x"), ["s.name_key LIKE <%lê@x%> ESCAPE '\\'"]);
    }

    #[test]
    fn a_fragment_is_looked_up_in_local_parts_and_domains_by_its_longest_piece() {
        let c = all("nongsan17.com.vn");
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[1],
            "split_part(s.email_key, '@', 2) LIKE <%nongsan17%> ESCAPE '\\' AND CASE WHEN \
             split_part(s.email_key, '@', 2) LIKE <%nongsan17.com.vn%> ESCAPE '\\' THEN TRUE END"
        );
        assert_eq!(all("tuan.lam")[0], "split_part(s.email_key, '@', 1) LIKE <%tuan.lam%> ESCAPE '\\'");
        // `_` cannot be in a domain.
        let c = all("100%_");
        assert_eq!(c.len(), 2, "{c:#?}");
        assert_eq!(c[0], "split_part(s.email_key, '@', 1) LIKE <%100\\%\\_%> ESCAPE '\\'");
    }
}
