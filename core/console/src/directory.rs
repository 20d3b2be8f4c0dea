//! The directory: its four CSV files, and uploading one. An upload is
//! checked as `cascade import` and `cascade check` check it (its rows, then
//! its references against the rest of the directory folder with it in
//! place) and imported in one transaction; only then is the file written
//! into `directory/`. A bad file writes nothing, anywhere, and every bad row
//! is shown as the CLI shows it.

use crate::auth::{Role, sha256_hex};
use crate::html::{self, csrf_field, error_summary, esc, page};
use crate::session;
use crate::{Console, audit};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cascade_engine::project::Project;
use cascade_model::directory::{Directory, FileKind, read_csv};
use cascade_store::{Accounts, AllStores};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

/// The largest upload accepted (a people file of some 100,000 rows).
pub const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;

const KINDS: [FileKind; 4] = [
    FileKind::Agencies,
    FileKind::Teams,
    FileKind::People,
    FileKind::Champions,
];

fn body(
    project: &Project,
    csrf: &str,
    edits: bool,
    errors: &[(String, String)],
    notice: Option<&str>,
) -> String {
    let mut body = String::new();
    if let Some(notice) = notice {
        let _ = writeln!(
            body,
            "<div class=\"notice\" role=\"status\"><p>{}</p></div>",
            esc(notice)
        );
    }
    body.push_str(&error_summary(errors));
    body.push_str("<h1>Directory</h1>\n<p>The partnership directory is kept in four files in the project's <code>directory</code> folder.</p>\n<ul class=\"list\">\n");
    for kind in KINDS {
        let path = project.directory_dir().join(kind.file_name());
        let rows = std::fs::read_to_string(&path)
            .map(|t| t.lines().count().saturating_sub(1))
            .ok();
        let _ = writeln!(
            body,
            "<li><code>{}</code>: {}</li>",
            kind.file_name(),
            rows.map_or("not there yet".to_owned(), |n| format!(
                "{} rows",
                html::count(n as u64)
            ))
        );
    }
    body.push_str("</ul>\n");
    if edits {
        body.push_str("<p><a href=\"/console/directory/people\">Find a person</a>: their channels, and a code to link a chat account.</p>\n");
        let error_line = if errors.is_empty() {
            String::new()
        } else {
            "<p class=\"error-message\" id=\"file-error\"><span class=\"visually-hidden\">Error:</span> The file was not uploaded; see the list above</p>\n".to_owned()
        };
        let _ = write!(
            body,
            "<h2>Upload a file</h2>\n<form method=\"post\" action=\"/console/directory\" enctype=\"multipart/form-data\" novalidate>\n{}\n\
             <div class=\"field\"><label for=\"file\">A CSV file of agencies, teams, people or champions</label>\n\
             <p class=\"hint\" id=\"file-hint\">Its header row says which it is. It replaces that file. Every row is checked first, as <code>cascade import</code> checks it; if any row is wrong, nothing is changed.</p>\n\
             {}<input class=\"file-input\" id=\"file\" name=\"file\" type=\"file\" accept=\".csv,text/csv\" aria-describedby=\"file-hint{}\"></div>\n\
             <button class=\"button\" type=\"submit\">Upload</button>\n</form>",
            csrf_field(csrf),
            error_line,
            if errors.is_empty() { "" } else { " file-error" }
        );
    }
    body
}

pub(crate) async fn directory<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::reads_everything).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match Project::open(&console.root) {
        Ok(p) => p,
        Err(e) => return html::failed(Some(&signed.viewer()), "cannot open the project", &e),
    };
    page(
        StatusCode::OK,
        "Directory",
        Some(&signed.viewer()),
        &body(&project, &signed.csrf, signed.role.edits(), &[], None),
    )
}

/// A file name safe to write in a temporary folder.
fn plain_name(name: &str) -> String {
    let name: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    if name.is_empty() || name.starts_with('.') {
        "upload.csv".to_owned()
    } else {
        name
    }
}

