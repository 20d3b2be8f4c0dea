//! Drives the file plugin through its exported C table, as the host does:
//! start with JSON config, concurrent sends answered through `done`, and a
//! `stop` that returns only after every accepted send was answered.

use cascade_plugin_api::{
    Format, HostCallbacks, LogLine, Message, MessagePart, PluginTable, Recipient, SendRequest,
    SendResult,
};
use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

unsafe extern "C" fn ignore_event(_ctx: *mut c_void, _data: *const u8, _len: usize) {}

/// `ctx` is a `Mutex<Vec<LogLine>>` that outlives the instance.
unsafe extern "C" fn collect_log(ctx: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: the plugin passes `len` readable bytes; `ctx` is set up by `start`.
    let (lines, bytes) = unsafe {
        (
            &*ctx.cast::<Mutex<Vec<LogLine>>>(),
            std::slice::from_raw_parts(data, len),
        )
    };
    lines
        .lock()
        .unwrap()
        .push(serde_json::from_slice(bytes).unwrap());
}

/// `ctx` is a `String` that outlives the call.
unsafe extern "C" fn collect_error(ctx: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: as for `collect_log`.
    let (error, bytes) = unsafe {
        (
            &mut *ctx.cast::<String>(),
            std::slice::from_raw_parts(data, len),
        )
    };
    error.push_str(std::str::from_utf8(bytes).unwrap());
}

/// `ctx` is a boxed `Sender<SendResult>`, consumed by the one call.
unsafe extern "C" fn send_done(ctx: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: `ctx` was made by `Box::into_raw` in `send` and is used once.
    let (answers, bytes) = unsafe {
        (
            Box::from_raw(ctx.cast::<Sender<SendResult>>()),
            std::slice::from_raw_parts(data, len),
        )
    };
    let _ = answers.send(serde_json::from_slice(bytes).unwrap());
}

struct Instance {
    table: &'static PluginTable,
    pointer: *mut c_void,
    log: Box<Mutex<Vec<LogLine>>>,
}

impl Instance {
    fn start(config: serde_json::Value) -> Result<Instance, String> {
        // SAFETY: the entry symbol returns a table valid for the whole process.
        let table = unsafe { &*cascade_plugin_file::cascade_plugin_entry() };
        assert_eq!(table.abi_version, cascade_plugin_api::ABI_VERSION);
        let log = Box::new(Mutex::new(Vec::new()));
        let host = HostCallbacks {
            ctx: (&*log as *const Mutex<Vec<LogLine>>).cast_mut().cast(),
            emit: ignore_event,
            log: collect_log,
        };
        let config = serde_json::to_vec(&config).unwrap();
        let mut error = String::new();
        // SAFETY: the buffers and contexts outlive the call; `log` outlives the instance.
        let pointer = unsafe {
            (table.start)(
                config.as_ptr(),
                config.len(),
                host,
                collect_error,
                (&raw mut error).cast(),
            )
        };
        if pointer.is_null() {
            return Err(error);
        }
        Ok(Instance {
            table,
            pointer,
            log,
        })
    }

    fn send(&self, request: &SendRequest, answers: &Sender<SendResult>) {
        let request = serde_json::to_vec(request).unwrap();
        let ctx = Box::into_raw(Box::new(answers.clone()));
        // SAFETY: the instance is running; `send_done` consumes `ctx` once.
        unsafe {
            (self.table.send)(
                self.pointer,
                request.as_ptr(),
                request.len(),
                send_done,
                ctx.cast(),
            )
        }
    }

    fn stop(self) -> Vec<LogLine> {
        // SAFETY: the instance came from `start` and is stopped once.
        unsafe { (self.table.stop)(self.pointer) };
        self.log.into_inner().unwrap()
    }
}

fn request(delivery_id: &str) -> SendRequest {
    SendRequest {
        delivery_id: delivery_id.to_owned(),
        idempotency_key: format!("key-{delivery_id}"),
        channel: "file".to_owned(),
        recipient: Recipient {
            person_id: "p-1".to_owned(),
            display_name: "Sam Carter".to_owned(),
            address: "sam@example.org".to_owned(),
        },
        message: Message {
            subject: None,
            parts: vec![MessagePart {
                format: Format::from("plain"),
                chunks: vec!["Confidential safeguarding text".to_owned()],
            }],
        },
        actions: Vec::new(),
        reply: None,
        list: None,
        post: None,
    }
}

fn answers_so_far(answers: &Receiver<SendResult>) -> Vec<SendResult> {
    answers.try_iter().collect()
}

#[test]
fn every_accepted_send_is_written_and_answered_before_stop_returns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("created-at-start");
    let instance = Instance::start(serde_json::json!({"dir": out, "max_in_flight": 2})).unwrap();
    let (sender, answers) = channel();
    for n in 0..50 {
        instance.send(&request(&format!("d-{n}")), &sender);
    }
    let log = instance.stop();

    let answers = answers_so_far(&answers);
    assert_eq!(answers.len(), 50);
    assert!(answers.iter().all(|a| matches!(
        a,
        SendResult::Delivered {
            provider_id: Some(_)
        }
    )));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 50);
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].message,
        format!("writing messages to {}", out.display())
    );
    assert!(!log[0].message.contains("Confidential"));
}

/// A write cut short when the process was killed leaves its temporary
/// file; the next start sweeps it, and the messages stay.
#[test]
fn a_start_sweeps_what_a_killed_write_left() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d-1.json"), "{}").unwrap();
    std::fs::write(dir.path().join(".yxySJh.tmp"), "half a message").unwrap();
    let instance = Instance::start(serde_json::json!({"dir": dir.path()})).unwrap();
    instance.stop();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["d-1.json"]);
}

#[test]
fn injected_failures_are_answered_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::start(serde_json::json!({
        "dir": dir.path(),
        "transient_failure_rate": 1.0,
        "seed": 3
    }))
    .unwrap();
    let (sender, answers) = channel();
    instance.send(&request("d-1"), &sender);
    instance.stop();

    assert_eq!(
        answers_so_far(&answers),
        [SendResult::Retry {
            reason: "injected transient failure".to_owned(),
            retry_after_ms: None
        }]
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_invalid_config_is_refused_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let error = Instance::start(serde_json::json!({"dir": dir.path(), "max_in_flight": 0}))
        .err()
        .unwrap();
    assert!(error.starts_with("`max_in_flight`"), "{error}");
}

#[test]
fn the_manifest_names_the_file_channel_and_publishes_the_config_schema() {
    unsafe extern "C" fn keep(ctx: *mut c_void, data: *const u8, len: usize) {
        // SAFETY: `ctx` is the `Vec<u8>` below; the plugin passes `len` bytes.
        unsafe { (*ctx.cast::<Vec<u8>>()).extend_from_slice(std::slice::from_raw_parts(data, len)) }
    }
    let mut json = Vec::new();
    // SAFETY: the table is valid for the process; `json` outlives the call.
    unsafe {
        ((*cascade_plugin_file::cascade_plugin_entry()).manifest)(keep, (&raw mut json).cast())
    };
    let manifest: cascade_plugin_api::Manifest = serde_json::from_slice(&json).unwrap();
    assert_eq!(manifest.name, "file");
    assert_eq!(manifest.channels, ["file"]);
    assert!(manifest.capabilities.is_empty());
    assert_eq!(
        manifest.config_schema["required"],
        serde_json::json!(["dir"])
    );
}
