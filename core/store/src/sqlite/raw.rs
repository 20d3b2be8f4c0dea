//! Reading through SQLite's own C API on a connection sqlx lends out
//! ([`sqlx::SqliteConnection::lock_handle`]), for the one path that reads
//! millions of rows in one go: the evidence export.
//!
//! sqlx copies every value of every row (`sqlite3_value_dup`) and hands
//! each row to the async side through a channel; for the export of a
//! year's evidence (4.5 million links, each with its row) that cost more
//! than SQLite's own work several times over. Here a row's texts are
//! borrowed from SQLite until the next step, and nothing crosses a thread.
//!
//! Only what the export needs: prepare, bind an integer or a text, step,
//! read an integer or a text. The statements run in the transaction the
//! connection is in, so they read the same snapshot as the sqlx queries
//! around them. While a [`Db`] exists the connection's worker thread makes
//! no call on the handle (that is what `lock_handle` guarantees), and every
//! call here is synchronous, so hold it across no `.await`.

use crate::StoreError;
use libsqlite3_sys as ffi;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;

fn sqlite_error(db: NonNull<ffi::sqlite3>, code: c_int, sql: &str) -> StoreError {
    // SAFETY: the handle is open while the `Db` it came from lives;
    // sqlite3_errmsg always returns a NUL-terminated string it owns, which
    // is copied before any other call on the handle.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) }
        .to_string_lossy()
        .into_owned();
    let first_line = sql.lines().next().unwrap_or("").trim();
    StoreError::Database(sqlx::Error::Protocol(format!(
        "SQLite error {code} ({message}) in `{first_line} ...`"
    )))
}

/// A database handle borrowed from sqlx for as long as `'h`.
pub(crate) struct Db<'h> {
    db: NonNull<ffi::sqlite3>,
    _handle: PhantomData<&'h mut ()>,
}

impl<'h> Db<'h> {
    pub(crate) fn new(handle: &'h mut sqlx::sqlite::LockedSqliteHandle<'_>) -> Db<'h> {
        Db {
            db: handle.as_raw_handle(),
            _handle: PhantomData,
        }
    }

    pub(crate) fn prepare(&self, sql: &str) -> Result<Statement<'_>, StoreError> {
        let len = c_int::try_from(sql.len()).expect("a statement shorter than 2 GB");
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `sql` is valid for `len` bytes (no NUL needed when the
        // length is given); `stmt` is written by SQLite.
        let code = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if code != ffi::SQLITE_OK {
            if !stmt.is_null() {
                // SAFETY: a statement SQLite returned, finalized once.
                unsafe { ffi::sqlite3_finalize(stmt) };
            }
            return Err(sqlite_error(self.db, code, sql));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Protocol(format!(
                "SQLite found no statement in `{sql}`"
            )))
        })?;
        Ok(Statement {
            stmt,
            db: self.db,
            sql: sql.to_owned(),
            _db: PhantomData,
        })
    }
}

/// A prepared statement; finalized when dropped.
pub(crate) struct Statement<'d> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    sql: String,
    _db: PhantomData<&'d ()>,
}

impl Statement<'_> {
    fn check(&self, code: c_int) -> Result<(), StoreError> {
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(sqlite_error(self.db, code, &self.sql))
        }
    }

    /// Binds parameter `index` (from 1) to an integer.
    pub(crate) fn bind_i64(&mut self, index: c_int, value: i64) -> Result<(), StoreError> {
        // SAFETY: the statement is live; SQLite checks the index.
        let code = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) };
        self.check(code)
    }

    /// Binds parameter `index` (from 1) to a text, which SQLite copies.
    pub(crate) fn bind_text(&mut self, index: c_int, value: &str) -> Result<(), StoreError> {
        let len = c_int::try_from(value.len()).expect("a text shorter than 2 GB");
        // SAFETY: `value` is valid for `len` bytes; SQLITE_TRANSIENT makes
        // SQLite copy it before returning.
        let code = unsafe {
            ffi::sqlite3_bind_text(
                self.stmt.as_ptr(),
                index,
                value.as_ptr().cast(),
                len,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        self.check(code)
    }

    /// Makes the statement ready to run again (its bindings are kept).
    pub(crate) fn reset(&mut self) {
        // SAFETY: the statement is live. An error from the last step was
        // already returned by `step`.
        unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) };
    }

    /// The next row: `true` when there is one to read, `false` when done.
    pub(crate) fn step(&mut self) -> Result<bool, StoreError> {
        // SAFETY: the statement is live; texts borrowed from the last row
        // cannot outlive this call (they borrow `self`, this takes `&mut`).
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            code => Err(sqlite_error(self.db, code, &self.sql)),
        }
    }

    /// Column `index` (from 0) of the current row as an integer.
    pub(crate) fn int(&self, index: c_int) -> i64 {
        // SAFETY: called on the row `step` returned; SQLite converts and
        // checks the index (0 when out of range).
        unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), index) }
    }

    /// Column `index` (from 0) of the current row as text (an integer in
    /// decimal, as `json_array` and `CAST(... AS TEXT)` write it); `None`
    /// for NULL.
    pub(crate) fn text(&self, index: c_int) -> Result<Option<&str>, StoreError> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: called on the row `step` returned. The pointer SQLite
        // gives stays valid, for `bytes` bytes, until the next step, reset
        // or finalize, each of which needs `&mut self`, which the returned
        // borrow of `self` prevents.
        let bytes = unsafe {
            if ffi::sqlite3_column_type(stmt, index) == ffi::SQLITE_NULL {
                return Ok(None);
            }
            let text = ffi::sqlite3_column_text(stmt, index);
            let len = ffi::sqlite3_column_bytes(stmt, index);
            if text.is_null() || len <= 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(text, len as usize)
            }
        };
        std::str::from_utf8(bytes).map(Some).map_err(|e| {
            StoreError::Database(sqlx::Error::Decode(
                format!("column {index} of `{}` is not UTF-8: {e}", self.sql).into(),
            ))
        })
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: finalized once, here.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}
