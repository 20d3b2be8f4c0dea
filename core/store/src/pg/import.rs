//! Importing directory files into PostgreSQL: validate against the stored
//! directory, then upsert every row in a single transaction, so a file is
//! either wholly imported or not at all. Imports take one advisory lock
//! for their transaction, so two processes importing at once run one
//! after the other (each compares against what the other wrote).

use crate::rows::{ChampionTeamRow, parse_day, time_text};
use crate::{DirectoryImport, ImportSummary, RunningAudience, StoreError, person_hash};
use cascade_model::content::Taxonomy;
use cascade_model::directory::{
    Against, Agency, Champion, DirectoryError, DirectoryFile, EMAIL_CHANNEL, KnownIds,
    MOBILE_CHANNEL, Person, Row, Team, check_references, find_duplicates,
};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The advisory lock (`pg_advisory_xact_lock`) every directory import
/// holds for its transaction.
const IMPORT_LOCK: i64 = 0x0063_6173_6361_6469; // "cascadi"

pub(super) async fn import(
    pool: &PgPool,
    file: &DirectoryFile,
    path: &Path,
    taxonomy: &Taxonomy,
) -> Result<ImportSummary, StoreError> {
    let imported = import_directory(
        pool,
        &[(path, file)],
        taxonomy,
        &[],
        Utc::now().timestamp_millis(),
        false,
    )
    .await?;
    Ok(imported.files.into_iter().next().unwrap_or_default())
}

pub(super) async fn import_directory(
    pool: &PgPool,
    files: &[(&Path, &DirectoryFile)],
    taxonomy: &Taxonomy,
    audiences: &[RunningAudience],
    now: i64,
    dry_run: bool,
) -> Result<DirectoryImport, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(IMPORT_LOCK)
        .execute(&mut *tx)
        .await?;
    let mut imported = DirectoryImport::default();
    let mut new_people = Vec::new();
    for (path, file) in files {
        let (summary, added) = import_file(&mut tx, file, path, taxonomy).await?;
        imported.files.push(summary);
        new_people.extend(added);
    }
    // The members' stop, in the import's own transaction: no crash can
    // leave a leaver marked inactive but still chased.
    let updated = super::membership::update(&mut tx, audiences, now, &new_people).await?;
    imported.rollouts = updated.changes;
    imported.cancelled_messages = updated.cancelled;
    imported.induction = updated.induction;
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(imported)
}

/// Imports one file; returns what it did and, for a people file, the ids
/// of the people new in it (never listed before).
async fn import_file(
    tx: &mut PgConnection,
    file: &DirectoryFile,
    path: &Path,
    taxonomy: &Taxonomy,
) -> Result<(ImportSummary, Vec<String>), StoreError> {
    let known = known_ids(&mut *tx).await?;
    let mut errors = find_duplicates(file, path);
    errors.extend(check_references(
        file,
        path,
        &known,
        taxonomy,
        Against::Store,
    ));
    // An erased person's row is refused as erased, not also as unknown.
    let erased = erased_rows(&mut *tx, file, path).await?;
    errors.retain(|e| !erased.iter().any(|x| x.line == e.line));
    errors.extend(erased);
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(StoreError::Rejected(errors));
    }
    match file {
        DirectoryFile::Agencies(rows) => Ok((agencies(tx, rows).await?, Vec::new())),
        DirectoryFile::Teams(rows) => Ok((teams(tx, rows).await?, Vec::new())),
        DirectoryFile::People(rows) => people(tx, rows).await,
        DirectoryFile::Champions(rows) => Ok((champions(tx, rows).await?, Vec::new())),
    }
}

