//! End-to-end tests of the plugin host against real plugin libraries built
//! by the workspace: the first-party `file` plugin and the faulty test
//! plugins in plugins/testing/.

use cascade_plugin_api::{
    Action, Format, InboundKind, Message, MessagePart, Recipient, SendRequest, SendResult,
};
use cascade_plugin_host::{
    ChannelConfig, Inbound, PluginError, PluginFile, PluginHost, PluginsConfig,
};
use cascade_test_support::plugin_library;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::sync::mpsc;

fn files(crates: &[&str]) -> Vec<PluginFile> {
    crates
        .iter()
        .map(|c| PluginFile {
            path: plugin_library(c),
        })
        .collect()
}

fn load(
    crates: &[&str],
    config: PluginsConfig,
) -> (
    PluginHost,
    Vec<PluginError>,
    mpsc::UnboundedReceiver<Inbound>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let report = PluginHost::load(&files(crates), &config, tx);
    (report.host, report.problems, rx)
}

fn channel(name: &str, plugin: &str, config: serde_json::Value) -> ChannelConfig {
    ChannelConfig {
        name: name.to_owned(),
        plugin: plugin.to_owned(),
        config,
        secrets: Default::default(),
        identity: None,
        formats: None,
        per_second: None,
        max_per_minute: None,
        max_per_day: None,
        team_channels: Default::default(),
        retry: None,
        carries: Default::default(),
        secure_domains: Vec::new(),
        spread_over: Vec::new(),
    }
}

