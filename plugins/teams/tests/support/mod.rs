//! Shared set-up: the fake Microsoft services, and the fake as the
//! conformance suite's provider (`Teams`), whose channel is the real
//! plugin library started through the host with its app password in a
//! secret file.
#![allow(dead_code)] // each test file uses its own share of these

pub mod fake_teams;

use cascade_plugin_conformance::{
    Button, ChannelSetup, ChatProvider, Credentials, Person, Render, SentMessage, WebhookProvider,
};
use fake_teams::{FakeTeams, PASSWORD, Signed, Stored, shown};

/// The fake Teams as the conformance suite's chat provider.
pub struct Teams(pub FakeTeams);

/// Person `n` of an address `29:1user-<n>|…`.
fn number_of(address: &str) -> u32 {
    address
        .split('|')
        .next()
        .and_then(|user| user.strip_prefix("29:1user-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an address of the fake: {address}"))
}

fn sent(message: &Stored) -> SentMessage {
    let (text, buttons) = shown(&message.activity);
    SentMessage {
        id: message.id.clone(),
        text,
        buttons: buttons
            .into_iter()
            .map(|(label, data)| Button { label, data })
            .collect(),
    }
}

impl ChatProvider for Teams {
    const PLUGIN: &'static str = "teams";
    const RENDER: Render = Render::Discord;
    const WEBHOOK_ONLY: bool = true;

    async fn start() -> Self {
        Teams(FakeTeams::start().await)
    }

    fn webhook_at(&self, url: &str) {
        self.0.set_webhook(url);
    }

    fn channel(&self) -> ChannelSetup {
        ChannelSetup {
            config: self.0.config(),
            secrets: vec![("app_password".to_owned(), PASSWORD.to_owned())],
        }
    }

    fn person(&self, n: u32) -> Person {
        let address = self.0.address(n);
        Person {
            account: address.clone(),
            address,
        }
    }

    fn messages_to(&self, address: &str) -> Vec<SentMessage> {
        let n = number_of(address);
        let conversation = self.0.personal_conversation(n);
        self.0.messages_in(&conversation).iter().map(sent).collect()
    }

    fn refuse_with_retry_after(&self, after: usize, seconds: u32) {
        self.0.refuse_with_retry_after(after, seconds);
    }

    fn make_unreachable(&self, address: &str) {
        self.0.block(number_of(address));
    }

    fn press(&self, person: &Person, message: &SentMessage, data: &str) -> String {
        let n = number_of(&person.address);
        let stored = self
            .0
            .message(&message.id)
            .unwrap_or_else(|| panic!("no message {} at the fake", message.id));
        let conversation = stored.conversation.clone();
        let activity = self.0.press_activity(
            n,
            &conversation,
            true,
            serde_json::json!({ "cascade": data }),
            &message.id,
        );
        let id = activity["id"].as_str().unwrap().to_owned();
        let fake = self.0.clone();
        tokio::spawn(async move {
            let status = fake.post(&activity, &Signed::Valid).await;
            assert_eq!(status, 200, "the press was not taken");
        });
        id
    }

    fn answers_to(&self, press: &str) -> usize {
        self.0.replies_to(press)
    }
}

impl WebhookProvider for Teams {
    fn webhook_channel(&self, url: &str) -> ChannelSetup {
        self.0.set_webhook(url);
        self.channel()
    }

    async fn post_text(&self, person: &Person, text: &str, credentials: Credentials) -> Vec<u16> {
        let n = number_of(&person.address);
        let conversation = self.0.personal_conversation(n);
        let activity = self
            .0
            .text_activity(n, &conversation, true, text, fake_teams::TENANT);
        let how = match credentials {
            Credentials::Missing => Signed::Missing,
            Credentials::Wrong => Signed::WrongSignature,
            Credentials::Valid => Signed::Valid,
        };
        vec![self.0.post(&activity, &how).await]
    }
}
