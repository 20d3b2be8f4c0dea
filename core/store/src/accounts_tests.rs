//! The console's accounts and the channel states, on both stores.

use super::*;
use crate::both::on_both_stores;

/// The channel states' methods, unwrapped for the tests.
trait StatesForTests {
    async fn save(&self, states: &[(String, Option<String>)], now: i64);
    async fn states(&self) -> Vec<ChannelStateRow>;
}

impl<S: ChannelStates> StatesForTests for S {
    async fn save(&self, states: &[(String, Option<String>)], now: i64) {
        self.save_channel_states(states, now).await.unwrap()
    }
    async fn states(&self) -> Vec<ChannelStateRow> {
        self.channel_states().await.unwrap()
    }
}

async fn since_moves_only_when_the_state_changes_and_removed_channels_are_forgotten(
    store: impl StatesForTests,
) {
    let down = Some("its folder is a file".to_owned());
    store
        .save(&[("a".into(), None), ("b".into(), down.clone())], 1_000)
        .await;
    store
        .save(&[("a".into(), None), ("b".into(), down)], 2_000)
        .await;
    let rows = store.states().await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.channel.as_str(), r.up, r.since, r.seen_at))
            .collect::<Vec<_>>(),
        [("a", true, 1_000, 2_000), ("b", false, 1_000, 2_000)]
    );
    // Another reason is another state.
    store
        .save(
            &[("a".into(), None), ("b".into(), Some("gone".into()))],
            2_500,
        )
        .await;
    assert_eq!(store.states().await[1].since, 2_500);
    store.save(&[("b".into(), None)], 3_000).await;
    let rows = store.states().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].up, rows[0].reason.as_deref(), rows[0].since),
        (true, None, 3_000)
    );
    store.save(&[], 4_000).await;
    assert_eq!(store.states().await, []);
}

async fn a_set_up_token_works_once_until_it_expires_and_a_name_is_taken_once(store: impl Accounts) {
    let id = store
        .add_console_user("ann", "admin", None, "setup-1", 10_000, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .add_console_user("ann", "viewer", None, "setup-2", 10_000, 1_000)
            .await
            .unwrap(),
        None,
        "the name is taken"
    );
    let champion = store
        .add_console_user("cat", "champion", Some("p-3"), "setup-3", 10_000, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(id, champion);

    let found = store
        .console_user_by_setup("setup-1", 9_999)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.name.as_str(), found.role.as_str()),
        (id, "ann", "admin")
    );
    assert_eq!((found.password_hash, found.created_at), (None, 1_000));
    assert_eq!(
        store
            .console_user_by_setup("setup-1", 10_000)
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store
            .console_user("cat")
            .await
            .unwrap()
            .unwrap()
            .person_id
            .as_deref(),
        Some("p-3")
    );

    store
        .create_console_session("s-1", id, "csrf-1", 2_000)
        .await
        .unwrap();
    store.set_console_password(id, "argon-1").await.unwrap();
    assert_eq!(
        store.console_user_by_setup("setup-1", 3_000).await.unwrap(),
        None,
        "used up"
    );
    assert_eq!(
        store.console_session("s-1").await.unwrap(),
        None,
        "a new password ends every session"
    );
    let ann = store.console_user("ann").await.unwrap().unwrap();
    assert_eq!(ann.password_hash.as_deref(), Some("argon-1"));

    assert!(
        store
            .renew_console_setup("ann", "setup-4", 20_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_console_setup("nobody", "setup-5", 20_000)
            .await
            .unwrap()
    );
    let renewed = store
        .console_user_by_setup("setup-4", 11_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        renewed.password_hash.as_deref(),
        Some("argon-1"),
        "kept until the new token is used"
    );

    let names: Vec<String> = store
        .console_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ann", "cat"]);
}

async fn sessions_are_touched_ended_and_ended_with_their_user(store: impl Accounts) {
    let ann = store
        .add_console_user("ann", "admin", None, "setup-1", 10_000, 1_000)
        .await
        .unwrap()
        .unwrap();
    let bob = store
        .add_console_user("bob", "editor", None, "setup-2", 10_000, 1_000)
        .await
        .unwrap()
        .unwrap();
    for (session, user) in [("s-1", ann), ("s-2", ann), ("s-3", bob)] {
        store
            .create_console_session(session, user, &format!("csrf-{session}"), 2_000)
            .await
            .unwrap();
    }
    store.touch_console_session("s-1", 2_500).await.unwrap();
    let session = store.console_session("s-1").await.unwrap().unwrap();
    assert_eq!(
        (
            session.user.name.as_str(),
            session.user.role.as_str(),
            session.csrf.as_str(),
            session.created_at,
            session.last_seen_at
        ),
        ("ann", "admin", "csrf-s-1", 2_000, 2_500)
    );
    store.end_console_session("s-1").await.unwrap();
    assert_eq!(store.console_session("s-1").await.unwrap(), None);
    assert_eq!(store.end_console_sessions_of(ann).await.unwrap(), 1);
    assert_eq!(store.console_session("s-2").await.unwrap(), None);
    assert!(store.console_session("s-3").await.unwrap().is_some());

    // Disabling ends the sessions and removes the password and token.
    store.set_console_password(bob, "argon-b").await.unwrap();
    store
        .create_console_session("s-4", bob, "csrf-4", 3_000)
        .await
        .unwrap();
    assert!(store.disable_console_user("bob").await.unwrap());
    assert!(!store.disable_console_user("nobody").await.unwrap());
    assert_eq!(store.console_session("s-4").await.unwrap(), None);
    let bob = store.console_user("bob").await.unwrap().unwrap();
    assert_eq!(bob.password_hash, None);
}

