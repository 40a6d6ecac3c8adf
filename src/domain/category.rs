//! Slugs and category paths. A category is named in Vietnamese ("Kinh tế") and addressed by
//! its slug ("kinh-te"); a path of names ("Tin Tức" › "Kinh tế") becomes "tin-tuc/kinh-te".

use std::fmt;

use super::text::clean_line;

/// Longest slug kept; longer names are cut at a word boundary.
const MAX_SLUG_LEN: usize = 80;
/// Longest category or author name accepted.
pub const MAX_NAME_CHARS: usize = 200;
/// Deepest category path accepted.
pub const MAX_DEPTH: usize = 8;

/// A URL-safe identifier made of `a-z`, `0-9` and single dashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    /// Makes a slug from a human name: diacritics folded (đ → d), lowercase, dashes
    /// between words. `None` when the name has no letter or digit to make one from.
    pub fn from_name(name: &str) -> Option<Slug> {
        let ascii = deunicode::deunicode(name);
        let mut slug = String::with_capacity(ascii.len());
        for c in ascii.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        while slug.ends_with('-') {
            slug.pop();
        }
        if slug.len() > MAX_SLUG_LEN {
            let cut = slug[..MAX_SLUG_LEN].rfind('-').unwrap_or(MAX_SLUG_LEN);
            slug.truncate(cut);
        }
        (!slug.is_empty()).then_some(Slug(slug))
    }

    /// Accepts an existing slug as typed in a URL or the API.
    pub fn parse(s: &str) -> Option<Slug> {
        let valid = !s.is_empty()
            && s.len() <= MAX_SLUG_LEN
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--")
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| Slug(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A cleaned display name together with its slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryName {
    pub name: String,
    pub slug: Slug,
}

impl CategoryName {
    pub fn parse(raw: &str) -> Result<CategoryName, String> {
        let name = clean_line(raw);
        if name.is_empty() {
            return Err("a category name must not be empty".into());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!("a category name must be at most {MAX_NAME_CHARS} characters"));
        }
        let slug = Slug::from_name(&name)
            .ok_or_else(|| format!("category name {name:?} has no letter or digit to make a slug from"))?;
        Ok(CategoryName { name, slug })
    }
}

/// A path from a top-level category down to the article's category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryPath(Vec<CategoryName>);

impl CategoryPath {
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<CategoryPath, String> {
        let parts = names.into_iter().map(CategoryName::parse).collect::<Result<Vec<_>, _>>()?;
        if parts.is_empty() {
            return Err("a category path needs at least one name".into());
        }
        if parts.len() > MAX_DEPTH {
            return Err(format!("a category path may be at most {MAX_DEPTH} levels deep"));
        }
        Ok(CategoryPath(parts))
    }

    pub fn segments(&self) -> &[CategoryName] {
        &self.0
    }

    /// Slug path of the first `depth` levels, e.g. "tin-tuc/kinh-te".
    pub fn slug_path(&self, depth: usize) -> String {
        let mut path = String::new();
        for part in &self.0[..depth] {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part.slug.as_str());
        }
        path
    }

    /// Slug path of the whole path.
    pub fn full_slug_path(&self) -> String {
        self.slug_path(self.0.len())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|p| p.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_names_make_these_slugs() {
        let table = [
            ("Tin Tức", "tin-tuc"),
            ("Kinh tế", "kinh-te"),
            ("Đời sống", "doi-song"),
            ("Đà Nẵng", "da-nang"),
            ("Thể thao phong trào", "the-thao-phong-trao"),
            ("Giáo dục & Đào tạo", "giao-duc-dao-tao"),
            ("Y tế", "y-te"),
            ("Văn hóa", "van-hoa"),
            ("Văn hoá", "van-hoa"),
            ("Bắc Giang", "bac-giang"),
            ("Thời sự 24/7", "thoi-su-24-7"),
            ("  Hiệp  Hòa  ", "hiep-hoa"),
            ("Phương Nhung", "phuong-nhung"),
            ("Ẩm thực", "am-thuc"),
            ("Quốc tế", "quoc-te"),
            ("Nguyễn Văn Hùng", "nguyen-van-hung"),
        ];
        for (name, slug) in table {
            assert_eq!(Slug::from_name(name).unwrap().as_str(), slug, "slug of {name:?}");
        }
    }

    #[test]
    fn decomposed_names_make_the_same_slug() {
        let decomposed = "Kinh te\u{302}\u{301}";
        assert_eq!(CategoryName::parse(decomposed).unwrap().slug.as_str(), "kinh-te");
        assert_eq!(CategoryName::parse(decomposed).unwrap().name, "Kinh tế");
    }

    #[test]
    fn names_without_letters_are_rejected() {
        assert!(Slug::from_name("!!! ???").is_none());
        assert!(CategoryName::parse("   ").is_err());
        assert!(CategoryName::parse("---").is_err());
    }

    #[test]
    fn long_slugs_are_cut_at_a_word() {
        let name = "Hiệp Hòa sau hai năm tăng cường củng cố nền nếp sinh hoạt Đảng ở tất cả các chi bộ thôn và khu phố";
        let slug = Slug::from_name(name).unwrap();
        assert!(slug.as_str().len() <= MAX_SLUG_LEN);
        assert!(!slug.as_str().ends_with('-'));
        assert!(name.to_lowercase().len() > slug.as_str().len());
    }

    #[test]
    fn paths_join_slugs() {
        let path = CategoryPath::parse(["Tin Tức", "Kinh tế"]).unwrap();
        assert_eq!(path.full_slug_path(), "tin-tuc/kinh-te");
        assert_eq!(path.slug_path(1), "tin-tuc");
        assert!(CategoryPath::parse([]).is_err());
        assert!(CategoryPath::parse(["Tin Tức", ""]).is_err());
    }

    #[test]
    fn parse_accepts_only_slugs() {
        assert!(Slug::parse("kinh-te").is_some());
        for bad in ["", "Kinh-te", "kinh--te", "-kinh", "kinh te", "kinh/te"] {
            assert!(Slug::parse(bad).is_none(), "{bad:?}");
        }
    }
}
