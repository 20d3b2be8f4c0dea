//! Backend-neutral pieces of rows: how days and times are kept as text,
//! and champions folded from their per-team rows. Shared by the SQLite and
//! PostgreSQL stores.

use cascade_model::directory::Champion;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// A day as the store keeps it, `YYYY-MM-DD`.
pub(crate) fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A time as sqlx writes `DateTime<Utc>` into SQLite (RFC 3339, or with a
/// space for the `T`).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc3339(&text.replacen(' ', "T", 1)))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// A time as text, exactly as sqlx-sqlite writes a `DateTime<Utc>`
/// (`2026-03-02T10:00:00.123456789+00:00`): the PostgreSQL store keeps
/// these columns as TEXT in the same form.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A champion of a theme for one team: a `champions` row joined with one
/// of its `champion_teams` rows.
#[derive(sqlx::FromRow)]
pub(crate) struct ChampionTeamRow {
    pub(crate) person_id: String,
    pub(crate) theme: String,
    pub(crate) team_id: String,
}

/// Champions from their per-team rows ordered by person, theme and team.
pub(crate) fn group_champions(rows: Vec<ChampionTeamRow>) -> Vec<Champion> {
    let mut champions: Vec<Champion> = Vec::new();
    for ChampionTeamRow {
        person_id,
        theme,
        team_id,
    } in rows
    {
        match champions.last_mut() {
            Some(last) if last.person_id == person_id && last.theme == theme => {
                last.team_ids.push(team_id)
            }
            _ => champions.push(Champion {
                person_id,
                theme,
                team_ids: vec![team_id],
            }),
        }
    }
    champions
}
