//! PostgreSQL implementation of [`Store`]: learning item versions and the
//! directory's reads. Directory imports live in `import`.

use super::PgStore;
use crate::rows::{ChampionTeamRow, group_champions, parse_day, parse_time, time_text};
use crate::{ImportSummary, Store, StoreError, StoredItem, StoredPerson};
use cascade_model::content::{LearningItem, Status, Taxonomy, Version};
use cascade_model::directory::{Agency, Champion, ChannelIdentity, DirectoryFile, Person, Team};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::path::Path;

/// An `items` row, its day and time as the text the store keeps.
#[derive(sqlx::FromRow)]
struct ItemRow {
    id: String,
    version: String,
    kind: String,
    title: String,
    status: String,
    embargoed_until: Option<String>,
    source: String,
    first_seen_at: String,
}

const ITEM_COLUMNS: &str =
    "id, version, kind, title, status, embargoed_until, source, first_seen_at";

fn not_a(what: &str, text: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(
        format!("{what} {text:?} is not readable").into(),
    ))
}

/// A time column kept as text, read back.
pub(super) fn time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_time(text).ok_or_else(|| not_a("the time", text))
}

impl TryFrom<ItemRow> for StoredItem {
    type Error = StoreError;

    fn try_from(row: ItemRow) -> Result<StoredItem, StoreError> {
        let embargoed_until = match row.embargoed_until {
            Some(day) => Some(parse_day(&day).ok_or_else(|| not_a("the day", &day))?),
            None => None,
        };
        Ok(StoredItem {
            first_seen_at: time(&row.first_seen_at)?,
            id: row.id,
            version: Version(row.version),
            kind: row.kind,
            title: row.title,
            status: row.status,
            embargoed_until,
            source: row.source,
        })
    }
}

/// A `people` row with the person's roles folded in (`;`-separated).
#[derive(sqlx::FromRow)]
struct PersonRow {
    id: String,
    display_name: String,
    email: String,
    agency_id: String,
    team_id: String,
    manager_id: Option<String>,
    time_zone: Option<String>,
    mobile: Option<String>,
    works: Option<String>,
    absent_until: Option<String>,
    active: i64,
    updated_at: String,
    roles: Option<String>,
}

const PERSON_COLUMNS: &str = "p.id, p.display_name, p.email, p.agency_id, p.team_id, p.manager_id,
    p.time_zone, p.mobile, p.works, p.absent_until, p.active, p.updated_at,
    (SELECT string_agg(r.role, ';' ORDER BY r.role COLLATE \"C\") FROM person_roles r
     WHERE r.person_id = p.id) AS roles";

impl TryFrom<PersonRow> for StoredPerson {
    type Error = StoreError;

    fn try_from(row: PersonRow) -> Result<StoredPerson, StoreError> {
        let mut roles: Vec<String> = row
            .roles
            .unwrap_or_default()
            .split(';')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        roles.sort_unstable();
        Ok(StoredPerson {
            updated_at: time(&row.updated_at)?,
            person: Person {
                id: row.id,
                display_name: row.display_name,
                email: row.email,
                agency_id: row.agency_id,
                team_id: row.team_id,
                roles,
                manager_id: row.manager_id,
                time_zone: row.time_zone,
                mobile: row.mobile,
                works: row.works,
                absent_until: row.absent_until.as_deref().and_then(parse_day),
            },
            active: row.active != 0,
        })
    }
}

/// People read by one statement when the whole directory is loaded.
const PEOPLE_PER_READ: i64 = 50_000;

impl PgStore {
    /// Every person (or every active one), read `per_read` at a time, in
    /// id order (by bytes, as SQLite orders text).
    pub(crate) async fn people_in_reads(
        &self,
        active_only: bool,
        per_read: i64,
    ) -> Result<Vec<StoredPerson>, StoreError> {
        let mut people: Vec<StoredPerson> = Vec::new();
        let mut after = String::new();
        loop {
            let rows: Vec<PersonRow> = sqlx::query_as(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p
                 WHERE (p.active <> 0 OR NOT $1) AND p.id > $2
                 ORDER BY p.id LIMIT $3"
            ))
            .bind(active_only)
            .bind(&after)
            .bind(per_read)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= per_read;
            for row in rows {
                people.push(StoredPerson::try_from(row)?);
            }
            if !full {
                break;
            }
        }
        // Read in the database's order (its primary key's, which a
        // database made as the README says orders as bytes); by bytes
        // whatever it is.
        if !people.is_sorted_by(|a, b| a.person.id <= b.person.id) {
            people.sort_unstable_by(|a, b| a.person.id.cmp(&b.person.id));
        }
        Ok(people)
    }
}

