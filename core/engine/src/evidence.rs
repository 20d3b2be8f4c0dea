//! Evidence packs (issue 20): `cascade evidence export` writes the store's
//! evidence chain for a period as a folder a third party can check without
//! cascade's store; `cascade evidence verify` checks such a folder (or the
//! store itself, through [`EvidenceChain::verify_chain`]).
//!
//! A pack holds:
//!
//! - `chain.csv`: every link of the period, in order (seq, kind, ref, at,
//!   content, personal, prev, hash), from the link after `anchor` to `head`;
//! - one CSV per kind of event (`deliveries.csv`, `acknowledgements.csv`,
//!   `confirmations.csv`, `answers.csv`, `refusals.csv`, `erasures.csv`):
//!   each event's fields as the store holds them now, the item versions
//!   they refer to, and the digest its personal fields give now;
//! - `items/<item>/<version>.md`: the item versions themselves, whose
//!   SHA-256 is the version;
//! - `index.html`: what the pack is and how to check it, in plain English;
//! - `manifest.json`: the SHA-256 and size of every other file, the period,
//!   the chain's anchor and head, and the key that signed it;
//! - `manifest.json.sig`: optionally, an Ed25519 signature of
//!   `manifest.json`'s bytes (hex), so a third party who knows the
//!   partnership's public key can check who produced the pack.
//!
//! CSV cells that a spreadsheet would read as a formula (starting with `=`,
//! `+`, `-`, `@`, a tab or a carriage return), and cells starting with `'`,
//! get a leading `'`; a checker removes one leading `'` before hashing.

use cascade_store::{
    Amend, ChainProblem, EVENT_KINDS, EventKind, EvidenceChain, EvidenceSink, ExportedEvent,
    GENESIS, LinkKey, LinkRef, Store, StoreError, Tamper, check_links, content_digest, event_kind,
    event_name, hash_key, sort_problems,
};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.json.sig";
pub const CHAIN_FILE: &str = "chain.csv";
pub const FORMAT: &str = "cascade-evidence-pack/1";

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}", path = path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {why}\n  help: {fix}", path = path.display())]
    Refused {
        path: PathBuf,
        why: String,
        fix: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The key that signs packs: 32 bytes (the Ed25519 seed) as 64 hex
/// digits, from a file or an environment variable.
pub struct PackKey(SigningKey);

impl std::fmt::Debug for PackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackKey(..)")
    }
}

fn parse_seed(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

impl PackKey {
    /// Reads the key from `path`; the error names the file and never holds
    /// the key.
    pub fn from_file(path: &Path) -> Result<PackKey, EvidenceError> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        parse_seed(&text)
            .map(|seed| PackKey(SigningKey::from_bytes(&seed)))
            .ok_or_else(|| EvidenceError::Refused {
                path: path.to_owned(),
                why: "is not an evidence signing key (64 hex digits)".to_owned(),
                fix: "make one with `cascade evidence keygen --out FILE`".to_owned(),
            })
    }

    /// Reads the key from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<PackKey, String> {
        let text = std::env::var(name).map_err(|_| {
            format!("the environment variable {name} is not set\n  help: set it to the 64 hex digits `cascade evidence keygen` wrote")
        })?;
        parse_seed(&text)
            .map(|seed| PackKey(SigningKey::from_bytes(&seed)))
            .ok_or_else(|| format!("the environment variable {name} is not an evidence signing key (64 hex digits)\n  help: make one with `cascade evidence keygen --out FILE`"))
    }

    /// Makes a new key in a new file, private to its owner; returns it.
    pub fn generate(path: &Path) -> Result<PackKey, EvidenceError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system provides randomness");
        cascade_model::private_file::write_new(path, format!("{}\n", hex::encode(seed)).as_bytes())
            .map_err(io_error(path))?;
        Ok(PackKey(SigningKey::from_bytes(&seed)))
    }

    /// The public key, as 64 hex digits: what a third party checks packs
    /// against.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }
}

/// A public key given to `verify`: 64 hex digits, or a file holding them.
pub fn parse_public_key(text_or_file: &str) -> Result<[u8; 32], String> {
    let text = if Path::new(text_or_file).is_file() {
        std::fs::read_to_string(text_or_file).map_err(|e| format!("{text_or_file}: {e}"))?
    } else {
        text_or_file.to_owned()
    };
    parse_seed(&text).ok_or_else(|| {
        format!("{text_or_file}: is not a public key (64 hex digits)\n  help: give the key `cascade evidence keygen` printed, or the file holding it")
    })
}