fn request(delivery_id: &str, text: &str) -> SendRequest {
    SendRequest {
        delivery_id: delivery_id.to_owned(),
        idempotency_key: format!("key-{delivery_id}"),
        channel: "file".to_owned(),
        recipient: Recipient {
            person_id: "p-amara-okafor".to_owned(),
            display_name: "Amara Okafor".to_owned(),
            address: "amara.okafor@northbridge-council.example".to_owned(),
        },
        message: Message {
            subject: Some("Neglect: seeing the child".to_owned()),
            parts: vec![MessagePart {
                format: Format::EmailText,
                chunks: vec![text.to_owned()],
            }],
        },
        actions: vec![],
        reply: None,
        list: None,
        post: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_plugin_writes_1000_concurrent_sends_as_1000_files_with_their_contents() {
    let (host, problems, _inbound) = load(&["cascade-plugin-file"], PluginsConfig::default());
    assert!(problems.is_empty(), "{problems:?}");
    let out = tempfile::tempdir().unwrap();
    let config = serde_json::json!({ "dir": out.path() });
    host.start(&channel("outbox", "file", config), Path::new("."))
        .await
        .unwrap();
    let host = std::sync::Arc::new(host);

    let mut sends = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let host = host.clone();
        sends.spawn(async move {
            let r = request(
                &format!("d-{i:04}"),
                &format!("Message number {i} <b>&</b> ✓"),
            );
            (i, host.send("outbox", &r).await)
        });
    }
    while let Some(joined) = sends.join_next().await {
        let (i, result) = joined.unwrap();
        assert_eq!(
            result.unwrap(),
            SendResult::Delivered {
                provider_id: Some(format!("d-{i:04}.json"))
            }
        );
    }

    let written: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().collect();
    assert_eq!(written.len(), 1000);
    for i in [0, 1, 499, 998, 999] {
        let text = std::fs::read_to_string(out.path().join(format!("d-{i:04}.json"))).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["delivery_id"], format!("d-{i:04}"));
        assert_eq!(doc["idempotency_key"], format!("key-d-{i:04}"));
        assert_eq!(doc["recipient"]["display_name"], "Amara Okafor");
        assert_eq!(doc["subject"], "Neglect: seeing the child");
        assert_eq!(
            doc["parts"][0]["chunks"][0],
            format!("Message number {i} <b>&</b> ✓")
        );
    }
    for entry in written {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
        let id = doc["delivery_id"].as_str().unwrap();
        assert_eq!(entry.file_name().to_string_lossy(), format!("{id}.json"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_faulty_file_gets_a_specific_error_and_the_good_plugin_keeps_serving() {
    let junk_dir = tempfile::tempdir().unwrap();
    let not_a_library = junk_dir
        .path()
        .join(format!("{DLL_PREFIX}cascade_plugin_notes{DLL_SUFFIX}"));
    std::fs::write(&not_a_library, "these are meeting notes, not a library\n").unwrap();
    let mut all = files(&[
        "cascade-testplugin-wrong-abi",
        "cascade-testplugin-no-entry",
        "cascade-plugin-file",
    ]);
    all.insert(
        0,
        PluginFile {
            path: not_a_library.clone(),
        },
    );
    let (tx, _rx) = mpsc::unbounded_channel();
    let report = PluginHost::load(&all, &PluginsConfig::default(), tx);
    let host = report.host;

    assert_eq!(report.problems.len(), 3, "{:#?}", report.problems);
    match &report.problems[0] {
        PluginError::NotALibrary { path, .. } => assert_eq!(path, &not_a_library),
        other => panic!("expected NotALibrary, got {other:?}"),
    }
    assert_eq!(
        report.problems[1],
        PluginError::AbiMismatch {
            path: plugin_library("cascade-testplugin-wrong-abi"),
            found: 999,
            wanted: cascade_plugin_api::ABI_VERSION
        }
    );
    let shown = report.problems[1].to_string();
    assert!(
        shown.contains("libcascade_testplugin_wrong_abi")
            && shown.contains("version 999")
            && shown.contains("versions 2 and 3"),
        "{shown}"
    );
    assert_eq!(
        report.problems[2],
        PluginError::NoEntrySymbol {
            path: plugin_library("cascade-testplugin-no-entry")
        }
    );
    assert!(
        report.problems[2]
            .to_string()
            .contains("cascade_plugin_entry")
    );

    let names: Vec<_> = host
        .plugins()
        .iter()
        .map(|p| p.manifest.name.clone())
        .collect();
    assert_eq!(names, ["file"]);
    let out = tempfile::tempdir().unwrap();
    host.start(
        &channel("outbox", "file", serde_json::json!({ "dir": out.path() })),
        Path::new("."),
    )
    .await
    .unwrap();
    let result = host
        .send("outbox", &request("after-the-faults", "still here"))
        .await
        .unwrap();
    assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_send_fails_only_that_request() {
    let (host, problems, _inbound) = load(&["cascade-testplugin-panic"], PluginsConfig::default());
    assert!(problems.is_empty(), "{problems:?}");
    host.start(
        &channel("flaky", "test-panic", serde_json::json!({})),
        Path::new("."),
    )
    .await
    .unwrap();
    let (panic_request, fine_request) = (request("panic-1", "x"), request("fine-1", "x"));
    let (panicked, fine) = tokio::join!(
        host.send("flaky", &panic_request),
        host.send("flaky", &fine_request),
    );
    match panicked.unwrap() {
        SendResult::Failed { reason, .. } => assert!(reason.contains("panicked"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(matches!(fine.unwrap(), SendResult::Delivered { .. }));
    let again = host.send("flaky", &request("fine-2", "x")).await.unwrap();
    assert!(
        matches!(again, SendResult::Delivered { .. }),
        "the instance keeps serving after a panic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_never_completes_times_out_with_a_typed_error() {
    let config = PluginsConfig {
        send_timeout_seconds: Some(0.2),
        ..PluginsConfig::default()
    };
    let (host, problems, _inbound) = load(&["cascade-testplugin-hang"], config);
    assert!(problems.is_empty(), "{problems:?}");
    host.start(
        &channel("stuck", "test-hang", serde_json::json!({})),
        Path::new("."),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let err = host.send("stuck", &request("d-1", "x")).await.unwrap_err();
    assert_eq!(
        err,
        PluginError::SendTimedOut {
            instance: "stuck".to_owned(),
            delivery_id: "d-1".to_owned(),
            after: Duration::from_millis(200)
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Stopping answers the abandoned send late; the host ignores that answer.
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_refuses_its_config_names_the_problem() {
    let (host, _, _inbound) = load(&["cascade-plugin-file"], PluginsConfig::default());
    let err = host
        .start(
            &channel(
                "outbox",
                "file",
                serde_json::json!({ "transient_failure_rate": 2 }),
            ),
            Path::new("."),
        )
        .await
        .unwrap_err();
    match err {
        PluginError::StartFailed {
            instance,
            plugin,
            reason,
        } => {
            assert_eq!((instance.as_str(), plugin.as_str()), ("outbox", "file"));
            assert!(reason.contains("dir"), "{reason}");
        }
        other => panic!("expected StartFailed, got {other:?}"),
    }
    let err = host
        .start(
            &channel("mail", "email", serde_json::json!({})),
            Path::new("."),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no plugin named \"email\" was found (found: file)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_events_from_a_plugin_reach_the_host_with_the_instance_name() {
    let (host, problems, mut inbound) =
        load(&["cascade-testplugin-echo"], PluginsConfig::default());
    assert!(problems.is_empty(), "{problems:?}");
    host.start(
        &channel("chat", "test-echo", serde_json::json!({})),
        Path::new("."),
    )
    .await
    .unwrap();
    let mut r = request("d-9", "x");
    r.actions = vec![Action {
        id: "ack:d-9".to_owned(),
        label: "Acknowledge".to_owned(),
        form: None,
    }];
    host.send("chat", &r).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.instance, "chat");
    assert_eq!(
        event.event.kind,
        InboundKind::Action {
            action_id: "ack:d-9".to_owned(),
            delivery_id: Some("d-9".to_owned())
        }
    );
}

/// A hash mismatch must be refused before any code of the library runs. The
/// panic test plugin has a load-time constructor that writes a marker file,
/// so a run of `cascade plugins` shows whether the library was ever loaded.
#[test]
fn a_pinned_plugin_whose_hash_differs_is_refused_before_any_of_its_code_runs() {
    let project = tempfile::tempdir().unwrap();
    let plugin_dir = project.path().join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    let file_name = format!("{DLL_PREFIX}cascade_plugin_marker{DLL_SUFFIX}");
    std::fs::copy(
        plugin_library("cascade-testplugin-panic"),
        plugin_dir.join(&file_name),
    )
    .unwrap();
    let (_, real_hash) =
        cascade_plugin_host::LoadedPlugin::hash_file(&plugin_dir.join(&file_name)).unwrap();
    let marker = project.path().join("loaded-marker");

    let run = |pin: &str| {
        std::fs::write(
            project.path().join("cascade.toml"),
            format!("[partnership]\nname = \"Northbridge\"\n\n[plugins]\ndirs = [\"plugins\"]\n\n[plugins.sha256]\n\"{file_name}\" = \"{pin}\"\n"),
        )
        .unwrap();
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["plugins", "--project"])
            .arg(project.path())
            .env("CASCADE_TESTPLUGIN_LOADED_MARKER", &marker)
            .output()
            .unwrap()
    };

    let wrong = "0".repeat(64);
    let refused = run(&wrong);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!(
            "SHA-256 is {real_hash}, but the configuration pins {wrong}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&file_name), "{stderr}");
    assert!(!marker.exists(), "the refused library ran code");

    let accepted = run(&real_hash);
    let stdout = String::from_utf8_lossy(&accepted.stdout);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(stdout.contains("test-panic"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "loaded",
        "the marker shows when a library runs"
    );
}

/// Once any file is pinned, a file without a pin is never opened: a file
/// that is not a library at all is no load error, because nothing tried to
/// load it.
#[tokio::test]
async fn with_pins_configured_a_file_without_a_pin_is_left_unopened_and_not_an_error() {
    let junk_dir = tempfile::tempdir().unwrap();
    let junk = junk_dir
        .path()
        .join(format!("{DLL_PREFIX}cascade_plugin_notes{DLL_SUFFIX}"));
    std::fs::write(&junk, "these are meeting notes, not a library\n").unwrap();
    let file_plugin = plugin_library("cascade-plugin-file");
    let (_, file_hash) = cascade_plugin_host::LoadedPlugin::hash_file(&file_plugin).unwrap();
    let mut config = PluginsConfig::default();
    config.sha256.insert(
        file_plugin
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        file_hash,
    );
    let mut all = files(&["cascade-plugin-file"]);
    all.push(PluginFile { path: junk.clone() });
    let (tx, _rx) = mpsc::unbounded_channel();
    let report = PluginHost::load(&all, &config, tx);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.host.plugin("file").is_some());
    assert_eq!(report.host.unpinned(), [junk]);
}

/// With a pin configured for one plugin, another library in the plugin
/// folder runs none of its code: the panic test plugin's load-time
/// constructor would write the marker. `cascade plugins` lists it as not
/// pinned, with the line that would pin it, and a channel that needs it
/// says why it is missing.
#[test]
fn with_pins_configured_an_unpinned_library_is_listed_but_none_of_its_code_runs() {
    let project = tempfile::tempdir().unwrap();
    let plugin_dir = project.path().join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    let pinned_name = format!("{DLL_PREFIX}cascade_plugin_file{DLL_SUFFIX}");
    let unpinned_name = format!("{DLL_PREFIX}cascade_plugin_marker{DLL_SUFFIX}");
    std::fs::copy(
        plugin_library("cascade-plugin-file"),
        plugin_dir.join(&pinned_name),
    )
    .unwrap();
    std::fs::copy(
        plugin_library("cascade-testplugin-panic"),
        plugin_dir.join(&unpinned_name),
    )
    .unwrap();
    let hash = |name: &str| {
        cascade_plugin_host::LoadedPlugin::hash_file(&plugin_dir.join(name))
            .unwrap()
            .1
    };
    let (pinned_hash, unpinned_hash) = (hash(&pinned_name), hash(&unpinned_name));
    std::fs::write(
        project.path().join("cascade.toml"),
        format!("[partnership]\nname = \"Northbridge\"\n\n[plugins]\ndirs = [\"plugins\"]\n\n[plugins.sha256]\n\"{pinned_name}\" = \"{pinned_hash}\"\n\n[[channels]]\nname = \"test\"\nplugin = \"test-panic\"\n"),
    )
    .unwrap();
    let marker = project.path().join("loaded-marker");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(args)
            .arg("--project")
            .arg(project.path())
            .env("CASCADE_TESTPLUGIN_LOADED_MARKER", &marker)
            .output()
            .unwrap()
    };

    let listed = run(&["plugins"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "{stderr}");
    assert!(stdout.contains("file 0.1.0\n"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{unpinned_name}: not pinned, not loaded\n  file: {}\n  sha256: {unpinned_hash}\n  help: if you trust this file, pin it under [plugins.sha256] in cascade.toml: \"{unpinned_name}\" = \"{unpinned_hash}\"",
            plugin_dir.join(&unpinned_name).display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("test-panic"), "{stdout}");
    assert!(!marker.exists(), "the unpinned library ran code");

    let checked = run(&["plugins", "check"]);
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success());
    assert!(
        stderr.contains(&format!(
            "channel \"test\": no plugin named \"test-panic\" was found (found: file)\n  not loaded because [plugins.sha256] does not pin them: {}",
            plugin_dir.join(&unpinned_name).display()
        )),
        "{stderr}"
    );
    assert!(!marker.exists(), "the unpinned library ran code");
}

/// A plugin folder or file that others can write to is a way to run code as
/// cascade: `cascade plugins check` names each and fails.
#[cfg(unix)]
#[test]
fn plugins_check_fails_on_a_plugin_folder_or_file_others_can_write_to() {
    use std::os::unix::fs::PermissionsExt;
    let project = tempfile::tempdir().unwrap();
    let plugin_dir = project.path().join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    let name = format!("{DLL_PREFIX}cascade_plugin_file{DLL_SUFFIX}");
    let file = plugin_dir.join(&name);
    std::fs::copy(plugin_library("cascade-plugin-file"), &file).unwrap();
    std::fs::write(
        project.path().join("cascade.toml"),
        "[partnership]\nname = \"Northbridge\"\n\n[plugins]\ndirs = [\"plugins\"]\n",
    )
    .unwrap();
    let set = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["plugins", "check", "--project"])
            .arg(project.path())
            .output()
            .unwrap()
    };
    set(&plugin_dir, 0o755);
    set(&file, 0o755);
    let private = check();
    let stderr = String::from_utf8_lossy(&private.stderr);
    for path in [&plugin_dir, &file] {
        assert!(
            !stderr.contains(&format!("{}: the plugin", path.display())),
            "{stderr}"
        );
    }

    set(&plugin_dir, 0o777);
    set(&file, 0o775);
    let shared = check();
    let stderr = String::from_utf8_lossy(&shared.stderr);
    assert!(!shared.status.success());
    for (path, what, mode) in [
        (&plugin_dir, "the plugin folder", "777"),
        (&file, "the plugin file", "775"),
    ] {
        assert!(
            stderr.contains(&format!(
                "{}: {what} can be written by users other than its owner (mode {mode}), so they could replace a plugin and run code as cascade\n  help: chmod go-w {}",
                path.display(),
                path.display()
            )),
            "{stderr}"
        );
    }
}

#[test]
fn cascade_plugins_lists_the_file_plugin_and_check_starts_the_configured_channels() {
    let project = tempfile::tempdir().unwrap();
    let outbox = project.path().join("outbox");
    let write_config = |channel_config: &str| {
        std::fs::write(
            project.path().join("cascade.toml"),
            format!("[partnership]\nname = \"Northbridge\"\n\n[[channels]]\nname = \"outbox\"\nplugin = \"file\"\nconfig = {channel_config}\n"),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(args)
            .arg("--project")
            .arg(project.path())
            .output()
            .unwrap()
    };

    write_config(&format!("{{ dir = {:?} }}", outbox.display().to_string()));
    let listed = run(&["plugins"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        stdout.contains("file 0.1.0\n  channels: file\n  capabilities: none\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  sha256: "), "{stdout}");

    let checked = run(&["plugins", "check"]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        String::from_utf8_lossy(&checked.stdout)
            .contains("channel \"outbox\" (file) started and stopped cleanly")
    );

    write_config("{ dir = \"outbox\", permanent_failure_rate = 7 }");
    let refused = run(&["plugins", "check"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("channel \"outbox\": the file plugin refused to start: "),
        "{stderr}"
    );
    assert!(stderr.contains("permanent_failure_rate"), "{stderr}");
}

/// `test-raw`'s hand-made table is the version-2 layout, ending at
/// `webhook`: the host reads no further, starts it with `start`, and it
/// serves as before; plugins built with `export_plugin!` speak version 3.
#[tokio::test]
async fn a_version_2_plugin_still_loads_starts_and_sends() {
    let (host, problems, _inbound) = load(
        &["cascade-testplugin-raw", "cascade-testplugin-echo"],
        PluginsConfig::default(),
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(host.plugin("test-raw").unwrap().abi_version(), 2);
    assert_eq!(
        host.plugin("test-echo").unwrap().abi_version(),
        cascade_plugin_api::ABI_VERSION
    );
    host.start(
        &channel("raw", "test-raw", serde_json::json!({})),
        Path::new("."),
    )
    .await
    .unwrap();
    let result = host.send("raw", &request("v2-1", "x")).await.unwrap();
    assert_eq!(
        result,
        SendResult::Delivered {
            provider_id: Some("raw".to_owned())
        }
    );
    host.stop().await;
}

/// `test-raw` implements the C table by hand and misbehaves on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_double_answers_from_a_plugin_do_not_harm_the_host() {
    let (host, problems, mut inbound) = load(&["cascade-testplugin-raw"], PluginsConfig::default());
    assert!(problems.is_empty(), "{problems:?}");
    host.start(
        &channel("raw", "test-raw", serde_json::json!({})),
        Path::new("."),
    )
    .await
    .unwrap();

    match host
        .send("raw", &request("garbage-1", "x"))
        .await
        .unwrap_err()
    {
        PluginError::MalformedResult {
            instance,
            delivery_id,
            ..
        } => {
            assert_eq!(
                (instance.as_str(), delivery_id.as_str()),
                ("raw", "garbage-1")
            );
        }
        other => panic!("expected MalformedResult, got {other:?}"),
    }
    for id in ["twice-1", "noise-1", "plain-1"] {
        let result = host.send("raw", &request(id, "x")).await.unwrap();
        assert_eq!(
            result,
            SendResult::Delivered {
                provider_id: Some("raw".to_owned())
            },
            "{id}"
        );
    }
    assert!(
        inbound.try_recv().is_err(),
        "a malformed inbound event is dropped, not delivered"
    );
    host.stop().await;
    let err = host
        .send("raw", &request("after-stop", "x"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PluginError::UnknownInstance {
            instance: "raw".to_owned()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_route_hands_requests_to_the_plugin_and_its_answer_back() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    let (host, problems, _inbound) = load(
        &["cascade-testplugin-echo", "cascade-testplugin-raw"],
        PluginsConfig::default(),
    );
    assert!(problems.is_empty(), "{problems:?}");
    for (name, plugin) in [("hooks", "test-echo"), ("raw", "test-raw")] {
        host.start(
            &channel(name, plugin, serde_json::json!({})),
            Path::new("."),
        )
        .await
        .unwrap();
    }
    let app = cascade_server::webhook_router(std::sync::Arc::new(host));
    let call = |method: &str, uri: &str, body: Body| {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("X-Secret-Token", "one")
            .header("x-secret-token", "two")
            .body(body)
            .unwrap();
        app.clone().oneshot(request)
    };

    let response = call(
        "POST",
        "/webhooks/hooks/deep/path?a=1",
        Body::from("{\"update_id\":1}"),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(
        response.headers().get("set-cookie").is_none(),
        "only content headers pass"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let seen: cascade_plugin_api::WebhookRequest = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/deep/path");
    assert_eq!(seen.query.as_deref(), Some("a=1"));
    assert_eq!(seen.header("X-Secret-Token"), Some("one, two"));
    assert_eq!(seen.body, "{\"update_id\":1}");

    let status = |method, uri, body: &'static [u8]| {
        let response = call(method, uri, Body::from(body));
        async move { response.await.unwrap().status() }
    };
    // A plugin without a webhook function, and a channel that is not there.
    assert_eq!(
        status("POST", "/webhooks/raw", b"{}").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status("POST", "/webhooks/nowhere", b"{}").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status("POST", "/webhooks/hooks", b"\xff\xfe").await,
        StatusCode::BAD_REQUEST
    );
    let big: &'static [u8] = Vec::leak(vec![b'a'; 2 * 1024 * 1024]);
    assert_eq!(
        status("POST", "/webhooks/hooks", big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A plugin that panics or drops the request answers 500 or 503, and keeps serving.
    assert_eq!(
        status("POST", "/webhooks/hooks", b"panic").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        status("POST", "/webhooks/hooks", b"drop").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status("GET", "/webhooks/hooks", b"").await,
        StatusCode::ACCEPTED
    );
}
