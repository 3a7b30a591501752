//! The payments domain, pure (no I/O): what a payment knows, the simulated provider's rules,
//! and the decisions taken on them.
//!
//! - [`payment`]: an order's payment state and how each event changes it.
//! - [`provider`]: the provider's deterministic rules (declined token, credit limit).
//! - [`credit`]: a user's outstanding amount, which the credit limit applies to.
//! - [`decider`]: charging, refunding on cancellation, and manual refunds.
//!
//! Not here: storage, timers, envelopes and HTTP (the modules around it).

pub mod credit;
pub mod decider;
pub mod payment;
pub mod provider;

pub use credit::{Credit, credit_change};
pub use decider::{Command, PaymentError, Payments, REFUND_ORDER_CANCELLED, RefundReason};
pub use payment::{Causes, OrderTerms, Payment, Status, payment_id};
pub use provider::{DECLINED_TOKEN, Decline, Provider};