/// Removes what [`neutralise`] added.
pub fn restore(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// A leading `'` on cells a spreadsheet would run as a formula (and on
/// cells that start with `'`, so [`restore`] is exact).
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A file being written, hashed as it goes.
struct Hashed {
    out: BufWriter<File>,
    sha: Sha256,
    bytes: u64,
}

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn create_private(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn hashed(path: &Path) -> Result<Hashed, EvidenceError> {
    Ok(Hashed {
        out: BufWriter::with_capacity(1 << 16, create_private(path).map_err(io_error(path))?),
        sha: Sha256::new(),
        bytes: 0,
    })
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ManifestChain {
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub anchor: String,
    pub head: String,
    pub events: u64,
    pub store_head_seq: Option<i64>,
    pub store_head: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub partnership: String,
    pub from: String,
    pub to: String,
    pub time_zone: String,
    pub created_at: String,
    pub chain: ManifestChain,
    pub counts: BTreeMap<String, u64>,
    pub files: Vec<ManifestFile>,
    pub signing_key: Option<String>,
}

/// What `export` wrote.
#[derive(Debug, Clone)]
pub struct PackSummary {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

struct KindWriter {
    kind: &'static EventKind,
    csv: csv::Writer<Hashed>,
}

struct PackSink {
    chain: csv::Writer<Hashed>,
    kinds: Vec<KindWriter>,
    counts: BTreeMap<String, u64>,
    /// The item versions the events refer to: item id, its versions.
    items: BTreeMap<String, BTreeSet<String>>,
    /// Decimal digits of the numbers in a row, reused.
    digits: String,
}

/// Writes `cells` to `csv` as one record's next fields, each neutralised,
/// an empty cell for each missing one up to `n`.
fn write_cells(
    csv: &mut csv::Writer<Hashed>,
    values: Option<&[Option<&str>]>,
    n: usize,
) -> csv::Result<()> {
    let values = values.unwrap_or(&[]);
    for i in 0..n {
        let v = values.get(i).copied().flatten().unwrap_or("");
        csv.write_field(neutralise(v).as_bytes())?;
    }
    Ok(())
}

impl EvidenceSink for PackSink {
    fn link(&mut self, l: &LinkRef<'_>) -> Result<(), String> {
        use std::fmt::Write as _;
        self.digits.clear();
        let _ = write!(self.digits, "{}", l.seq);
        let seq_end = self.digits.len();
        let _ = write!(self.digits, "{}", l.at);
        let (seq, at) = self.digits.split_at(seq_end);
        let reference = neutralise(l.reference);
        self.chain
            .write_record([
                seq,
                l.kind,
                &*reference,
                at,
                l.content,
                l.personal,
                l.prev,
                l.hash,
            ])
            .map_err(|e| e.to_string())?;
        match self.counts.get_mut(l.kind) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(l.kind.to_owned(), 1);
            }
        }
        Ok(())
    }

    fn event(&mut self, e: &ExportedEvent<'_>) -> Result<(), String> {
        use std::fmt::Write as _;
        let l = e.link;
        let Some(w) = self.kinds.iter_mut().find(|w| w.kind.kind == l.kind) else {
            return Ok(());
        };
        let kind = w.kind;
        let write = |csv: &mut csv::Writer<Hashed>, digits: &mut String| -> csv::Result<()> {
            digits.clear();
            let _ = write!(digits, "{}", l.seq);
            csv.write_field(digits.as_bytes())?;
            csv.write_field(neutralise(l.reference).as_bytes())?;
            digits.clear();
            let _ = write!(digits, "{}", l.at);
            csv.write_field(digits.as_bytes())?;
            write_cells(csv, e.content, kind.content.len())?;
            write_cells(csv, e.personal, kind.personal.len())?;
            csv.write_field(e.personal_now.as_bytes())?;
            digits.clear();
            let _ = write!(digits, "{}", e.personal_version);
            csv.write_field(digits.as_bytes())?;
            csv.write_field(if e.content.is_none() { "gone" } else { "held" })?;
            write_cells(csv, e.extra, kind.extra.len())?;
            csv.write_record(std::iter::empty::<&[u8]>())
        };
        write(&mut w.csv, &mut self.digits).map_err(|e| e.to_string())?;
        // The item versions the pack carries.
        fn field<'a>(
            names: &[&str],
            values: Option<&'a [Option<&'a str>]>,
            name: &str,
        ) -> Option<&'a str> {
            names
                .iter()
                .position(|n| *n == name)
                .and_then(|i| values?.get(i).copied().flatten())
        }
        let (id, version) = match l.kind {
            "acknowledgement" => (
                field(kind.content, e.content, "item_id"),
                field(kind.content, e.content, "item_version"),
            ),
            "delivery" => (
                field(kind.extra, e.extra, "item_id"),
                field(kind.extra, e.extra, "item_version"),
            ),
            _ => (None, None),
        };
        if let (Some(id), Some(version)) = (id, version)
            && !self.items.get(id).is_some_and(|v| v.contains(version))
        {
            self.items
                .entry(id.to_owned())
                .or_default()
                .insert(version.to_owned());
        }
        Ok(())
    }
}

fn kind_header(kind: &EventKind) -> Vec<String> {
    let mut header = vec!["seq".to_owned(), "ref".to_owned(), "at".to_owned()];
    header.extend(kind.content.iter().map(|c| (*c).to_owned()));
    header.extend(kind.personal.iter().map(|c| (*c).to_owned()));
    header.extend(
        ["personal_digest", "personal_version", "row"]
            .iter()
            .map(|c| (*c).to_owned()),
    );
    header.extend(kind.extra.iter().map(|c| (*c).to_owned()));
    header
}

const CHAIN_HEADER: [&str; 8] = [
    "seq", "kind", "ref", "at", "content", "personal", "prev", "hash",
];