pub(crate) async fn upload<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let mut csrf = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let Ok(bytes) = field.bytes().await else {
                    return html::message(
                        StatusCode::BAD_REQUEST,
                        "The upload did not arrive whole",
                        None,
                        "Try again.",
                    );
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "file" => file = Some((file_name.unwrap_or_default(), bytes.to_vec())),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => {
                return html::message(
                    StatusCode::BAD_REQUEST,
                    "The upload did not arrive whole",
                    None,
                    "The file may be larger than 32 MB. Try again with a smaller file.",
                );
            }
        }
    }
    let signed = match session::for_post(&console, &headers, &csrf, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    let project = match Project::open(&console.root) {
        Ok(p) => p,
        Err(e) => return html::failed(Some(&viewer), "cannot open the project", &e),
    };
    let refuse = |problems: Vec<String>| {
        let errors: Vec<(String, String)> = problems
            .into_iter()
            .map(|p| ("file".to_owned(), p))
            .collect();
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Directory",
            Some(&viewer),
            &body(&project, &signed.csrf, true, &errors, None),
        )
    };
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return refuse(vec!["Choose a CSV file to upload".to_owned()]);
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return refuse(vec![format!(
            "{name}: the file is not UTF-8 text\n  help: save it from your spreadsheet as \"CSV UTF-8\""
        )]);
    };
    let Ok(scratch) = tempfile::tempdir() else {
        return html::failed(Some(&viewer), "cannot make a temporary folder", &"tempdir");
    };
    // Problems name the file as uploaded, not the temporary folder.
    let shown = |problems: Vec<String>, folder: &Path| -> Vec<String> {
        let prefix = format!("{}/", folder.display());
        problems
            .into_iter()
            .map(|p| p.replace(&prefix, ""))
            .collect()
    };
    let uploaded = scratch.path().join(plain_name(&name));
    if let Err(e) = std::fs::write(&uploaded, &text) {
        return html::failed(Some(&viewer), "cannot keep an upload", &e);
    }
    let parsed = match read_csv(&uploaded) {
        Ok(f) => f,
        Err(errors) => {
            return refuse(shown(
                errors.iter().map(ToString::to_string).collect(),
                scratch.path(),
            ));
        }
    };
    let kind = parsed.kind();
    // The directory folder as it would be, checked as `cascade check` does.
    let folder = scratch.path().join("directory");
    if let Err(e) = std::fs::create_dir(&folder) {
        return html::failed(Some(&viewer), "cannot make a temporary folder", &e);
    }
    for other in KINDS.into_iter().filter(|k| *k != kind) {
        let from = project.directory_dir().join(other.file_name());
        if from.exists()
            && let Err(e) = std::fs::copy(&from, folder.join(other.file_name()))
        {
            return html::failed(Some(&viewer), "cannot copy a directory file", &e);
        }
    }
    let target_in_scratch = folder.join(kind.file_name());
    if let Err(e) = std::fs::write(&target_in_scratch, &text) {
        return html::failed(Some(&viewer), "cannot keep an upload", &e);
    }
    let (_, errors) = Directory::load_dir(&folder, &project.taxonomy);
    if !errors.is_empty() {
        return refuse(shown(
            errors.iter().map(ToString::to_string).collect(),
            &folder,
        ));
    }
    let target = project.directory_dir().join(kind.file_name());
    let before = std::fs::read_to_string(&target)
        .ok()
        .map(|t| sha256_hex(&t));
    // As `cascade import` does: leavers and movers of running rollouts
    // stop being chased in the same transaction.
    let calendar = match cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    ) {
        Ok(calendar) => calendar,
        Err(e) => return html::failed(Some(&viewer), "cannot read the time zone", &e),
    };
    let summary = match cascade_engine::directory_import::import_directory(
        &*console.store,
        &project.taxonomy,
        &calendar,
        &[(target.clone(), parsed)],
        chrono::Utc::now(),
        false,
    )
    .await
    {
        Ok(imported) => imported.files.into_iter().next().unwrap_or_default(),
        Err(cascade_engine::directory_import::ImportError::Store(
            cascade_store::StoreError::Rejected(errors),
        )) => {
            return refuse(errors.iter().map(ToString::to_string).collect());
        }
        Err(e) => return html::failed(Some(&viewer), "cannot import a directory file", &e),
    };
    if let Err(e) = crate::content::write_whole(&target, &text) {
        return html::failed(Some(&viewer), "cannot write a directory file", &e);
    }
    if let Err(r) = audit::record(
        &console,
        &signed,
        "directory.upload",
        kind.file_name(),
        before,
        Some(sha256_hex(&text)),
    )
    .await
    {
        return r;
    }
    tracing::info!(
        user = signed.user.id,
        file = kind.file_name(),
        "console directory upload imported"
    );
    page(
        StatusCode::OK,
        "Directory",
        Some(&viewer),
        &body(
            &project,
            &signed.csrf,
            true,
            &[],
            Some(&format!(
                "{} uploaded and imported: {summary}.",
                kind.file_name()
            )),
        ),
    )
}
