//! A write transaction on any [`Sql`] connection: opened with [`Sql::begin_write`] (the
//! database's one write lock), rolled back if dropped before [`WriteTx::commit`], so every early
//! return (`?`) leaves the connection outside a transaction, as a dropped
//! `rusqlite::Transaction` did.

use std::ops::Deref;

use imgshare_sql::Sql;

use crate::error::{SqlResult as _, StoreError};

/// An open write transaction on `conn`; derefs to the connection for the statements inside it.
pub(crate) struct WriteTx<'c, C: Sql + ?Sized> {
    conn: &'c C,
    open: bool,
}

impl<'c, C: Sql + ?Sized> WriteTx<'c, C> {
    /// Takes the write lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the advisory lock), so the
    /// state read inside cannot change before the transaction's writes.
    pub(crate) fn begin(conn: &'c C) -> Result<Self, StoreError> {
        conn.begin_write().sql()?;
        Ok(WriteTx { conn, open: true })
    }

    /// Commits; on failure the drop rolls back whatever is left of the transaction.
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.conn.commit().sql()?;
        self.open = false;
        Ok(())
    }
}

impl<C: Sql + ?Sized> Deref for WriteTx<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.conn
    }
}

impl<C: Sql + ?Sized> Drop for WriteTx<'_, C> {
    fn drop(&mut self) {
        // SQLite ends a transaction itself on some errors (a full disk, an I/O error); a
        // rollback then would only fail. A rollback that fails otherwise cannot be reported
        // from a drop: the connection is then left in its transaction, and the next `begin`
        // fails instead of writing on top of it.
        if self.open && self.conn.in_transaction() {
            let _ = self.conn.rollback();
        }
    }
}