/// Rows of people or champions who were erased: an erased person must not
/// come back from a directory file that still lists them.
async fn erased_rows(
    conn: &mut PgConnection,
    file: &DirectoryFile,
    path: &Path,
) -> Result<Vec<DirectoryError>, StoreError> {
    let rows: Vec<(usize, &str)> = match file {
        DirectoryFile::People(rows) => rows.iter().map(|r| (r.line, r.value.id.as_str())).collect(),
        DirectoryFile::Champions(rows) => rows
            .iter()
            .map(|r| (r.line, r.value.person_id.as_str()))
            .collect(),
        _ => return Ok(Vec::new()),
    };
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM erasures)")
        .fetch_one(&mut *conn)
        .await?;
    if !any {
        return Ok(Vec::new());
    }
    let hashes: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT person_hash, at FROM erasures")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    Ok(rows
        .into_iter()
        .filter_map(|(line, id)| {
            let at = hashes.get(&person_hash(id))?;
            let day = DateTime::from_timestamp_millis(*at)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            Some(DirectoryError {
                path: path.to_owned(),
                line: Some(line),
                column: Some("person_id".to_owned()),
                message: format!(
                    "\"{id}\" was erased on {day} (UK GDPR erasure) and cannot be imported again"
                ),
                help: Some(format!(
                    "delete line {line} from {}; their details must not come back",
                    path.display()
                )),
            })
        })
        .collect())
}

async fn known_ids(conn: &mut PgConnection) -> Result<KnownIds, StoreError> {
    Ok(KnownIds {
        agencies: sqlx::query_scalar("SELECT id FROM agencies")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect(),
        teams: sqlx::query_as::<_, (String, String)>("SELECT id, agency_id FROM teams")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect(),
        people: sqlx::query_scalar("SELECT id FROM people")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect(),
        rejected: HashSet::new(),
    })
}

