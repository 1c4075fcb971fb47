//! Dynamic SQL for both backends: `sqlx::QueryBuilder<Any>` writes `?` placeholders,
//! which PostgreSQL rejects, so filters are assembled here with numbered `$N` ones
//! (SQLite reads `$N` as the N-th argument too).

use sqlx::AnyConnection;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Arguments, Encode, Executor, FromRow, Type};

use crate::store::db::Db;

/// Up to `limit` rows of one org after row id `after`, in creation order: the keyset
/// page every org-scoped listing uses. `select` is `SELECT … FROM <table>` with no
/// WHERE clause.
pub async fn org_page<T>(
    db: &Db,
    select: &str,
    org_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    sqlx::query_as(&format!(
        "{select} WHERE org_id = $1 AND rowid > $2 ORDER BY rowid LIMIT $3"
    ))
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A statement built from fragments, each bound value numbered in order.
pub struct Sql {
    text: String,
    args: AnyArguments<'static>,
    count: usize,
    /// Placeholders written `?` instead of `$N` (SQLite only).
    anonymous: bool,
}

impl Sql {
    /// Starts a statement with `text`.
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            args: AnyArguments::default(),
            count: 0,
            anonymous: false,
        }
    }

    /// Like [`Sql::new`] for a statement run on `conn`: on SQLite its placeholders
    /// are anonymous `?`. sqlx binds each argument by asking SQLite its parameter's
    /// name, which for a numbered one walks the statement's list of them, so binding
    /// hundreds of `$N` costs the square of their number; a `?` has no name to find.
    pub fn for_connection(conn: &AnyConnection, text: impl Into<String>) -> Sql {
        Sql {
            anonymous: conn.backend_name() == "SQLite",
            ..Sql::new(text)
        }
    }

    /// Appends raw SQL (never user input).
    pub fn push(&mut self, fragment: &str) -> &mut Sql {
        self.text.push_str(fragment);
        self
    }

    /// Appends a placeholder for `value` and binds it.
    pub fn bind<T>(&mut self, value: T) -> &mut Sql
    where
        T: 'static + Send + Encode<'static, Any> + Type<Any>,
    {
        self.count += 1;
        if self.anonymous {
            self.text.push('?');
        } else {
            self.text.push('$');
            self.text.push_str(&self.count.to_string());
        }
        // Encoding into AnyArguments fails only for types Any cannot carry, which
        // the `Type<Any>` bound already excludes.
        let _ = self.args.add(value);
        self
    }

    /// The SQL text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Runs the statement and returns every row.
    pub async fn fetch_all<'e, E>(self, executor: E) -> Result<Vec<AnyRow>, sqlx::Error>
    where
        E: Executor<'e, Database = Any>,
    {
        sqlx::query_with(&self.text, self.args)
            .fetch_all(executor)
            .await
    }

    /// Runs the statement and returns the rows affected.
    pub async fn execute<'e, E>(self, executor: E) -> Result<u64, sqlx::Error>
    where
        E: Executor<'e, Database = Any>,
    {
        Ok(sqlx::query_with(&self.text, self.args)
            .execute(executor)
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::Sql;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut q = Sql::new("SELECT * FROM t WHERE a = ");
        q.bind("x".to_string()).push(" AND b > ").bind(3_i64);
        assert_eq!(q.text(), "SELECT * FROM t WHERE a = $1 AND b > $2");
    }

    #[tokio::test]
    async fn on_sqlite_placeholders_are_anonymous_and_bind_in_order() {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let mut q = Sql::for_connection(&conn, "SELECT ");
        for i in 0..400_i64 {
            if i > 0 {
                q.push(" + ");
            }
            q.bind(i * i);
        }
        q.push(", ").bind("last".to_string());
        assert!(q.text().starts_with("SELECT ? + ? + ?"), "{}", q.text());
        let rows = q.fetch_all(&mut conn).await.unwrap();
        let sum: i64 = rows[0].get(0);
        let last: String = rows[0].get(1);
        assert_eq!(
            (sum, last.as_str()),
            ((0..400_i64).map(|i| i * i).sum(), "last")
        );
    }
}
