//! Newtypes and rules of the domain. Nothing here does I/O: values are parsed at the edge
//! (HTTP, files) and everything past that point can trust them.

pub mod admin;
pub mod article;
pub mod audience;
pub mod category;
pub mod email;
pub mod json;
pub mod link;
pub mod schedule;
pub mod source;
pub mod text;
pub mod token;

pub use article::{ArticleInput, ArticleStatus, FieldError};
pub use category::{CategoryName, CategoryPath, Slug};
