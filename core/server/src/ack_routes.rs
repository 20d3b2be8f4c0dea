//! The acknowledgement (`/ack/{token}`), follow-up answer
//! (`/answer/{token}/{n}`) and champion confirmation (`/confirm/{token}`)
//! routes. Each handler only reads the request, verifies its token, asks
//! the engine's acknowledgement service ([`Responses`]) and renders the
//! page: the rules of who may do what, and the records, live there. A GET
//! never records anything (mail scanners follow links); a POST answers
//! only after its transaction committed (acknowledgements in groups).

use crate::client::Cidr;
use crate::page::{html, lock};
use crate::rate_limit::RateLimit;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cascade_engine::ack::pages::{
    CheckAsk, CheckProblem, RefresherAsk, check_page, reason_page, refresher_done_page,
    refresher_page,
};
use cascade_engine::ack::{
    AckKeys, CascadeForm, Claims, ItemSummary, Refusal, TokenError, check_cascade,
    pages::answer_page as answer_page_html, pages::answered_page, pages::cascade_form_page,
    pages::cascade_recorded_page, pages::confirm_page, pages::refusal_page, pages::thanks_page,
    pages::unavailable_page,
};
use cascade_engine::respond::{
    self, CheckChoice, Checked, ChosenAnswer, Denied, QuestionState, Responses, Via, team_name,
};
use cascade_model::content::{Taxonomy, parse_item};
use cascade_model::time::millis;
use cascade_privacy::{PrivacyConfig, PrivacyGuard};
use cascade_store::{AckMethod, AllStores, DeliveryInfo};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};

/// The channel acknowledgements through a link are recorded under.
const WEB_CHANNEL: &str = "web";

/// The server's notion of now; tests hold their own.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What the acknowledgement routes need, over a store `S`.
pub struct ServerState<S> {
    /// Checks and records; acknowledgements through the group commit.
    responses: Responses<S>,
    keys: Arc<AckKeys>,
    /// To read stored item versions for their title and reflection questions.
    taxonomy: Taxonomy,
    /// The partnership's zone: a session date is "not in the future" there.
    time_zone: Tz,
    clock: Clock,
    pub(crate) rate_limit: Option<RateLimit>,
    /// Refuses a champion's note that holds a child's identifying detail.
    guard: Arc<PrivacyGuard>,
    /// Peers whose `X-Forwarded-For` names the client for the rate limit.
    pub(crate) trusted_proxies: Vec<Cidr>,
    /// Item versions never change, so what the pages show of one is kept.
    items: Mutex<HashMap<(String, String), Arc<ItemSummary>>>,
}

impl<S: AllStores> ServerState<S> {
    /// The state with the default rate limit.
    pub fn new(
        store: Arc<S>,
        keys: Arc<AckKeys>,
        taxonomy: Taxonomy,
        time_zone: Tz,
        clock: Clock,
    ) -> ServerState<S> {
        ServerState {
            responses: Responses::with_group_commit(store),
            keys,
            taxonomy,
            time_zone,
            clock,
            rate_limit: Some(RateLimit::default()),
            guard: Arc::new(
                PrivacyGuard::new(&PrivacyConfig::default())
                    .expect("the default privacy settings are valid"),
            ),
            trusted_proxies: Vec::new(),
            items: Mutex::new(HashMap::new()),
        }
    }

    /// The partnership's privacy guard instead of the built-in detectors
    /// alone (no deny-listed names, no personal email domains).
    pub fn with_privacy_guard(mut self, guard: PrivacyGuard) -> ServerState<S> {
        self.guard = Arc::new(guard);
        self
    }

    /// Another rate limit, or none.
    pub fn with_rate_limit(mut self, rate_limit: Option<RateLimit>) -> ServerState<S> {
        self.rate_limit = rate_limit;
        self
    }

    /// The reverse proxies whose `X-Forwarded-For` names the client the
    /// rate limit counts against; without any, the TCP peer is the client.
    pub fn with_trusted_proxies(mut self, trusted: Vec<Cidr>) -> ServerState<S> {
        self.trusted_proxies = trusted;
        self
    }

