//! `GET /v2/images` and `GET /v2/tasks` over the read models: [`images`] (the default list as
//! SQL, filters, sorting, markers, page rendering) and [`tasks`] (a caller's unexpired tasks).
//!
//! A caller's default image list is the union of three index ranges: images it owns, public
//! images, and images shared with it in the asked member status. Filters, the sort and the
//! marker then apply to that candidate set, so a page never scans the whole catalogue.
//! This SQL restates the visibility rule of `imgshare_core::access`; the property tests check
//! that the two agree.

use imgshare_core::Region;
use rusqlite::types::Value as SqlValue;

pub mod images;
pub mod tasks;

pub use images::{
    explain_image_list, image_page, list_images, page_extras, render_rows, PageExtras,
};
pub use tasks::{list_tasks, task_page, visible_tasks};

/// Who is listing, and where.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// The caller's account.
    pub tenant_id: &'a str,
    /// The region of the request.
    pub region: &'a Region,
    /// A Glance admin or the provider: sees every image of the region.
    pub is_admin: bool,
}

/// SQL text plus its positional parameters, built together so they cannot drift apart.
#[derive(Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) params: Vec<SqlValue>,
}

impl Sql {
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(crate) fn bind(&mut self, value: impl Into<SqlValue>) -> &mut Self {
        self.text.push('?');
        self.params.push(value.into());
        self
    }

    pub(crate) fn bind_list(&mut self, values: &[String]) -> &mut Self {
        self.text.push('(');
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                self.text.push_str(", ");
            }
            self.bind(value.clone());
        }
        self.text.push(')');
        self
    }
}

impl Sql {
    pub(crate) fn append(&mut self, other: &Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.params.extend(other.params.iter().cloned());
        self
    }
}
