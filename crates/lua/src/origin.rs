//! [`Origin`]: who a stage is to the rest of the node — its id, its reply address and its
//! mailbox — and so whom the worker jobs it submits act for.

use crate::command::StageCommand;
use stage_core::mailbox::{ChannelMailbox, Mailbox};
use stage_core::{Args, Message, PayloadKey, ReplyAddress, Sender};
use std::sync::Arc;

/// A stage's identity: its messages and its jobs' handler registrations go there.
#[derive(Clone)]
pub struct Origin {
    pub id: Option<Arc<str>>,
    pub address: ReplyAddress,
    pub mailbox: Arc<ChannelMailbox<StageCommand>>,
}

impl Origin {
    /// The payload key of message `msg` addressed to the origin stage.
    pub fn own_key(&self, msg: &str) -> PayloadKey {
        PayloadKey::new(self.id.as_deref(), msg)
    }

    /// The return address messages sent for the origin carry.
    pub fn sender(&self) -> Sender {
        Sender {
            address: self.address.clone(),
            stage: self.id.clone(),
        }
    }

    /// The return address of an automatic reply: this instance, without a stage id (a reply
    /// gets no reply).
    pub fn reply_sender(&self) -> Sender {
        Sender {
            address: self.address.clone(),
            stage: None,
        }
    }

    /// Queues a command for the origin's stage thread.
    pub fn command(&self, command: StageCommand) -> mlua::Result<()> {
        self.mailbox.command(command).map_err(mlua::Error::external)
    }

    /// Posts values to one of the origin's handlers, with no sender (no automatic reply).
    pub fn deliver(&self, handler: &str, values: Args) -> mlua::Result<()> {
        let message = Message::new(self.own_key(handler), values);
        self.mailbox.post(message).map_err(mlua::Error::external)
    }
}