    fn store(&self) -> &S {
        self.responses.store()
    }

    /// The title and reflection questions of an item version. A version the
    /// store cannot give shows its id and no questions.
    async fn item(&self, id: &str, version: &str) -> Arc<ItemSummary> {
        let key = (id.to_owned(), version.to_owned());
        if let Some(summary) = lock(&self.items).get(&key) {
            return summary.clone();
        }
        let stored = match self.store().item_versions(id).await {
            Ok(versions) => versions.into_iter().find(|v| v.version.0 == version),
            Err(e) => {
                tracing::error!(item = id, "cannot read the item for a page: {e}");
                None
            }
        };
        let Some(stored) = stored else {
            return Arc::new(ItemSummary::unknown(id.to_owned()));
        };
        let summary = match parse_item(
            std::path::Path::new(&format!("{id} (stored)")),
            &stored.source,
            &self.taxonomy,
        ) {
            Ok(item) => ItemSummary::of(&item),
            Err(_) => ItemSummary::unknown(stored.title),
        };
        let summary = Arc::new(summary);
        lock(&self.items).insert(key, summary.clone());
        summary
    }

    async fn person_name(&self, id: &str) -> Option<String> {
        match self.store().person(id).await {
            Ok(person) => person.map(|p| p.person.display_name),
            Err(e) => {
                tracing::error!("cannot read a person for a page: {e}");
                None
            }
        }
    }

    /// The ids of the teams with a cascade confirmation of the item, by
    /// anyone; none when the store cannot say (the page still works).
    async fn recorded_teams(&self, item_id: &str) -> Vec<String> {
        match self.store().confirmations_of(item_id).await {
            Ok(rows) => rows.into_iter().map(|c| c.team_id).collect(),
            Err(e) => {
                tracing::error!(item = item_id, "cannot read confirmations for a page: {e}");
                Vec::new()
            }
        }
    }

    /// The teams a person covers as a champion; none for anyone else, or
    /// when the store cannot say.
    async fn teams_if_champion(&self, person: &str) -> Vec<(String, String)> {
        match self.responses.champion_teams(person).await {
            Ok(teams) => teams,
            Err(Denied::Refused(_)) => Vec::new(),
            Err(Denied::Unavailable(e)) => {
                tracing::error!("cannot read a champion's teams for a page: {e}");
                Vec::new()
            }
        }
    }

    fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.time_zone).date_naive()
    }

    /// The token's delivery and the teams its person covers, if it was
    /// sent to them and they champion a team.
    async fn champion_delivery(
        &self,
        claims: &Claims,
    ) -> Result<(DeliveryInfo, Vec<(String, String)>), Denied> {
        let delivery = self
            .responses
            .delivery_for(&claims.person, claims.delivery)
            .await?;
        let teams = self.responses.champion_teams(&claims.person).await?;
        Ok((delivery, teams))
    }

    /// The claims of a valid token; otherwise the page refusing it.
    async fn claims(
        &self,
        token: &str,
        log: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Claims, Response> {
        match self.keys.verify(token, now) {
            Ok(claims) => Ok(claims),
            Err(e) => Err(self
                .refused(Refusal::Token(e), None, None, e.code(), log, now)
                .await),
        }
    }

    /// The page for what the acknowledgement service denied the token's
    /// person (`log`: what a refused POST was, to log and count it).
    async fn denied(
        &self,
        denied: Denied,
        claims: &Claims,
        log: Option<&str>,
        now: DateTime<Utc>,
    ) -> Response {
        match denied {
            Denied::Refused(refused) => {
                let (refusal, reason) = in_words(refused);
                self.refused(
                    refusal,
                    Some(&claims.person),
                    Some(claims.delivery),
                    reason,
                    log,
                    now,
                )
                .await
            }
            Denied::Unavailable(e) => unavailable(e),
        }
    }

    /// The page for a refused request. A refused POST is counted (by
    /// reason, per minute), never logged a row each: refused requests are
    /// unauthenticated, and anyone may send as many as the rate limit lets.
    async fn refused(
        &self,
        refusal: Refusal,
        person: Option<&str>,
        delivery: Option<i64>,
        reason: &str,
        log: Option<&str>,
        now: DateTime<Utc>,
    ) -> Response {
        if let Some(what) = log {
            tracing::info!(person, delivery, reason, "refused a {what}");
            if let Err(e) = self
                .store()
                .count_refusal(
                    WEB_CHANNEL,
                    AckMethod::Link,
                    &format!("{what}: {reason}"),
                    millis(now),
                )
                .await
            {
                tracing::error!("cannot count a refused {what}: {e}");
            }
        }
        html(refusal_status(refusal), refusal_page(refusal))
    }
}

