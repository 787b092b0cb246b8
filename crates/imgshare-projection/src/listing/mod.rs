//! `GET /v2/images` and `GET /v2/tasks` over the read models: [`images`] (the default list as
//! SQL, filters, sorting, markers, page rendering) and [`tasks`] (a caller's unexpired tasks).
//!
//! A caller's default image list is the union of three index ranges: images it owns, public
//! images, and images shared with it in the asked member status. Filters, the sort and the
//! marker then apply to that candidate set, so a page never scans the whole catalogue.
//! This SQL restates the visibility rule of `imgshare_core::access`; the property tests check
//! that the two agree.

use imgshare_core::Region;
use imgshare_sql::Value;

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

/// An owned parameter of a [`Statement`] being built, lent to the connection as a [`Value`]
/// when the statement runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Null,
    Int(i64),
    Text(String),
}

impl Param {
    pub(crate) fn as_value(&self) -> Value<'_> {
        match self {
            Param::Null => Value::Null,
            Param::Int(value) => Value::Int(*value),
            Param::Text(text) => Value::Text(text),
        }
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(value)
    }
}

impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(value: Option<T>) -> Self {
        value.map_or(Param::Null, Into::into)
    }
}

/// SQL text plus its positional parameters, built together so they cannot drift apart.
#[derive(Default)]
pub(crate) struct Statement {
    pub(crate) text: String,
    pub(crate) params: Vec<Param>,
}

impl Statement {
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(crate) fn bind(&mut self, value: impl Into<Param>) -> &mut Self {
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

    pub(crate) fn append(&mut self, other: &Statement) -> &mut Self {
        self.text.push_str(&other.text);
        self.params.extend(other.params.iter().cloned());
        self
    }

    /// The parameters, borrowed for one run of the statement.
    pub(crate) fn values(&self) -> Vec<Value<'_>> {
        self.params.iter().map(Param::as_value).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_lends_its_parameters_in_order() {
        let mut inner = Statement::default();
        inner.push(" AND b IN ").bind_list(&["x".to_owned(), "y".to_owned()]);
        let mut sql = Statement::default();
        sql.push("SELECT 1 WHERE a = ")
            .bind(7_i64)
            .push(" AND c IS ")
            .bind(None::<String>)
            .append(&inner);
        assert_eq!(sql.text, "SELECT 1 WHERE a = ? AND c IS ? AND b IN (?, ?)");
        assert_eq!(
            sql.values(),
            [
                Value::Int(7),
                Value::Null,
                Value::Text("x"),
                Value::Text("y")
            ]
        );
        assert_eq!(Param::from(Some("z".to_owned())).as_value(), Value::Text("z"));
    }
}
