//! What an admin does to lists and subscribers, shared by the REST API, the web UI and
//! the CLI so each applies the same rules.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Audience;
use crate::config::Language;
use crate::domain::audience::{ListInput, SubscriberInput, SubscriberStatus};
use crate::domain::{FieldError, Slug};
use crate::store::StoreError;
use crate::store::audience::{MailingList, NewSubscriber};

/// Why a subscriber was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("no list with the slug {0}")]
    UnknownList(String),
    #[error("a subscriber with this address exists (id {0})")]
    Exists(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A subscriber just added; `confirm` says a confirmation email is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Added {
    pub id: i64,
    pub confirm: bool,
}

impl Audience {
    /// Parses a list as JSON with every rule of [`ListInput`], and checks that its
    /// categories exist. The outer error is the database's, the inner one the input's.
    pub async fn parse_list(&self, value: &Value) -> Result<Result<ListInput, FieldError>, StoreError> {
        let input = match ListInput::from_json(value, &self.list_defaults()) {
            Ok(input) => input,
            Err(e) => return Ok(Err(e)),
        };
        let known = self.store.categories().await?;
        if let Some(missing) = input.categories.iter().find(|path| !known.iter().any(|c| &c.path == *path)) {
            return Ok(Err(FieldError::new("categories", format!("there is no category {missing}"))));
        }
        Ok(Ok(input))
    }

    /// The lists named by slug, in the order given, or the first slug that names none.
    pub async fn lists_named(&self, slugs: &[Slug]) -> Result<Result<Vec<MailingList>, String>, StoreError> {
        let lists = self.store.lists().await?;
        let mut named = Vec::with_capacity(slugs.len());
        for slug in slugs {
            match lists.iter().find(|l| l.slug == slug.as_str()) {
                Some(list) => named.push(list.clone()),
                None => return Ok(Err(slug.to_string())),
            }
        }
        Ok(Ok(named))
    }

    /// Adds a subscriber to the lists it names. An unconfirmed subscriber to lists that
    /// none asks for double opt-in is active at once; otherwise `Added::confirm` says the
    /// caller is to send the confirmation.
    pub async fn add_subscriber(&self, input: &SubscriberInput, now: DateTime<Utc>) -> Result<Added, AddError> {
        let lists = self.lists_named(&input.lists).await?.map_err(AddError::UnknownList)?;
        if let Some(existing) = self.store.subscriber_by_email(&input.email).await? {
            return Err(AddError::Exists(existing.subscriber.id));
        }
        let needs_confirmation = lists.iter().any(|l| l.double_opt_in);
        let status = match input.status {
            SubscriberStatus::Unconfirmed if !lists.is_empty() && !needs_confirmation => SubscriberStatus::Active,
            status => status,
        };
        let language = input
            .language
            .or_else(|| lists.first().and_then(|l| Language::parse(&l.language)))
            .unwrap_or(self.language);
        let new = NewSubscriber {
            email: input.email.clone(),
            name: input.name.clone(),
            language,
            status,
            attributes: input.attributes.clone(),
            list_ids: lists.iter().map(|l| l.id).collect(),
        };
        let id = match self.store.create_subscriber(&new, now).await {
            Ok(id) => id,
            // Added by someone else since the lookup above.
            Err(StoreError::Conflict(_)) => match self.store.subscriber_by_email(&input.email).await? {
                Some(existing) => return Err(AddError::Exists(existing.subscriber.id)),
                None => return Err(StoreError::Conflict("a subscriber with this email exists".into()).into()),
            },
            Err(e) => return Err(e.into()),
        };
        Ok(Added { id, confirm: status == SubscriberStatus::Unconfirmed && needs_confirmation })
    }
}