/// What the acknowledgement service refused, as the pages show it and the
/// reason logged and counted. Links that are not valid for any reason that
/// would reveal whether a delivery or person exists share one page.
fn in_words(refused: respond::Refused) -> (Refusal, &'static str) {
    use respond::Refused::*;
    match refused {
        NoSuchDelivery => (Refusal::NotValid, "no such delivery"),
        SomeoneElse => (Refusal::NotValid, "the link was made for someone else"),
        NotTheirLearning => (
            Refusal::NotValid,
            "the delivery is about someone else's learning",
        ),
        NotAFollowUp => (Refusal::NotValid, "not a follow-up question"),
        NoSuchFollowUp => (Refusal::NotValid, "the follow-up is not in the rollout"),
        NoSuchAnswer => (Refusal::NotValid, "no such answer"),
        NotAChampion => (Refusal::NotAChampion, "not a champion"),
        NotInTeam => (Refusal::NotValid, "not in the post's team"),
        NotARefresher => (Refusal::NotValid, "not a refresher"),
    }
}

/// The store failed, or the group commit did: nothing was recorded.
fn unavailable(e: impl Display) -> Response {
    tracing::error!("acknowledgement route: {e}");
    html(StatusCode::SERVICE_UNAVAILABLE, unavailable_page())
}

fn refusal_status(refusal: Refusal) -> StatusCode {
    use TokenError::*;
    match refusal {
        Refusal::Token(Malformed) => StatusCode::BAD_REQUEST,
        Refusal::Token(Expired | RetiredKey | UnknownKey) => StatusCode::GONE,
        Refusal::Token(Forged) | Refusal::NotValid | Refusal::NotAChampion => StatusCode::FORBIDDEN,
    }
}

fn via(now: DateTime<Utc>) -> Via<'static> {
    Via {
        channel: WEB_CHANNEL,
        at: millis(now),
    }
}

/// Shows what the link is for; records nothing.
pub(crate) async fn ack_page<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path(token): Path<String>,
) -> Response {
    let now = (s.clock)();
    let claims = match s.claims(&token, None, now).await {
        Ok(claims) => claims,
        Err(page) => return page,
    };
    let delivery = match s
        .responses
        .delivery_for(&claims.person, claims.delivery)
        .await
    {
        Ok(delivery) => delivery,
        Err(denied) => return s.denied(denied, &claims, None, now).await,
    };
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    let name = s.person_name(&delivery.recipient_id).await;
    if !item.check_questions.is_empty() {
        // Check questions first, unless the version is acknowledged already.
        match s
            .responses
            .check_state(&claims.person, claims.delivery, &item.check_questions)
            .await
        {
            Ok(Checked::Ask(states)) => {
                return html(
                    StatusCode::OK,
                    check_page(&item, name.as_deref(), &asks(&states, &[], &[])),
                );
            }
            Ok(Checked::Acknowledged(_)) => {}
            Err(denied) => return s.denied(denied, &claims, None, now).await,
        }
    }
    // Every page is sent `Cache-Control: no-store`, so an
    // OFFICIAL-SENSITIVE item read here is kept by no cache.
    html(StatusCode::OK, confirm_page(&item, name.as_deref()))
}