/// What to export.
pub struct ExportRequest<'a> {
    pub partnership: &'a str,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub time_zone: &'a str,
    /// `[from, to)` in Unix ms.
    pub bounds: (i64, i64),
    pub now: chrono::DateTime<chrono::Utc>,
    pub out: &'a Path,
    pub key: Option<&'a PackKey>,
}

fn safe_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Writes the pack into `out`, which must not exist yet (its parent must):
/// everything goes to a private folder beside it first, renamed into place
/// once complete, so a failed export leaves nothing half-written.
pub async fn export<S: Store + EvidenceChain>(
    store: &S,
    request: &ExportRequest<'_>,
) -> Result<PackSummary, EvidenceError> {
    let out = request.out;
    if out.exists() {
        return Err(EvidenceError::Refused {
            path: out.to_owned(),
            why: "already exists".to_owned(),
            fix: "name a new folder for the pack: an export never writes over anything".to_owned(),
        });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(EvidenceError::Refused {
            path: parent,
            why: "is not a folder".to_owned(),
            fix: "create the folder the pack goes in first".to_owned(),
        });
    }
    let staging = tempfile::Builder::new()
        .prefix(".evidence-pack-")
        .tempdir_in(&parent)
        .map_err(io_error(&parent))?;
    let dir = staging.path();
    let manifest = write_pack(store, request, dir).await?;
    std::fs::rename(dir, out).map_err(io_error(out))?;
    // The folder is in place; the staging guard has nothing left to remove.
    let _ = staging.keep();
    Ok(PackSummary {
        dir: out.to_owned(),
        manifest,
    })
}

async fn write_pack<S: Store + EvidenceChain>(
    store: &S,
    request: &ExportRequest<'_>,
    dir: &Path,
) -> Result<Manifest, EvidenceError> {
    let csv_writer = |path: &Path| -> Result<csv::Writer<Hashed>, EvidenceError> {
        Ok(csv::WriterBuilder::new()
            .buffer_capacity(1 << 18)
            .from_writer(hashed(path)?))
    };
    let mut chain = csv_writer(&dir.join(CHAIN_FILE))?;
    chain
        .write_record(CHAIN_HEADER)
        .map_err(|e| io_error(&dir.join(CHAIN_FILE))(e.into()))?;
    let mut kinds = Vec::new();
    for kind in EVENT_KINDS {
        let path = dir.join(kind.file);
        let mut csv = csv_writer(&path)?;
        csv.write_record(kind_header(kind))
            .map_err(|e| io_error(&path)(e.into()))?;
        kinds.push(KindWriter { kind, csv });
    }
    let mut sink = PackSink {
        chain,
        kinds,
        counts: BTreeMap::new(),
        items: BTreeMap::new(),
        digits: String::new(),
    };
    let (from, to) = request.bounds;
    let range = store
        .export_chain(from, to, request.now.timestamp_millis(), &mut sink)
        .await?;

    let mut files = Vec::new();
    let mut finish = |name: &str, w: csv::Writer<Hashed>| -> Result<(), EvidenceError> {
        let path = dir.join(name);
        let mut h = w
            .into_inner()
            .map_err(|e| io_error(&path)(io::Error::other(e.to_string())))?;
        h.flush().map_err(io_error(&path))?;
        h.out.get_ref().sync_all().map_err(io_error(&path))?;
        files.push(ManifestFile {
            path: name.to_owned(),
            sha256: hex::encode(h.sha.finalize()),
            bytes: h.bytes,
        });
        Ok(())
    };
    finish(CHAIN_FILE, sink.chain)?;
    for w in sink.kinds {
        finish(w.kind.file, w.csv)?;
    }

    // The item versions the events refer to, as their source files.
    let mut item_rows = Vec::new();
    for (id, versions) in &sink.items {
        if !safe_name(id) {
            continue;
        }
        for stored in store.item_versions(id).await? {
            if !versions.contains(&stored.version.0) || !safe_name(&stored.version.0) {
                continue;
            }
            let rel = format!("items/{id}/{}.md", stored.version.0);
            let path = dir.join(&rel);
            if let Some(parent) = path.parent() {
                cascade_model::private_file::create_dir(parent).map_err(io_error(parent))?;
            }
            cascade_model::private_file::write_new(&path, stored.source.as_bytes())
                .map_err(io_error(&path))?;
            files.push(ManifestFile {
                path: rel,
                sha256: hex::encode(Sha256::digest(stored.source.as_bytes())),
                bytes: stored.source.len() as u64,
            });
            item_rows.push((id.clone(), stored.version.0.clone(), stored.title.clone()));
        }
    }

    let mut manifest = Manifest {
        format: FORMAT.to_owned(),
        partnership: request.partnership.to_owned(),
        from: request.from.to_string(),
        to: request.to.to_string(),
        time_zone: request.time_zone.to_owned(),
        created_at: request.now.to_rfc3339(),
        chain: ManifestChain {
            first_seq: range.first_seq,
            last_seq: range.last_seq,
            anchor: range.anchor,
            head: range.head,
            events: range.events,
            store_head_seq: range.store_head.as_ref().map(|(s, _)| *s),
            store_head: range.store_head.map(|(_, h)| h),
        },
        counts: sink.counts,
        files: Vec::new(),
        signing_key: request.key.map(PackKey::public_hex),
    };
    let index = index_html(&manifest, &files, &item_rows);
    let index_path = dir.join("index.html");
    cascade_model::private_file::write_new(&index_path, index.as_bytes())
        .map_err(io_error(&index_path))?;
    files.push(ManifestFile {
        path: "index.html".to_owned(),
        sha256: hex::encode(Sha256::digest(index.as_bytes())),
        bytes: index.len() as u64,
    });
    manifest.files = files;
    let text = serde_json::to_string_pretty(&manifest).expect("the manifest serialises") + "\n";
    let path = dir.join(MANIFEST);
    cascade_model::private_file::write_new(&path, text.as_bytes()).map_err(io_error(&path))?;
    if let Some(key) = request.key {
        let signature = key.0.sign(text.as_bytes());
        let path = dir.join(SIGNATURE);
        cascade_model::private_file::write_new(
            &path,
            format!("{}\n", hex::encode(signature.to_bytes())).as_bytes(),
        )
        .map_err(io_error(&path))?;
    }
    Ok(manifest)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn kind_words(kind: &str) -> &'static str {
    match kind {
        "delivery" => "Deliveries sent",
        "acknowledgement" => "Acknowledgements",
        "confirmation" => "Champions' cascade confirmations",
        "answer" => "Follow-up answers",
        "refusals" => "Minutes of refused attempts (counts)",
        "erasure" => "Erasures (UK GDPR)",
        "amend" => "Amendments (an erasure, an example added, retention)",
        _ => "Other events",
    }
}

