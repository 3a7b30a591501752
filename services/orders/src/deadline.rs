//! Order deadlines: when an order's timer fires and the order is still pending, it is
//! cancelled with reason `timeout`, as a step of the order's own flow.
//!
//! The timer is set when the order is created and cleared when it becomes final (see
//! `record`); a timer that fires for a final order changes nothing.

use eventmart_events::{Envelope, timestamp};
use eventmart_runtime::consumer::HandlerError;
use eventmart_runtime::journal::Journal;
use eventmart_runtime::timers::TimerHandler;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::Command;
use crate::record::{self, RecordError};

/// Fires order deadlines.
#[derive(Debug)]
pub(crate) struct Deadlines {
    /// The service's journal.
    pub(crate) journal: Journal,
}

impl TimerHandler for Deadlines {
    async fn fire(&self, tx: &mut AnyConnection, id: &str) -> Result<(), HandlerError> {
        let order_id = Uuid::parse_str(id)
            .map_err(|_| HandlerError::permanent(format!("deadline {id:?} is not an order id")))?;
        let command = Command::Expire {
            at: timestamp::now(),
        };
        let envelope = |event: &_, cause: &_| Envelope::reacting_to(event, cause, "timeout");
        match record::transition(&self.journal, tx, order_id, &command, envelope).await {
            Ok(_) | Err(RecordError::UnknownOrder(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