/// The questions of the check page as the service left them: `missing`,
/// those the form gave no answer to; `wrong`, those it answered wrong.
fn asks(states: &[QuestionState], missing: &[u32], wrong: &[u32]) -> Vec<CheckAsk> {
    states
        .iter()
        .map(|q| CheckAsk {
            number: q.number,
            answered: q.answered,
            tries: q.tries,
            problem: if q.answered {
                None
            } else if missing.contains(&q.number) {
                Some(CheckProblem::Missing)
            } else if q.wrong_now || wrong.contains(&q.number) {
                Some(CheckProblem::Wrong)
            } else {
                None
            },
        })
        .collect()
}

/// The answers a check page's form sent: `q{n}` the option chosen and
/// `seen{n}` the tries the page was shown after, for each question not yet
/// answered right. Anything else in the form is ignored; an answer that is
/// not a number counts as none.
fn check_choices(
    form: &[(String, String)],
    states: &[QuestionState],
) -> (Vec<CheckChoice>, Vec<u32>) {
    let field = |name: String| {
        form.iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.trim().parse::<u32>().ok())
    };
    let mut choices = Vec::new();
    let mut missing = Vec::new();
    for q in states.iter().filter(|q| !q.answered) {
        match field(format!("q{}", q.number)) {
            Some(chosen) => choices.push(CheckChoice {
                question: q.number,
                chosen,
                // A form without it was not shown the question: it counts
                // only as a first answer.
                seen: field(format!("seen{}", q.number)).unwrap_or(0),
            }),
            None => missing.push(q.number),
        }
    }
    (choices, missing)
}

/// Records the acknowledgement (a repeat changes nothing) and thanks.
pub(crate) async fn acknowledge<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let log = Some("acknowledgement");
    let now = (s.clock)();
    let claims = match s.claims(&token, log, now).await {
        Ok(claims) => claims,
        Err(page) => return page,
    };
    // The token in the path is what makes the POST the person's own: a
    // page elsewhere cannot make one without it.
    let delivery = match s
        .responses
        .delivery_for(&claims.person, claims.delivery)
        .await
    {
        Ok(delivery) => delivery,
        Err(denied) => return s.denied(denied, &claims, log, now).await,
    };
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    let acknowledged = if item.check_questions.is_empty() {
        s.responses
            .acknowledge(&claims.person, claims.delivery, AckMethod::Link, via(now))
            .await
    } else {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        let states = match s
            .responses
            .check_state(&claims.person, claims.delivery, &item.check_questions)
            .await
        {
            Ok(Checked::Ask(states)) => states,
            // Acknowledged before: the first stands, nothing is asked.
            Ok(Checked::Acknowledged(_)) => Vec::new(),
            Err(denied) => return s.denied(denied, &claims, log, now).await,
        };
        let (choices, missing) = check_choices(&form, &states);
        if !missing.is_empty() {
            // Nothing counts until every question waiting has an answer.
            let name = s.person_name(&delivery.recipient_id).await;
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                check_page(&item, name.as_deref(), &asks(&states, &missing, &[])),
            );
        }
        match s
            .responses
            .check_and_acknowledge(
                &claims.person,
                claims.delivery,
                &item.check_questions,
                &choices,
                AckMethod::Link,
                via(now),
            )
            .await
        {
            Ok(Checked::Acknowledged(acknowledged)) => Ok(acknowledged),
            Ok(Checked::Ask(states)) => {
                let name = s.person_name(&delivery.recipient_id).await;
                return html(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    check_page(&item, name.as_deref(), &asks(&states, &[], &[])),
                );
            }
            Err(denied) => Err(denied),
        }
    };
    if let Err(denied) = acknowledged {
        return s.denied(denied, &claims, log, now).await;
    }
    // A champion goes on to record their team briefings, on the form the
    // same token opens (relative, so a base URL with a path works too).
    let teams = s.teams_if_champion(&claims.person).await;
    let confirm = format!("../confirm/{token}");
    html(
        StatusCode::OK,
        thanks_page(
            &item.title,
            &item.reflection_questions,
            (!teams.is_empty()).then_some((confirm.as_str(), teams.as_slice())),
        ),
    )
}

