//! Erasing a person (UK GDPR), for admins: the same erasure as `cascade
//! people erase`, recorded as made by the console user.

use crate::Console;
use crate::audit;
use crate::auth::Role;
use crate::html::{self, error_summary, esc, field_error, page};
use crate::session;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cascade_store::{Accounts, AllStores, EraseError, EraseRequest};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EraseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    force: Option<String>,
}

fn form_html(csrf: &str, form: &EraseForm, errors: &[(String, String)]) -> String {
    let described = |field: &str| {
        if errors.iter().any(|(f, _)| f == field) {
            format!(" aria-describedby=\"{field}-error\"")
        } else {
            String::new()
        }
    };
    format!(
        "{summary}<span class=\"caption\">Directory</span>\n<h1>Erase a person</h1>\n\
         <p>Erasure removes a person's name, email address, mobile, chat accounts and anything they typed, for a request under UK GDPR. Their acknowledgements and answers stay in reports under a code that does not identify them. It is recorded with your name, the time and the reason. <strong>It cannot be undone.</strong></p>\n\
         <form method=\"post\" action=\"/console/erase\" novalidate>\n{csrf}\n\
         <div class=\"field\"><label for=\"person\">Person id</label>{person_error}<input class=\"input\" id=\"person\" name=\"person\" type=\"text\" autocomplete=\"off\" value=\"{person}\"{person_desc}></div>\n\
         <div class=\"field\"><label for=\"reason\">Reason</label><p class=\"hint\" id=\"reason-hint\">A few words that do not name them, such as the request's reference.</p>{reason_error}<input class=\"input\" id=\"reason\" name=\"reason\" type=\"text\" autocomplete=\"off\" value=\"{reason}\" aria-describedby=\"reason-hint{reason_desc}\"></div>\n\
         <div class=\"field\">{force_error}<input id=\"force\" name=\"force\" type=\"checkbox\" value=\"yes\"{checked}> <label for=\"force\">Erase even if a rollout is still sending to them (what is queued for them is cancelled)</label></div>\n\
         <button class=\"button\" type=\"submit\">Erase this person for good</button>\n</form>\n",
        summary = error_summary(errors),
        csrf = html::csrf_field(csrf),
        person = esc(&form.person),
        person_error = field_error(errors, "person"),
        person_desc = described("person"),
        reason = esc(&form.reason),
        reason_error = field_error(errors, "reason"),
        reason_desc = if errors.iter().any(|(f, _)| f == "reason") {
            " reason-error"
        } else {
            ""
        },
        force_error = field_error(errors, "force"),
        checked = if form.force.is_some() { " checked" } else { "" },
    )
}

pub(crate) async fn form<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let signed = session::page_for(&console, &headers, Role::administers).await?;
    let viewer = signed.viewer();
    Ok(page(
        StatusCode::OK,
        "Erase a person",
        Some(&viewer),
        &form_html(&signed.csrf, &EraseForm::default(), &[]),
    ))
}

pub(crate) async fn erase<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Form(form): Form<EraseForm>,
) -> Result<Response, Response> {
    let signed = session::for_post(&console, &headers, &form.csrf, Role::administers).await?;
    let viewer = signed.viewer();
    let person = form.person.trim().to_owned();
    let again = |errors: Vec<(String, String)>| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Erase a person",
            Some(&viewer),
            &form_html(&signed.csrf, &form, &errors),
        )
    };
    if person.is_empty() {
        return Ok(again(vec![(
            "person".to_owned(),
            "Enter the person id, as in people.csv".to_owned(),
        )]));
    }
    let request = EraseRequest {
        person_id: person.clone(),
        by: format!("console:{}", signed.user.name),
        reason: form.reason.clone(),
        force: form.force.is_some(),
        now: cascade_model::time::millis(console.now()),
    };
    let erased = match console.store.erase_person(&request).await {
        Ok(erased) => erased,
        Err(EraseError::Store(e)) => return Err(html::failed(Some(&viewer), "cannot erase", &e)),
        Err(e) => {
            let field = match e {
                EraseError::Reason(_) => "reason",
                EraseError::StillSending { .. } | EraseError::InFlight(_) => "force",
                _ => "person",
            };
            let text = e.to_string();
            let text = text.split("\n  help: ").collect::<Vec<_>>().join(". ");
            return Ok(again(vec![(field.to_owned(), text)]));
        }
    };
    let pseudonym = &erased.record.pseudonym;
    audit::record(&console, &signed, "person.erase", pseudonym, None, None).await?;
    tracing::info!(user = signed.user.id, pseudonym = %pseudonym, "a person was erased in the console");
    let mut notes = String::new();
    for user in &erased.console_users {
        notes.push_str(&format!(
            "<li>They are also console user <strong>{}</strong>: the account is kept; stop it being used if they have left.</li>\n",
            esc(user)
        ));
    }
    for item in &erased.named_in_items {
        notes.push_str(&format!(
            "<li>The content item <strong>{}</strong> names them: edit it if it should not.</li>\n",
            esc(item)
        ));
    }
    Ok(page(
        StatusCode::OK,
        "Person erased",
        Some(&viewer),
        &format!(
            "<div class=\"notice\" role=\"status\"><h1>Person erased</h1>\n<p>{} is erased. Their records are kept as <code>{}</code> so reports stay true. The erasure is recorded with your name, the time and the reason.</p></div>\n\
             <h2>What you need to do now</h2>\n<ul>\n<li>Delete their rows from <code>directory/people.csv</code> and <code>champions.csv</code> (and any rollout file that names them): an upload or import that still lists them is refused.</li>\n{notes}</ul>\n",
            esc(&person),
            esc(pseudonym)
        ),
    ))
}