async fn single_sign_on_links_by_subject_then_by_name_and_refuses_the_disabled(
    store: impl Accounts,
) {
    // A new subject and a free name: a new account.
    let ann = store
        .sso_console_user("iss|a", "ann", "viewer", 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ann.name.as_str(), ann.role.as_str()), ("ann", "viewer"));
    // The same subject again, under another name and role: the same account.
    let again = store
        .sso_console_user("iss|a", "annie", "editor", 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.id, again.name.as_str(), again.role.as_str()),
        (ann.id, "ann", "editor")
    );
    // An account made by hand, not yet linked, is linked by its name.
    let bob = store
        .add_console_user("bob", "admin", None, "setup-b", 10_000, 1_000)
        .await
        .unwrap()
        .unwrap();
    let linked = store
        .sso_console_user("iss|b", "bob", "approver", 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((linked.id, linked.role.as_str()), (bob, "approver"));
    // Another subject with a name linked already: a name of its own.
    let other = store
        .sso_console_user("iss|other", "bob", "viewer", 4_000)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(other.id, bob);
    assert!(
        other.name.starts_with("bob (") && other.name.len() == "bob (12345678)".len(),
        "{}",
        other.name
    );
    // Disabled by an administrator: refused, by subject and by name.
    assert!(store.disable_console_user("ann").await.unwrap());
    assert_eq!(
        store
            .sso_console_user("iss|a", "ann", "viewer", 5_000)
            .await
            .unwrap(),
        Err(SsoRefusal::Disabled)
    );
    store
        .add_console_user("cat", "viewer", None, "setup-c", 10_000, 1_000)
        .await
        .unwrap();
    assert!(store.disable_console_user("cat").await.unwrap());
    assert_eq!(
        store
            .sso_console_user("iss|c", "cat", "viewer", 5_000)
            .await
            .unwrap(),
        Err(SsoRefusal::Disabled)
    );
    // A new set-up link brings a disabled account back.
    assert!(
        store
            .renew_console_setup("ann", "setup-a2", 20_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .sso_console_user("iss|a", "ann", "viewer", 6_000)
            .await
            .unwrap()
            .is_ok()
    );
}

async fn sign_in_failures_are_counted_in_their_window_and_old_ones_dropped(store: impl Accounts) {
    assert_eq!(
        store
            .record_sign_in_failure("h-ann", 1_000, 0)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .record_sign_in_failure("h-ann", 2_000, 0)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .record_sign_in_failure("h-bob", 2_500, 0)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.sign_in_failures("h-ann", 0).await.unwrap(), 2);
    assert_eq!(store.sign_in_failures("h-ann", 1_500).await.unwrap(), 1);
    assert_eq!(
        store
            .record_sign_in_failure("h-ann", 3_000, 1_500)
            .await
            .unwrap(),
        2
    );
    // The row before 1,500 was dropped.
    assert_eq!(store.sign_in_failures("h-ann", 0).await.unwrap(), 2);
}

async fn the_audit_log_reads_newest_first_up_to_its_limit(store: impl Accounts) {
    let entry = |at: i64, action: &str| AuditEntry {
        at,
        user_id: (at != 3).then_some(7),
        user_name: "ann".to_owned(),
        action: action.to_owned(),
        target: "nl-1".to_owned(),
        before_hash: (at == 2).then(|| "b".to_owned()),
        after_hash: Some("a".to_owned()),
    };
    for (at, action) in [(1, "item.approve"), (2, "item.edit"), (3, "user.add")] {
        store.audit(&entry(at, action)).await.unwrap();
    }
    assert_eq!(
        store.audit_log(2).await.unwrap(),
        [entry(3, "user.add"), entry(2, "item.edit")]
    );
    assert_eq!(store.audit_log(10).await.unwrap().len(), 3);
}

on_both_stores!(
    since_moves_only_when_the_state_changes_and_removed_channels_are_forgotten,
    a_set_up_token_works_once_until_it_expires_and_a_name_is_taken_once,
    sessions_are_touched_ended_and_ended_with_their_user,
    single_sign_on_links_by_subject_then_by_name_and_refuses_the_disabled,
    sign_in_failures_are_counted_in_their_window_and_old_ones_dropped,
    the_audit_log_reads_newest_first_up_to_its_limit,
);