/// The follow-up answer a link chooses, once its token is checked and the
/// service agrees it is the person's own follow-up; otherwise the page to
/// answer with. `log` names the route in refusal logs (a GET logs none).
async fn chosen_answer<S: AllStores>(
    s: &ServerState<S>,
    token: &str,
    n: usize,
    log: Option<&'static str>,
    now: DateTime<Utc>,
) -> Result<ChosenAnswer, Response> {
    let claims = s.claims(token, log, now).await?;
    match s
        .responses
        .follow_up_answer(&claims.person, claims.delivery, n)
        .await
    {
        Ok(chosen) => Ok(chosen),
        Err(denied) => Err(s.denied(denied, &claims, log, now).await),
    }
}

/// Shows the question and the chosen answer; records nothing.
pub(crate) async fn answer_page<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path((token, n)): Path<(String, usize)>,
) -> Response {
    let now = (s.clock)();
    let chosen = match chosen_answer(&s, &token, n, None, now).await {
        Ok(chosen) => chosen,
        Err(page) => return page,
    };
    let delivery = &chosen.delivery;
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    html(
        StatusCode::OK,
        answer_page_html(&item.title, &chosen.question, &chosen.answer),
    )
}

/// Records the answer (the first counts) and thanks.
pub(crate) async fn record_answer<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path((token, n)): Path<(String, usize)>,
) -> Response {
    let now = (s.clock)();
    let chosen = match chosen_answer(&s, &token, n, Some("answer"), now).await {
        Ok(chosen) => chosen,
        Err(page) => return page,
    };
    match s.responses.answer(&chosen, via(now)).await {
        Ok(recorded) => {
            // Not used: the reasons, each a form posting to the same token
            // (relative, so a base URL with a path works too).
            let reasons: Vec<(String, String)> = if chosen.used {
                Vec::new()
            } else {
                chosen
                    .reasons
                    .iter()
                    .zip(1..)
                    .map(|(reason, r)| (reason.clone(), format!("../../reason/{token}/{r}")))
                    .collect()
            };
            html(
                StatusCode::OK,
                answered_page(&chosen.answer, recorded.is_first(), &reasons),
            )
        }
        Err(e) => unavailable(e),
    }
}

/// Records a reason for not using the learning (the first stands).
pub(crate) async fn record_reason<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path((token, n)): Path<(String, usize)>,
) -> Response {
    let log = Some("reason");
    let now = (s.clock)();
    let claims = match s.claims(&token, log, now).await {
        Ok(claims) => claims,
        Err(page) => return page,
    };
    let chosen = match s
        .responses
        .follow_up_reason(&claims.person, claims.delivery, n)
        .await
    {
        Ok(chosen) => chosen,
        Err(denied) => return s.denied(denied, &claims, log, now).await,
    };
    match s.responses.reason(&chosen).await {
        Ok(recorded) => html(
            StatusCode::OK,
            reason_page(&chosen.reason, recorded.is_first()),
        ),
        Err(e) => unavailable(e),
    }
}

/// A refresher's question (issue 19), from the signed link in its email;
/// records nothing.
pub(crate) async fn refresher_question<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path(token): Path<String>,
) -> Response {
    refresher(&s, &token, None).await
}

/// Takes the refresher's answer (`answer`, the option's number, and
/// `seen`, the tries the page was shown after): right, thanks; wrong, the
/// explanation and the question again.
pub(crate) async fn answer_refresher<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.trim().parse::<u32>().ok())
    };
    let answer = field("answer").map(|chosen| (chosen, field("seen").unwrap_or(0)));
    refresher(&s, &token, Some(answer)).await
}