async fn agencies(
    conn: &mut PgConnection,
    rows: &[Row<Agency>],
) -> Result<ImportSummary, StoreError> {
    let stored: HashMap<String, Agency> =
        sqlx::query_as::<_, Agency>("SELECT id, name, kind FROM agencies")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|agency| (agency.id.clone(), agency))
            .collect();
    let mut summary = ImportSummary::default();
    for Row { value: agency, .. } in rows {
        if stored.get(&agency.id) == Some(agency) {
            summary.unchanged += 1;
            continue;
        }
        count_write(&mut summary, stored.contains_key(&agency.id));
        sqlx::query(
            "INSERT INTO agencies (id, name, kind, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, kind = excluded.kind, updated_at = excluded.updated_at",
        )
        .bind(&agency.id)
        .bind(&agency.name)
        .bind(&agency.kind)
        .bind(time_text(Utc::now()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(summary)
}

async fn teams(conn: &mut PgConnection, rows: &[Row<Team>]) -> Result<ImportSummary, StoreError> {
    let stored: HashMap<String, Team> =
        sqlx::query_as::<_, Team>("SELECT id, agency_id, name FROM teams")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|team| (team.id.clone(), team))
            .collect();
    let mut summary = ImportSummary::default();
    for Row { value: team, .. } in rows {
        if stored.get(&team.id) == Some(team) {
            summary.unchanged += 1;
            continue;
        }
        count_write(&mut summary, stored.contains_key(&team.id));
        sqlx::query(
            "INSERT INTO teams (id, agency_id, name, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET
                agency_id = excluded.agency_id, name = excluded.name,
                updated_at = excluded.updated_at",
        )
        .bind(&team.id)
        .bind(&team.agency_id)
        .bind(&team.name)
        .bind(time_text(Utc::now()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(summary)
}

/// Rows per multi-row statement: well under PostgreSQL's 65,535 bound
/// parameters at eleven a row.
const CHUNK: usize = 2_000;

/// People are upserted, their roles replaced and their email kept as their
/// email identity; people the file no longer lists are marked inactive.
/// Changed rows are written a chunk at a time with statements binding
/// arrays (`unnest`).
async fn people(
    conn: &mut PgConnection,
    rows: &[Row<Person>],
) -> Result<(ImportSummary, Vec<String>), StoreError> {
    let stored: HashMap<String, (Person, bool)> = stored_people(conn).await?;
    let mut summary = ImportSummary::default();
    let now = time_text(Utc::now());
    let mut changed: Vec<(&Person, Option<&Person>)> = Vec::new();
    for Row { value: person, .. } in rows {
        let before = stored.get(&person.id);
        if before == Some(&(person.clone(), true)) {
            summary.unchanged += 1;
            continue;
        }
        count_write(&mut summary, before.is_some());
        changed.push((person, before.map(|(old, _)| old)));
    }

    for chunk in changed.chunks(CHUNK) {
        upsert_people(conn, chunk, &now).await?;
        replace_roles(conn, chunk).await?;
        // Only the identity made from the old directory email (or mobile)
        // goes; addresses a person linked some other way stay theirs.
        let old: Vec<(&str, &str, &str)> = chunk
            .iter()
            .filter_map(|(person, before)| before.map(|old| (*person, old)))
            .flat_map(|(person, old)| {
                let email = (old.email != person.email).then_some((
                    person.id.as_str(),
                    EMAIL_CHANNEL,
                    old.email.as_str(),
                ));
                let mobile = old
                    .mobile
                    .as_deref()
                    .filter(|m| person.mobile.as_deref() != Some(*m))
                    .map(|m| (person.id.as_str(), MOBILE_CHANNEL, m));
                email.into_iter().chain(mobile)
            })
            .collect();
        if !old.is_empty() {
            let (ids, channels, addresses) = columns3(&old);
            sqlx::query(
                "DELETE FROM channel_identities
                 WHERE (person_id, channel, address) IN
                       (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))",
            )
            .bind(ids)
            .bind(channels)
            .bind(addresses)
            .execute(&mut *conn)
            .await?;
        }
        // The people file is the authority on who owns a directory email or
        // mobile, so an address passed on from someone who left moves to its
        // new owner.
        let identities: Vec<(&str, &str, &str)> = chunk
            .iter()
            .flat_map(|(person, _)| {
                let mobile = person
                    .mobile
                    .as_deref()
                    .map(|m| (person.id.as_str(), MOBILE_CHANNEL, m));
                mobile.into_iter().chain(std::iter::once((
                    person.id.as_str(),
                    EMAIL_CHANNEL,
                    person.email.as_str(),
                )))
            })
            .collect();
        // One row per (channel, address): ON CONFLICT cannot touch a row
        // twice in one statement, and in SQLite the later row won.
        let mut last: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, (_, channel, address)) in identities.iter().enumerate() {
            last.insert((*channel, *address), i);
        }
        let identities: Vec<(&str, &str, &str)> = identities
            .iter()
            .enumerate()
            .filter(|(i, (_, channel, address))| last.get(&(*channel, *address)) == Some(i))
            .map(|(_, row)| *row)
            .collect();
        let (ids, channels, addresses) = columns3(&identities);
        sqlx::query(
            "INSERT INTO channel_identities (person_id, channel, address, linked_at)
             SELECT i.person_id, i.channel, i.address, $4
             FROM unnest($1::text[], $2::text[], $3::text[]) AS i (person_id, channel, address)
             ON CONFLICT (channel, address) DO UPDATE SET
                person_id = excluded.person_id, linked_at = excluded.linked_at
             WHERE channel_identities.person_id <> excluded.person_id",
        )
        .bind(ids)
        .bind(channels)
        .bind(addresses)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }

    let listed: HashSet<&str> = rows.iter().map(|r| r.value.id.as_str()).collect();
    let leavers: Vec<&str> = stored
        .iter()
        .filter(|(id, (_, active))| *active && !listed.contains(id.as_str()))
        .map(|(id, _)| id.as_str())
        .collect();
    for chunk in leavers.chunks(CHUNK * 10) {
        sqlx::query("UPDATE people SET active = 0, updated_at = $1 WHERE id = ANY($2)")
            .bind(&now)
            .bind(chunk)
            .execute(&mut *conn)
            .await?;
    }
    if !leavers.is_empty() {
        // Who is active is read by what the directory's report stamp keeps
        // (a champion who left covers no team), and no trigger sees it.
        sqlx::query("UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = ''")
            .execute(&mut *conn)
            .await?;
    }
    summary.deactivated += leavers.len();
    let added = changed
        .iter()
        .filter(|(_, before)| before.is_none())
        .map(|(person, _)| person.id.clone())
        .collect();
    Ok((summary, added))
}

/// Three columns of text, to bind as arrays.
fn columns3<'a>(
    rows: &[(&'a str, &'a str, &'a str)],
) -> (Vec<&'a str>, Vec<&'a str>, Vec<&'a str>) {
    let mut a = Vec::with_capacity(rows.len());
    let mut b = Vec::with_capacity(rows.len());
    let mut c = Vec::with_capacity(rows.len());
    for (x, y, z) in rows {
        a.push(*x);
        b.push(*y);
        c.push(*z);
    }
    (a, b, c)
}

async fn upsert_people(
    conn: &mut PgConnection,
    chunk: &[(&Person, Option<&Person>)],
    now: &str,
) -> Result<(), StoreError> {
    let mut query = QueryBuilder::<Postgres>::new(
        "INSERT INTO people
            (id, display_name, email, agency_id, team_id, manager_id, time_zone, mobile,
             works, absent_until, active, updated_at) ",
    );
    query.push_values(chunk, |mut row, (person, _)| {
        row.push_bind(&person.id)
            .push_bind(&person.display_name)
            .push_bind(&person.email)
            .push_bind(&person.agency_id)
            .push_bind(&person.team_id)
            .push_bind(&person.manager_id)
            .push_bind(&person.time_zone)
            .push_bind(&person.mobile)
            .push_bind(&person.works)
            .push_bind(
                person
                    .absent_until
                    .map(|d| d.format("%Y-%m-%d").to_string()),
            )
            .push("1")
            .push_bind(now);
    });
    query.push(
        " ON CONFLICT (id) DO UPDATE SET
            display_name = excluded.display_name, email = excluded.email,
            agency_id = excluded.agency_id, team_id = excluded.team_id,
            manager_id = excluded.manager_id, time_zone = excluded.time_zone,
            mobile = excluded.mobile, works = excluded.works,
            absent_until = excluded.absent_until, active = 1, updated_at = excluded.updated_at",
    );
    query.build().execute(&mut *conn).await?;
    Ok(())
}

async fn replace_roles(
    conn: &mut PgConnection,
    chunk: &[(&Person, Option<&Person>)],
) -> Result<(), StoreError> {
    let ids: Vec<&str> = chunk.iter().map(|(p, _)| p.id.as_str()).collect();
    sqlx::query("DELETE FROM person_roles WHERE person_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    let mut people: Vec<&str> = Vec::new();
    let mut roles: Vec<&str> = Vec::new();
    for (person, _) in chunk {
        for role in &person.roles {
            people.push(&person.id);
            roles.push(role);
        }
    }
    if !roles.is_empty() {
        sqlx::query(
            "INSERT INTO person_roles (person_id, role)
             SELECT * FROM unnest($1::text[], $2::text[])",
        )
        .bind(&people)
        .bind(&roles)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn stored_people(
    conn: &mut PgConnection,
) -> Result<HashMap<String, (Person, bool)>, StoreError> {
    let mut roles: HashMap<String, Vec<String>> = HashMap::new();
    let role_rows: Vec<(String, String)> =
        sqlx::query_as("SELECT person_id, role FROM person_roles")
            .fetch_all(&mut *conn)
            .await?;
    for (person_id, role) in role_rows {
        roles.entry(person_id).or_default().push(role);
    }
    #[derive(sqlx::FromRow)]
    struct Stored {
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
    }
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT id, display_name, email, agency_id, team_id, manager_id, time_zone, mobile, works,
                absent_until, active
         FROM people",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut roles = roles.remove(&row.id).unwrap_or_default();
            // As SQLite reads them: ordered by bytes.
            roles.sort_unstable();
            let person = Person {
                roles,
                id: row.id.clone(),
                display_name: row.display_name,
                email: row.email,
                agency_id: row.agency_id,
                team_id: row.team_id,
                manager_id: row.manager_id,
                time_zone: row.time_zone,
                mobile: row.mobile,
                works: row.works,
                absent_until: row.absent_until.as_deref().and_then(parse_day),
            };
            (row.id, (person, row.active != 0))
        })
        .collect())
}

/// Champions are upserted with their teams replaced; champions the file no
/// longer lists are marked inactive.
async fn champions(
    conn: &mut PgConnection,
    rows: &[Row<Champion>],
) -> Result<ImportSummary, StoreError> {
    let mut stored: HashMap<(String, String), (Vec<String>, bool)> = HashMap::new();
    let champion_rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT person_id, theme, active FROM champions")
            .fetch_all(&mut *conn)
            .await?;
    for (person_id, theme, active) in champion_rows {
        stored.insert((person_id, theme), (Vec::new(), active != 0));
    }
    let mut team_rows: Vec<ChampionTeamRow> =
        sqlx::query_as("SELECT person_id, theme, team_id FROM champion_teams")
            .fetch_all(&mut *conn)
            .await?;
    // As SQLite reads them: ordered by bytes.
    team_rows.sort_unstable_by(|a, b| {
        (&a.person_id, &a.theme, &a.team_id).cmp(&(&b.person_id, &b.theme, &b.team_id))
    });
    for row in team_rows {
        if let Some((teams, _)) = stored.get_mut(&(row.person_id, row.theme)) {
            teams.push(row.team_id);
        }
    }

    let mut summary = ImportSummary::default();
    let now = time_text(Utc::now());
    for Row {
        value: champion, ..
    } in rows
    {
        let key = (champion.person_id.clone(), champion.theme.clone());
        let before = stored.get(&key);
        if before == Some(&(champion.team_ids.clone(), true)) {
            summary.unchanged += 1;
            continue;
        }
        count_write(&mut summary, before.is_some());
        sqlx::query(
            "INSERT INTO champions (person_id, theme, active, updated_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (person_id, theme) DO UPDATE SET
                active = 1, updated_at = excluded.updated_at",
        )
        .bind(&champion.person_id)
        .bind(&champion.theme)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM champion_teams WHERE person_id = $1 AND theme = $2")
            .bind(&champion.person_id)
            .bind(&champion.theme)
            .execute(&mut *conn)
            .await?;
        for team_id in &champion.team_ids {
            sqlx::query(
                "INSERT INTO champion_teams (person_id, theme, team_id) VALUES ($1, $2, $3)",
            )
            .bind(&champion.person_id)
            .bind(&champion.theme)
            .bind(team_id)
            .execute(&mut *conn)
            .await?;
        }
    }

    let listed: HashSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.value.person_id.as_str(), r.value.theme.as_str()))
        .collect();
    for ((person_id, theme), _) in stored.iter().filter(|((person_id, theme), (_, active))| {
        *active && !listed.contains(&(person_id.as_str(), theme.as_str()))
    }) {
        sqlx::query(
            "UPDATE champions SET active = 0, updated_at = $1 WHERE person_id = $2 AND theme = $3",
        )
        .bind(&now)
        .bind(person_id)
        .bind(theme)
        .execute(&mut *conn)
        .await?;
        summary.deactivated += 1;
    }
    Ok(summary)
}

fn count_write(summary: &mut ImportSummary, existed: bool) {
    if existed {
        summary.updated += 1;
    } else {
        summary.added += 1;
    }
}
