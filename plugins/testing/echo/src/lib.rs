//! Test plugin `test-echo`: answers every send at once, inside `send`, as
//! delivered under its own delivery id, and presses the first button of a
//! message that has any (an inbound event back to the host). A webhook
//! request is answered with what arrived, as JSON; a body `panic` panics and
//! a body `drop` drops the reply unanswered. Its send logic
//! is the plain function [`echo`], the direct-call baseline of the ABI
//! overhead benchmark.

use cascade_plugin_api::{
    Capability, ChannelPlugin, Completion, Host, InboundEvent, InboundKind, Manifest, SendRequest,
    SendResult, WebhookReply, WebhookRequest, WebhookResponse,
};

/// The answer `test-echo` gives to any request.
pub fn echo(request: &SendRequest) -> SendResult {
    SendResult::Delivered {
        provider_id: Some(request.delivery_id.clone()),
    }
}

/// A `test-echo` instance.
pub struct EchoChannel {
    host: Host,
}

impl ChannelPlugin for EchoChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "test-echo".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec!["test".to_owned()],
            capabilities: vec![Capability::Webhook],
            limits: Default::default(),
            config_schema: serde_json::Value::Null,
        }
    }

    fn start(_config: serde_json::Value, host: Host) -> Result<Self, String> {
        Ok(EchoChannel { host })
    }

    fn webhook(&self, request: WebhookRequest, reply: WebhookReply) {
        match request.body.as_str() {
            "panic" => panic!("asked to panic"),
            "drop" => drop(reply),
            _ => reply.respond(WebhookResponse {
                status: 202,
                headers: [
                    ("content-type".to_owned(), "application/json".to_owned()),
                    ("set-cookie".to_owned(), "not=passed".to_owned()),
                ]
                .into(),
                body: serde_json::to_string(&request).expect("plain data"),
            }),
        }
    }

    fn send(&self, request: SendRequest, completion: Completion) {
        completion.complete(echo(&request));
        if let Some(action) = request.actions.first() {
            self.host.emit(&InboundEvent {
                event_id: None,
                channel: request.channel.clone(),
                account: request.recipient.address.clone(),
                id: None,
                address: None,
                kind: InboundKind::Action {
                    action_id: action.id.clone(),
                    delivery_id: Some(request.delivery_id.clone()),
                },
            });
        }
    }
}

cascade_plugin_api::export_plugin!(EchoChannel);