/// The refresher page for a GET (`form`: `None`) or a POST (`Some`, with
/// the answer if one was chosen).
async fn refresher<S: AllStores>(
    s: &ServerState<S>,
    token: &str,
    form: Option<Option<(u32, u32)>>,
) -> Response {
    let log = form.is_some().then_some("refresher answer");
    let now = (s.clock)();
    let claims = match s.claims(token, log, now).await {
        Ok(claims) => claims,
        Err(page) => return page,
    };
    let delivery = match s
        .responses
        .delivery_for(&claims.person, claims.delivery)
        .await
    {
        Ok(delivery) => delivery,
        Err(denied) => return s.denied(denied, &claims, log, now).await,
    };
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    let choice = form.flatten();
    let refreshed = match s
        .responses
        .refresher_answer(
            &claims.person,
            claims.delivery,
            &item.check_questions,
            choice,
            via(now),
        )
        .await
    {
        Ok(refreshed) => refreshed,
        Err(denied) => return s.denied(denied, &claims, log, now).await,
    };
    let question = &item.check_questions[(refreshed.question as usize).saturating_sub(1)];
    if refreshed.answered {
        return html(
            StatusCode::OK,
            refresher_done_page(&item.title, &question.explanation, refreshed.right_now),
        );
    }
    let problem = match form {
        Some(None) => Some(CheckProblem::Missing),
        Some(Some(_)) if refreshed.wrong_now => Some(CheckProblem::Wrong),
        _ => None,
    };
    let name = s.person_name(&delivery.recipient_id).await;
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html(
        status,
        refresher_page(
            &item,
            name.as_deref(),
            RefresherAsk {
                question: refreshed.question,
                tries: refreshed.tries,
                problem,
            },
        ),
    )
}

/// The champion's form for recording a cascade to one of their teams.
pub(crate) async fn cascade_page<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path(token): Path<String>,
) -> Response {
    let now = (s.clock)();
    let claims = match s.claims(&token, None, now).await {
        Ok(claims) => claims,
        Err(page) => return page,
    };
    let (delivery, teams) = match s.champion_delivery(&claims).await {
        Ok(found) => found,
        Err(denied) => return s.denied(denied, &claims, None, now).await,
    };
    let today = s.today(now).to_string();
    let form = CascadeForm {
        team: if teams.len() == 1 {
            teams[0].0.clone()
        } else {
            String::new()
        },
        session_date: today.clone(),
        ..CascadeForm::default()
    };
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    let name = s.person_name(&claims.person).await.unwrap_or_default();
    let recorded = s.recorded_teams(&delivery.item_id).await;
    html(
        StatusCode::OK,
        cascade_form_page(&item.title, &name, &teams, &recorded, &form, &[], &today),
    )
}

/// Checks and records a champion's confirmation.
pub(crate) async fn confirm_cascade<S: AllStores>(
    State(s): State<Arc<ServerState<S>>>,
    Path(token): Path<String>,
    Form(form): Form<CascadeForm>,
) -> Response {
    let log = Some("cascade confirmation");
    let now = (s.clock)();
    let claims = match s.claims(&token, log, now).await {
        Ok(claims) => claims,
        Err(page) => return page,
    };
    let (delivery, teams) = match s.champion_delivery(&claims).await {
        Ok(found) => found,
        Err(denied) => return s.denied(denied, &claims, log, now).await,
    };
    let today = s.today(now);
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    let checked = match check_cascade(&form, &teams, today, &s.guard) {
        Ok(checked) => checked,
        Err(problems) => {
            let name = s.person_name(&claims.person).await.unwrap_or_default();
            let recorded = s.recorded_teams(&delivery.item_id).await;
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                cascade_form_page(
                    &item.title,
                    &name,
                    &teams,
                    &recorded,
                    &form,
                    &problems,
                    &today.to_string(),
                ),
            );
        }
    };
    match s
        .responses
        .confirm_cascade(&claims.person, &delivery.item_id, &checked, via(now))
        .await
    {
        Ok(recorded) => html(
            StatusCode::OK,
            cascade_recorded_page(
                &item.title,
                team_name(&teams, &checked.team_id),
                !recorded.is_first(),
            ),
        ),
        Err(e) => unavailable(e),
    }
}
