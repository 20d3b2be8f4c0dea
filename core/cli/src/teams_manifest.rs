//! `cascade teams manifest`: the Teams app manifest (`manifest.json`) an
//! administrator uploads to their tenant, made from the project's Teams
//! channel: the bot's app id, the personal and team scopes, and the
//! commands the bot understands. Pure: the caller reads the project and
//! writes the file.

use cascade_engine::config::Config;
use serde_json::{Value, json};

/// The manifest schema version written; Teams accepts it in every client.
const MANIFEST_VERSION: &str = "1.17";

/// The commands people type to the bot, as Teams lists them.
const COMMANDS: [(&str, &str); 4] = [
    ("link", "Link this chat to you with the code you were given"),
    ("pending", "Learning waiting for your acknowledgement"),
    ("ack", "Acknowledge an item by its id"),
    ("help", "What this bot does"),
];

/// Why no manifest could be made, with what to change.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error(
        "cascade.toml has no Teams channel: add a [[channels]] entry with plugin = \"teams\" (see plugins/teams/README.md)"
    )]
    NoTeamsChannel,
    #[error("cascade.toml has {0} Teams channels: say which with --channel (one of {1})")]
    WhichChannel(usize, String),
    #[error("cascade.toml has no channel named {0:?} with plugin = \"teams\"")]
    UnknownChannel(String),
    #[error(
        "the Teams channel {0:?} has no app_id in its config: copy the bot's Microsoft App ID (a GUID) from its Azure registration"
    )]
    NoAppId(String),
}

/// The manifest for the Teams channel `channel` (or the only one).
pub fn manifest(config: &Config, channel: Option<&str>) -> Result<Value, ManifestError> {
    let teams: Vec<_> = config
        .channels
        .iter()
        .filter(|c| c.plugin == "teams")
        .collect();
    let chosen = match channel {
        Some(name) => teams
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ManifestError::UnknownChannel(name.to_owned()))?,
        None => match teams.as_slice() {
            [] => return Err(ManifestError::NoTeamsChannel),
            [only] => only,
            many => {
                let names: Vec<&str> = many.iter().map(|c| c.name.as_str()).collect();
                return Err(ManifestError::WhichChannel(many.len(), names.join(", ")));
            }
        },
    };
    let app_id = chosen.config["app_id"]
        .as_str()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ManifestError::NoAppId(chosen.name.clone()))?
        .to_ascii_lowercase();
    let partnership = &config.partnership.name;
    let website = config
        .ack
        .as_ref()
        .map(|ack| ack.base_url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| "https://localhost".to_owned());
    let domain = website
        .split("://")
        .nth(1)
        .unwrap_or(&website)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let commands: Vec<Value> = COMMANDS
        .iter()
        .map(|(title, description)| json!({ "title": title, "description": description }))
        .collect();
    Ok(json!({
        "$schema": format!("https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"),
        "manifestVersion": MANIFEST_VERSION,
        "version": env!("CARGO_PKG_VERSION"),
        "id": app_id,
        "developer": {
            "name": cut(partnership, 32),
            "websiteUrl": website,
            "privacyUrl": website,
            "termsOfUseUrl": website,
        },
        "name": { "short": "Cascade learning", "full": cut(&format!("{partnership}: safeguarding learning"), 100) },
        "description": {
            "short": "Safeguarding learning from your partnership",
            "full": cut(&format!("Learning from {partnership}: 7-minute briefings, review findings and newsletter items. Acknowledge what you have read, and tell the partnership when you have shared it with your team. Send \"link\" with the code you were given to start."), 4000),
        },
        "icons": { "outline": "outline.png", "color": "color.png" },
        "accentColor": "#1D4F91",
        "bots": [{
            "botId": app_id,
            "scopes": ["personal", "team"],
            "isNotificationOnly": false,
            "supportsFiles": false,
            "supportsCalling": false,
            "supportsVideo": false,
            "commandLists": [
                { "scopes": ["personal"], "commands": commands },
                { "scopes": ["team"], "commands": commands },
            ],
        }],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [domain],
    }))
}

/// At most `chars` characters of `text` (the manifest's field limits).
fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(channels: &str) -> Config {
        toml::from_str(&format!(
            "[partnership]\nname = \"Northbridge Safeguarding Children Partnership\"\n[ack]\nkey = {{ env = \"K\" }}\nbase_url = \"https://learning.northbridge.example/\"\n{channels}"
        ))
        .unwrap()
    }

    const TEAMS: &str = "[[channels]]\nname = \"teams\"\nplugin = \"teams\"\nconfig = { app_id = \"6F1C2D3E-4A5B-4C6D-8E9F-0A1B2C3D4E5F\", tenant_id = \"x\" }\n";

    #[test]
    fn the_manifest_names_the_bot_its_scopes_and_commands() {
        let manifest = manifest(&config(TEAMS), None).unwrap();
        let bot = &manifest["bots"][0];
        assert_eq!(bot["botId"], "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f");
        assert_eq!(manifest["id"], bot["botId"]);
        assert_eq!(bot["scopes"], json!(["personal", "team"]));
        let titles: Vec<&str> = bot["commandLists"][0]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["link", "pending", "ack", "help"]);
        assert_eq!(
            manifest["validDomains"],
            json!(["learning.northbridge.example"])
        );
        assert!(
            manifest["developer"]["name"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= 32
        );
    }

    #[test]
    fn without_a_teams_channel_or_its_app_id_it_says_what_to_add() {
        assert_eq!(
            manifest(&config(""), None),
            Err(ManifestError::NoTeamsChannel)
        );
        let no_id =
            "[[channels]]\nname = \"t\"\nplugin = \"teams\"\nconfig = { tenant_id = \"x\" }\n";
        assert_eq!(
            manifest(&config(no_id), None),
            Err(ManifestError::NoAppId("t".to_owned()))
        );
        assert_eq!(
            manifest(&config(TEAMS), Some("other")),
            Err(ManifestError::UnknownChannel("other".to_owned()))
        );
    }
}
