//! The console's HTML: escaping, the page frame, and the GOV.UK Design
//! System patterns it uses (error summary linking to each field, one
//! thing per page). Every page is built here and in the page modules from
//! escaped text; no page carries an inline style or script (the rollout
//! page's live progress is the console's own progress.js), so the
//! Content-Security-Policy needs no 'unsafe-inline'.

use crate::auth::Role;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::fmt::Write as _;

/// Every console response's security headers. Styles come only from the
/// console's own stylesheet and scripts only from the console itself (its
/// one script, progress.js, asks the console alone); nothing inline runs;
/// forms post only to the console; no page may be framed.
/// The one frame a page has is the item page's email preview, from the
/// console itself and sandboxed (see `content::email_preview`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        // The stylesheet names its own caching, and the email preview its
        // own (stricter) policy and who may frame it.
        let own = [
            header::CACHE_CONTROL,
            header::CONTENT_SECURITY_POLICY,
            header::X_FRAME_OPTIONS,
        ];
        if own.contains(&name) && headers.contains_key(&name) {
            continue;
        }
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Text made safe for HTML content and attribute values.
pub fn esc(text: &str) -> String {
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

/// Who the page is for: their name, role and session's CSRF token (for
/// the sign-out form in the header). `None` on the sign-in pages.
pub struct Viewer<'a> {
    pub name: &'a str,
    pub role: Role,
    pub csrf: &'a str,
}

/// A whole page: the frame (skip link, header with navigation and sign
/// out, main) around `body`.
pub fn page(status: StatusCode, title: &str, viewer: Option<&Viewer<'_>>, body: &str) -> Response {
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} - cascade</title>\n<link rel=\"stylesheet\" href=\"/console/style.css\">\n</head>\n<body>\n\
         <a class=\"skip-link\" href=\"#main\">Skip to main content</a>\n\
         <header class=\"header\"><div class=\"width\">\n<a class=\"brand\" href=\"/console\">cascade</a>\n",
        esc(title)
    );
    if let Some(viewer) = viewer {
        html.push_str(
            "<nav aria-label=\"Main\"><ul class=\"nav\">\n<li><a href=\"/console\">Home</a></li>\n",
        );
        if viewer.role.reads_everything() {
            html.push_str(
                "<li><a href=\"/console/content\">Content</a></li>\n<li><a href=\"/console/rollouts\">Rollouts</a></li>\n<li><a href=\"/console/directory\">Directory</a></li>\n<li><a href=\"/console/reports\">Reports</a></li>\n",
            );
        }
        if viewer.role.administers() {
            html.push_str("<li><a href=\"/console/users\">Users</a></li>\n<li><a href=\"/console/audit\">Audit log</a></li>\n<li><a href=\"/console/erase\">Erasure</a></li>\n");
        }
        html.push_str("</ul></nav>\n");
        let _ = write!(
            html,
            "<div class=\"account\"><span>Signed in as {} ({})</span>\n\
             <form method=\"post\" action=\"/console/sign-out\">{}<button class=\"button button-secondary\" type=\"submit\">Sign out</button></form></div>\n",
            esc(viewer.name),
            viewer.role.as_str(),
            csrf_field(viewer.csrf)
        );
    }
    let _ = write!(
        html,
        "</div></header>\n<main id=\"main\" class=\"width\">\n{body}\n</main>\n</body>\n</html>\n"
    );
    (status, Html(html)).into_response()
}

/// The hidden field every form carries.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A form that posts to `action` with one button.
pub fn button_form(action: &str, csrf: &str, label: &str, secondary: bool) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}<button class=\"button{}\" type=\"submit\">{}</button></form>",
        esc(action),
        csrf_field(csrf),
        if secondary { " button-secondary" } else { "" },
        esc(label)
    )
}

/// The error summary: "There is a problem", each message a link to the
/// field it is about (by id).
pub fn error_summary(errors: &[(String, String)]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        "<div class=\"error-summary\" role=\"alert\" aria-labelledby=\"error-summary-title\">\n\
         <h2 id=\"error-summary-title\">There is a problem</h2>\n<ul>\n",
    );
    for (field, message) in errors {
        let _ = writeln!(
            html,
            "<li><a href=\"#{}\">{}</a></li>",
            esc(field),
            multiline(message)
        );
    }
    html.push_str("</ul>\n</div>\n");
    html
}

/// The message of the error about `field`, if any, to go above the field
/// (its id is `<field>-error`, for the field's `aria-describedby`).
pub fn field_error(errors: &[(String, String)], field: &str) -> String {
    errors
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, m)| {
            format!(
                "<p class=\"error-message\" id=\"{field}-error\"><span class=\"visually-hidden\">Error:</span> {}</p>",
                multiline(m)
            )
        })
        .unwrap_or_default()
}

/// Text with its line breaks kept.
pub fn multiline(text: &str) -> String {
    esc(text).replace('\n', "<br>")
}

/// A simple message page.
pub fn message(
    status: StatusCode,
    title: &str,
    viewer: Option<&Viewer<'_>>,
    text: &str,
) -> Response {
    page(
        status,
        title,
        viewer,
        &format!("<h1>{}</h1>\n<p>{}</p>", esc(title), esc(text)),
    )
}

/// 403: signed in but not allowed, or a form without its token.
pub fn forbidden(viewer: Option<&Viewer<'_>>, text: &str) -> Response {
    message(StatusCode::FORBIDDEN, "You cannot do that", viewer, text)
}

/// 404 for a thing that does not exist.
pub fn not_found(viewer: Option<&Viewer<'_>>, text: &str) -> Response {
    message(StatusCode::NOT_FOUND, "Page not found", viewer, text)
}

/// 500: the error goes to the log, the page says what to do.
pub fn failed(viewer: Option<&Viewer<'_>>, what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!("console: {what}: {error}");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sorry, there is a problem with the service",
        viewer,
        "Try again later. The problem has been logged.",
    )
}

/// A 303 redirect after a form.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// "12 of 30" with a bar.
pub fn bar(label: &str, done: u64, total: u64) -> String {
    format!(
        "<span class=\"count\">{} of {}</span> <progress max=\"{}\" value=\"{}\" aria-label=\"{}: {} of {}\"></progress>",
        count(done),
        count(total),
        total.max(1),
        done.min(total),
        esc(label),
        count(done),
        count(total)
    )
}

/// A whole number with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            esc("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }
}