/// The pack's front page: plain HTML, no script or style from elsewhere.
fn index_html(
    manifest: &Manifest,
    files: &[ManifestFile],
    items: &[(String, String, String)],
) -> String {
    let mut h = String::new();
    let title = format!("Evidence pack: {}", manifest.partnership);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str(&format!("<title>{}</title>\n", escape(&title)));
    h.push_str("<style>body{font-family:Arial,sans-serif;font-size:19px;line-height:1.4;color:#0b0c0c;max-width:60em;margin:1em auto;padding:0 1em}table{border-collapse:collapse}th,td{border-bottom:1px solid #b1b4b6;padding:.4em .8em .4em 0;text-align:left;vertical-align:top}code{font-size:16px;word-break:break-all}a{color:#1d70b8}a:focus{outline:3px solid #fd0;background:#fd0;color:#0b0c0c}</style>\n");
    h.push_str("</head>\n<body>\n<main>\n");
    h.push_str(&format!("<h1>{}</h1>\n", escape(&title)));
    h.push_str(&format!(
        "<p>Every evidence event cascade recorded from {} to {} (whole days, {} time), taken on {}.</p>\n",
        escape(&manifest.from),
        escape(&manifest.to),
        escape(&manifest.time_zone),
        escape(&manifest.created_at)
    ));
    h.push_str("<h2>What is in it</h2>\n<table>\n<caption>Events by kind</caption>\n<thead><tr><th scope=\"col\">Kind of event</th><th scope=\"col\">Number</th><th scope=\"col\">File</th></tr></thead>\n<tbody>\n");
    for (kind, n) in &manifest.counts {
        let file = event_kind(kind).map(|k| k.file).unwrap_or(CHAIN_FILE);
        h.push_str(&format!(
            "<tr><td>{}</td><td>{n}</td><td><a href=\"{f}\">{f}</a></td></tr>\n",
            kind_words(kind),
            f = escape(file)
        ));
    }
    h.push_str("</tbody>\n</table>\n");
    h.push_str(&format!(
        "<p>The events are links {} to {} of the store's hash chain. The first follows the hash <code>{}</code>; the last has the hash <code>{}</code>. When the pack was taken, the chain ended at event {} with the hash <code>{}</code>.</p>\n",
        manifest.chain.first_seq.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
        manifest.chain.last_seq.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
        escape(&manifest.chain.anchor),
        escape(&manifest.chain.head),
        manifest.chain.store_head_seq.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
        escape(manifest.chain.store_head.as_deref().unwrap_or("none")),
    ));
    if !items.is_empty() {
        h.push_str("<h2>Learning items</h2>\n<p>The versions the events refer to. A version is the SHA-256 of the item's text.</p>\n<ul>\n");
        for (id, version, item_title) in items {
            h.push_str(&format!(
                "<li><a href=\"items/{id}/{version}.md\">{}</a> (<code>{id}</code>, version <code>{}</code>)</li>\n",
                escape(item_title),
                &version[..version.len().min(12)],
                id = escape(id),
                version = escape(version),
            ));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>How to check it</h2>\n");
    h.push_str("<p>Run <code>cascade evidence verify</code> with this folder. It checks every file against <code>manifest.json</code>, the signature, every link of <code>chain.csv</code> and every event against its link, and names the first event that was edited, removed, inserted or put out of order.</p>\n");
    match &manifest.signing_key {
        Some(key) => h.push_str(&format!(
            "<p>The manifest is signed with the Ed25519 key <code>{}</code>. Check that this is the key the partnership published, or give it to verify with <code>--public-key</code>.</p>\n",
            escape(key)
        )),
        None => h.push_str("<p>This pack is not signed: the manifest shows the files are as exported, but not who exported them.</p>\n"),
    }
    h.push_str("<p>Personal details (who acknowledged, a champion's note, a follow-up example) are in the chain only as a salted hash, checked against the store by <code>cascade evidence verify --store</code>; this pack holds them in its CSV files, so keep it as you keep the partnership's other OFFICIAL-SENSITIVE records.</p>\n");
    h.push_str("<h2>Files</h2>\n<table>\n<caption>Every file and its SHA-256</caption>\n<thead><tr><th scope=\"col\">File</th><th scope=\"col\">Bytes</th><th scope=\"col\">SHA-256</th></tr></thead>\n<tbody>\n");
    for f in files {
        h.push_str(&format!(
            "<tr><td><a href=\"{p}\">{p}</a></td><td>{}</td><td><code>{}</code></td></tr>\n",
            f.bytes,
            escape(&f.sha256),
            p = escape(&f.path)
        ));
    }
    h.push_str("</tbody>\n</table>\n</main>\n</body>\n</html>\n");
    h
}

/// What checking a pack found.
#[derive(Debug, Clone, Default)]
pub struct PackReport {
    /// Problems with the files, the manifest or the signature, in plain
    /// words, each naming the file.
    pub files: Vec<String>,
    /// Problems with events, the first event touched first.
    pub events: Vec<ChainProblem>,
    pub checked_events: u64,
    pub signed_by: Option<String>,
    pub manifest: Option<Manifest>,
}

impl PackReport {
    pub fn passed(&self) -> bool {
        self.files.is_empty() && self.events.is_empty()
    }
}

fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut sha = Sha256::new();
    let bytes = io::copy(&mut file, &mut sha)?;
    Ok((hex::encode(sha.finalize()), bytes))
}

fn files_under(dir: &Path, rel: &str, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir.join(rel))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type()?.is_dir() {
            files_under(dir, &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Checks a pack: its files against the manifest, the manifest's signature
/// (against `expected_key` when given), the chain's links, and each event
/// against its link.
pub fn verify_pack(
    dir: &Path,
    expected_key: Option<[u8; 32]>,
) -> Result<PackReport, EvidenceError> {
    let mut report = PackReport::default();
    let manifest_path = dir.join(MANIFEST);
    let text = match std::fs::read(&manifest_path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(EvidenceError::Refused {
                path: manifest_path,
                why:
                    "is not there: this folder is not an evidence pack, or its manifest was removed"
                        .to_owned(),
                fix: "give the folder `cascade evidence export --out` wrote".to_owned(),
            });
        }
        Err(e) => return Err(io_error(&manifest_path)(e)),
    };
    let manifest: Manifest = match serde_json::from_slice(&text) {
        Ok(m) => m,
        Err(e) => {
            return Err(EvidenceError::Refused {
                path: manifest_path,
                why: format!("is not an evidence pack manifest (line {}: {e})", e.line()),
                fix: "the manifest was edited or replaced: ask whoever produced the pack for a fresh copy".to_owned(),
            });
        }
    };
    if manifest.format != FORMAT {
        report.files.push(format!(
            "{MANIFEST}: its format is {:?}, not {FORMAT:?}: made by another version of cascade, or edited",
            manifest.format
        ));
    }

    // The signature.
    let sig_path = dir.join(SIGNATURE);
    let signature = std::fs::read_to_string(&sig_path).ok();
    match (&manifest.signing_key, signature) {
        (None, None) => {
            if expected_key.is_some() {
                report.files.push(format!(
                    "{MANIFEST}: the pack is not signed, so it cannot show it was produced with the key you gave"
                ));
            }
        }
        (None, Some(_)) => report.files.push(format!(
            "{SIGNATURE}: there is a signature but the manifest names no key: the manifest was replaced"
        )),
        (Some(_), None) => report.files.push(format!(
            "{SIGNATURE}: is missing, though the manifest says the pack was signed: it was removed"
        )),
        (Some(key_hex), Some(sig_hex)) => {
            let key = parse_seed(key_hex).and_then(|k| VerifyingKey::from_bytes(&k).ok());
            let sig = hex::decode(sig_hex.trim())
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .map(|b| Signature::from_bytes(&b));
            match (key, sig) {
                (Some(key), Some(sig)) => {
                    if key.verify(&text, &sig).is_err() {
                        report.files.push(format!(
                            "{MANIFEST}: its signature does not verify: the manifest was edited or replaced after it was signed"
                        ));
                    } else {
                        report.signed_by = Some(key_hex.clone());
                    }
                    if let Some(expected) = expected_key
                        && expected != *key.as_bytes()
                    {
                        report.files.push(format!(
                            "{MANIFEST}: the pack was signed with the key {key_hex}, not the key you gave ({}): someone else produced it",
                            hex::encode(expected)
                        ));
                        report.signed_by = None;
                    }
                }
                (None, _) => report.files.push(format!(
                    "{MANIFEST}: its signing_key is not an Ed25519 public key"
                )),
                (_, None) => report.files.push(format!(
                    "{SIGNATURE}: is not an Ed25519 signature (128 hex digits)"
                )),
            }
        }
    }

    // The files.
    let mut present = Vec::new();
    files_under(dir, "", &mut present).map_err(io_error(dir))?;
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for f in &manifest.files {
        let path = dir.join(&f.path);
        match sha256_file(&path) {
            Ok((sha, _)) if sha == f.sha256 => {}
            Ok((sha, bytes)) => report.files.push(format!(
                "{}: changed after export ({bytes} bytes with SHA-256 {sha}; the manifest says {} bytes with SHA-256 {})",
                f.path, f.bytes, f.sha256
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => report
                .files
                .push(format!("{}: missing: it is in the manifest but not in the pack", f.path)),
            Err(e) => report.files.push(format!("{}: cannot be read: {e}", f.path)),
        }
    }
    for p in &present {
        if p != MANIFEST && p != SIGNATURE && !listed.contains(p.as_str()) {
            report
                .files
                .push(format!("{p}: not in the manifest: added after export"));
        }
    }

    // The chain and the events.
    check_events(dir, &manifest, &mut report)?;
    report.manifest = Some(manifest);
    Ok(report)
}

fn csv_reader(path: &Path) -> Result<Option<csv::Reader<File>>, EvidenceError> {
    match File::open(path) {
        Ok(f) => Ok(Some(
            csv::ReaderBuilder::new().flexible(true).from_reader(f),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// What a kind's CSV row says of its event, small enough to keep for
/// millions of events (names are read again for the events with problems).
struct EventRow {
    kind: u8,
    /// A hash of its reference.
    reference: u64,
    content: u128,
    personal_now: u128,
    version: i64,
    line: u64,
}

fn small_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

const NO_KIND: u8 = u8::MAX;

fn kind_number(kind: &str) -> u8 {
    EVENT_KINDS
        .iter()
        .position(|k| k.kind == kind)
        .map(|i| i as u8)
        .unwrap_or(NO_KIND)
}

/// A link's event kept for the comparison with the kinds' rows.
struct LinkEvent {
    kind: u8,
    reference: u64,
    content: u128,
    personal: u128,
}

/// The check of an untouched pack in one pass, keeping next to nothing in
/// memory: `chain.csv` read link by link, each kind's CSV alongside it
/// (both are in the chain's order), every link's hash and order and every
/// row against its link checked as [`full_check`] does, if anything more
/// strictly. `Some(events)` when all of it holds; `None` at the first thing
/// that does not, for [`full_check`] to find and name every problem.
fn quick_check(dir: &Path, manifest: &Manifest) -> Result<Option<u64>, EvidenceError> {
    let open = |name: &str| -> Result<Option<csv::Reader<File>>, EvidenceError> {
        let path = dir.join(name);
        match File::open(&path) {
            Ok(f) => Ok(Some(
                csv::ReaderBuilder::new()
                    .flexible(true)
                    .buffer_capacity(1 << 18)
                    .from_reader(f),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path)(e)),
        }
    };
    let Some(mut chain) = open(CHAIN_FILE)? else {
        return Ok(None);
    };
    let mut kinds = Vec::with_capacity(EVENT_KINDS.len());
    for kind in EVENT_KINDS {
        kinds.push(open(kind.file)?);
    }
    let mut expected_seq = manifest.chain.first_seq.unwrap_or(1);
    let mut prev = manifest.chain.anchor.clone();
    let mut events: u64 = 0;
    let mut amends: HashMap<(i64, i64), u128> = HashMap::new();
    // Rows whose check needs an amend that comes later in the chain:
    // (seq, personal version, personal digest now, row gone).
    let mut later: Vec<(i64, i64, u128, bool)> = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut row = csv::StringRecord::new();
    loop {
        match chain.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => return Ok(None),
        }
        let get = |n: usize| record.get(n).map(restore);
        let (
            Some(seq),
            Some(kind),
            Some(reference),
            Some(at),
            Some(content),
            Some(personal),
            Some(link_prev),
            Some(hash),
        ) = (
            get(0).and_then(|s| s.parse::<i64>().ok()),
            get(1),
            get(2),
            get(3).and_then(|s| s.parse::<i64>().ok()),
            get(4),
            get(5),
            get(6),
            get(7),
        )
        else {
            return Ok(None);
        };
        if seq != expected_seq
            || link_prev != prev
            || cascade_store::link_hash(seq, kind, reference, at, content, personal, link_prev)
                != hash
        {
            return Ok(None);
        }
        if kind == "amend" {
            match Amend::parse(reference) {
                Some(a) if content_digest("amend", &a.fields()) == content => {
                    amends.insert((a.target, a.version), hash_key(personal));
                }
                _ => return Ok(None),
            }
        } else {
            let number = kind_number(kind);
            let Some(Some(reader)) = kinds.get_mut(number as usize) else {
                return Ok(None);
            };
            let k = &EVENT_KINDS[number as usize];
            match reader.read_record(&mut row) {
                Ok(true) => {}
                _ => return Ok(None),
            }
            let cell = |n: usize| restore(row.get(n).unwrap_or(""));
            let base = 3 + k.content.len() + k.personal.len();
            if cell(0).parse::<i64>().ok() != Some(seq) || cell(1) != reference {
                return Ok(None);
            }
            let gone = cell(base + 2) == "gone";
            let version = cell(base + 1).parse::<i64>().unwrap_or(-1);
            let personal_now = cell(base);
            if !gone {
                let fields: Vec<Option<&str>> =
                    (0..k.content.len()).map(|c| Some(cell(3 + c))).collect();
                if cascade_store::content_digest_of(k.kind, &fields) != content {
                    return Ok(None);
                }
                if version == 0 && personal_now != personal {
                    return Ok(None);
                }
            }
            if gone || version != 0 {
                later.push((seq, version, hash_key(personal_now), gone));
            }
        }
        prev.clear();
        prev.push_str(hash);
        expected_seq += 1;
        events += 1;
    }
    if events != manifest.chain.events || (events > 0 && prev != manifest.chain.head) {
        return Ok(None);
    }
    // No kind's file holds a row the chain does not.
    for reader in kinds.iter_mut().flatten() {
        match reader.read_record(&mut row) {
            Ok(false) => {}
            _ => return Ok(None),
        }
    }
    let removed = hash_key("");
    for (seq, version, personal_now, gone) in later {
        let held = if gone {
            amends
                .iter()
                .any(|(&(target, _), &d)| target == seq && d == removed)
        } else {
            amends
                .get(&(seq, version))
                .is_none_or(|&expected| expected == personal_now)
        };
        if !held {
            return Ok(None);
        }
    }
    Ok(Some(events))
}

fn check_events(
    dir: &Path,
    manifest: &Manifest,
    report: &mut PackReport,
) -> Result<(), EvidenceError> {
    if let Some(events) = quick_check(dir, manifest)? {
        report.checked_events = events;
        return Ok(());
    }
    full_check(dir, manifest, report)
}

/// Checks every link and every row with the whole chain in memory, and
/// names every problem (each event touched, and how).
fn full_check(
    dir: &Path,
    manifest: &Manifest,
    report: &mut PackReport,
) -> Result<(), EvidenceError> {
    let chain_path = dir.join(CHAIN_FILE);
    let Some(mut chain) = csv_reader(&chain_path)? else {
        return Ok(());
    };
    let mut keys: Vec<LinkKey> = Vec::new();
    // In seq order once sorted (sorted vectors, not maps: a third of the
    // memory for millions of events).
    let mut links: Vec<(i64, LinkEvent)> = Vec::new();
    let mut amends: HashMap<(i64, i64), u128> = HashMap::new();
    let mut last_hash = String::new();
    // Problems whose event is named once every file is read: (seq, what,
    // detail); a name given already is kept.
    let mut found: Vec<(i64, Tamper, String, Option<String>)> = Vec::new();
    for (i, record) in chain.records().enumerate() {
        let line = i as u64 + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                report.files.push(format!("{CHAIN_FILE}: line {line}: {e}"));
                continue;
            }
        };
        let get = |n: usize| restore(record.get(n).unwrap_or(""));
        let Ok(seq) = get(0).parse::<i64>() else {
            report.files.push(format!(
                "{CHAIN_FILE}: line {line}: the seq {:?} is not a number",
                get(0)
            ));
            continue;
        };
        let link = cascade_store::ChainLink {
            seq,
            kind: get(1).to_owned(),
            reference: get(2).to_owned(),
            at: get(3).parse().unwrap_or(i64::MIN),
            content: get(4).to_owned(),
            personal: get(5).to_owned(),
            prev: get(6).to_owned(),
            hash: get(7).to_owned(),
        };
        keys.push(LinkKey::of(&link));
        if link.kind == "amend" {
            match Amend::parse(&link.reference) {
                Some(a) if content_digest("amend", &a.fields()) == link.content => {
                    amends.insert((a.target, a.version), hash_key(&link.personal));
                }
                _ => found.push((
                    seq,
                    Tamper::Edited,
                    "its reference no longer gives the content recorded for it".to_owned(),
                    Some(link.event_name()),
                )),
            }
        } else {
            let kind = kind_number(&link.kind);
            if kind == NO_KIND {
                found.push((
                    seq,
                    Tamper::Edited,
                    "it is of no kind cascade records".to_owned(),
                    Some(link.event_name()),
                ));
            } else {
                links.push((
                    seq,
                    LinkEvent {
                        kind,
                        reference: small_hash(&link.reference),
                        content: hash_key(&link.content),
                        personal: hash_key(&link.personal),
                    },
                ));
            }
        }
        last_hash = link.hash;
    }
    report.checked_events = keys.len() as u64;
    let first_seq = manifest.chain.first_seq.unwrap_or(1);
    if let Some((i, what, detail)) = check_links(&keys, first_seq, &manifest.chain.anchor) {
        let expected = first_seq + i as i64;
        if what == Tamper::Missing {
            found.push((
                expected,
                what,
                detail,
                Some("removed from the pack".to_owned()),
            ));
        } else {
            found.push((keys[i].seq, what, detail, None));
        }
    }
    if keys.len() as u64 != manifest.chain.events
        || (!keys.is_empty() && last_hash != manifest.chain.head)
    {
        report.files.push(format!(
            "{CHAIN_FILE}: holds {} links ending at hash {}, but the manifest says {} ending at {}: links were added or removed at the end",
            keys.len(),
            if last_hash.is_empty() {
                GENESIS
            } else {
                last_hash.as_str()
            },
            manifest.chain.events,
            manifest.chain.head
        ));
    }
    drop(keys);
    // A seq given twice: its later link stands (the order check named it).
    links.sort_by_key(|(seq, _)| *seq);
    links.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    links.shrink_to_fit();

    // Each kind's rows against their links.
    let mut rows: Vec<(i64, EventRow)> = Vec::new();
    for (number, kind) in EVENT_KINDS.iter().enumerate() {
        let path = dir.join(kind.file);
        let Some(mut reader) = csv_reader(&path)? else {
            continue;
        };
        let n_content = kind.content.len();
        let n_personal = kind.personal.len();
        for (i, record) in reader.records().enumerate() {
            let line = i as u64 + 2;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    report
                        .files
                        .push(format!("{}: line {line}: {e}", kind.file));
                    continue;
                }
            };
            let get = |n: usize| restore(record.get(n).unwrap_or(""));
            let Ok(seq) = get(0).parse::<i64>() else {
                report.files.push(format!(
                    "{}: line {line}: the seq {:?} is not a number",
                    kind.file,
                    get(0)
                ));
                continue;
            };
            let fields: Vec<Option<String>> = (0..n_content)
                .map(|c| Some(get(3 + c).to_owned()))
                .collect();
            let base = 3 + n_content + n_personal;
            let gone = get(base + 2) == "gone";
            let row = EventRow {
                kind: number as u8,
                reference: small_hash(get(1)),
                content: if gone {
                    0
                } else {
                    hash_key(&content_digest(kind.kind, &fields))
                },
                personal_now: hash_key(get(base)),
                version: get(base + 1).parse().unwrap_or(-1),
                line,
            };
            rows.push((seq, row));
        }
    }
    // A second row for a seq is named and dropped; the first is compared.
    rows.sort_by_key(|(seq, _)| *seq);
    rows.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            let file = EVENT_KINDS
                .get(later.1.kind as usize)
                .map(|k| k.file)
                .unwrap_or("a file");
            found.push((
                later.0,
                Tamper::Inserted,
                format!("{file} has a second row for it (line {})", later.1.line),
                None,
            ));
        }
        same
    });

    let file_of = |kind: u8| {
        EVENT_KINDS
            .get(kind as usize)
            .map(|k| k.file)
            .unwrap_or("a file")
    };
    // Events an amend records as removed by the retention schedule.
    let removed: std::collections::HashSet<i64> = amends
        .iter()
        .filter(|(_, d)| **d == hash_key(""))
        .map(|((target, _), _)| *target)
        .collect();
    // Both in seq order: walk them together.
    let mut rows = rows.into_iter().peekable();
    let mut extra: Vec<(i64, EventRow)> = Vec::new();
    for (seq, link) in &links {
        while let Some(r) = rows.next_if(|(s, _)| s < seq) {
            extra.push(r);
        }
        let Some((_, row)) = rows.next_if(|(s, _)| s == seq) else {
            found.push((
                *seq,
                Tamper::Missing,
                format!("{} has no row for it", file_of(link.kind)),
                None,
            ));
            continue;
        };
        if row.kind != link.kind || row.reference != link.reference {
            found.push((
                *seq,
                Tamper::OutOfOrder,
                format!(
                    "{} line {} gives another event in its place",
                    file_of(row.kind),
                    row.line
                ),
                None,
            ));
            continue;
        }
        if row.content == 0 && removed.contains(seq) {
            continue;
        }
        if row.content != link.content {
            found.push((
                *seq,
                Tamper::Edited,
                format!(
                    "{} line {} no longer holds what was recorded",
                    file_of(link.kind),
                    row.line
                ),
                None,
            ));
            continue;
        }
        let expected = if row.version == 0 {
            Some(link.personal)
        } else {
            amends.get(&(*seq, row.version)).copied()
        };
        if let Some(expected) = expected
            && expected != row.personal_now
        {
            found.push((
                *seq,
                Tamper::Edited,
                format!(
                    "{} line {}: its personal digest is not the one the chain holds",
                    file_of(link.kind),
                    row.line
                ),
                None,
            ));
        }
    }
    extra.extend(rows);
    for (seq, row) in extra {
        found.push((
            seq,
            Tamper::Inserted,
            format!(
                "{} line {} is not an event of the chain",
                file_of(row.kind),
                row.line
            ),
            Some(format!("a row of {}", file_of(row.kind))),
        ));
    }
    drop(links);

    // Name the events: one more pass over chain.csv, for those only.
    let wanted: BTreeSet<i64> = found
        .iter()
        .filter(|(_, _, _, name)| name.is_none())
        .map(|(seq, ..)| *seq)
        .collect();
    let mut names: HashMap<i64, String> = HashMap::new();
    if !wanted.is_empty()
        && let Some(mut chain) = csv_reader(&chain_path)?
    {
        for record in chain.records().flatten() {
            let get = |n: usize| restore(record.get(n).unwrap_or(""));
            if let Ok(seq) = get(0).parse::<i64>()
                && wanted.contains(&seq)
            {
                names
                    .entry(seq)
                    .or_insert_with(|| event_name(get(1), get(2)));
            }
        }
    }
    for (seq, what, detail, name) in found {
        report.events.push(ChainProblem {
            seq: Some(seq),
            event: name
                .or_else(|| names.get(&seq).cloned())
                .unwrap_or_else(|| "unknown".to_owned()),
            what,
            detail,
        });
    }
    sort_problems(&mut report.events);
    Ok(())
}