impl Store for PgStore {
    async fn save_item(&self, item: &LearningItem, source: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_item(&mut conn, item, source, Utc::now()).await
    }

    async fn item_versions(&self, id: &str) -> Result<Vec<StoredItem>, StoreError> {
        let rows: Vec<ItemRow> = sqlx::query_as(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE id = $1 ORDER BY seq"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StoredItem::try_from).collect()
    }

    async fn latest_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError> {
        let row: Option<ItemRow> = sqlx::query_as(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE id = $1 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(StoredItem::try_from).transpose()
    }

    async fn import(
        &self,
        file: &DirectoryFile,
        path: &Path,
        taxonomy: &Taxonomy,
    ) -> Result<ImportSummary, StoreError> {
        super::import::import(&self.pool, file, path, taxonomy).await
    }

    async fn import_directory(
        &self,
        files: &[(&Path, &DirectoryFile)],
        taxonomy: &Taxonomy,
        audiences: &[crate::RunningAudience],
        now: i64,
        dry_run: bool,
    ) -> Result<crate::DirectoryImport, StoreError> {
        super::import::import_directory(&self.pool, files, taxonomy, audiences, now, dry_run).await
    }

    async fn people(&self, active_only: bool) -> Result<Vec<StoredPerson>, StoreError> {
        self.people_in_reads(active_only, PEOPLE_PER_READ).await
    }

    async fn person(&self, id: &str) -> Result<Option<StoredPerson>, StoreError> {
        let row: Option<PersonRow> = sqlx::query_as(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p WHERE p.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(StoredPerson::try_from).transpose()
    }

    async fn agencies(&self) -> Result<Vec<Agency>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, name, kind FROM agencies ORDER BY id COLLATE \"C\"")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, agency_id, name FROM teams ORDER BY id COLLATE \"C\"")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn champions(&self) -> Result<Vec<Champion>, StoreError> {
        let rows: Vec<ChampionTeamRow> = sqlx::query_as(
            "SELECT c.person_id, c.theme, t.team_id
             FROM champions c JOIN champion_teams t USING (person_id, theme)
             WHERE c.active <> 0
             ORDER BY c.person_id COLLATE \"C\", c.theme COLLATE \"C\", t.team_id COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(group_champions(rows))
    }

    async fn identities(&self, person_id: &str) -> Result<Vec<ChannelIdentity>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT person_id, channel, address FROM channel_identities
             WHERE person_id = $1 ORDER BY channel COLLATE \"C\", address COLLATE \"C\"",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Keeps one item version through `conn`; true when the version is new.
pub(crate) async fn insert_item(
    conn: &mut PgConnection,
    item: &LearningItem,
    source: &str,
    seen_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let embargoed_until = match item.status {
        Status::Embargoed(until) => Some(until.format("%Y-%m-%d").to_string()),
        _ => None,
    };
    let result = sqlx::query(
        "INSERT INTO items (id, version, kind, title, status, embargoed_until, source, first_seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id, version) DO NOTHING",
    )
    .bind(&item.id)
    .bind(&item.version.0)
    .bind(item.kind_name())
    .bind(&item.title)
    .bind(item.status.name())
    .bind(embargoed_until)
    .bind(source)
    .bind(time_text(seen_at))
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}
