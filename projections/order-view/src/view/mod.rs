//! The order view's model and rules, pure: what an order looks like to readers, what each
//! event says about an order ([`project`]), and how that changes the order
//! ([`OrderView::fold`]).
//!
//! The topics are not ordered among each other, and the view must end the same whatever the
//! order events arrive in:
//!
//! - the timeline is a set of entries keyed by event id, so it does not depend on order;
//! - an order's status may change before its `order.created` arrives: the view then holds
//!   the status and no creation fields until `order.created` fills them in;
//! - a decided order (CONFIRMED or CANCELLED) never changes status again, whatever arrives
//!   later: `order.created` included, so it never goes back to PENDING;
//! - `updated_at` is the latest `occurred_at` of the events that changed the view, never the
//!   clock.
//!
//! The orders service emits at most one decision per order; should its topic hold two (typed
//! in by hand), the first one in the topic wins, as it does in the orders service itself.
//! Both are on the same partition (keyed by order id), so every replay sees the same first.
//!
//! Not here: SQL (`store`) and HTTP (`api`).

mod status;

use chrono::{DateTime, Utc};
use eventmart_events::orders::OrderLine;
use eventmart_events::{Envelope, Event, Money, Topic};
use uuid::Uuid;

pub use self::status::{InvalidStatus, Status};

/// What `order.created` says about an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The customer.
    pub user_id: Uuid,
    /// What the order costs.
    pub total: Money,
    /// What was ordered, at the prices of the moment.
    pub lines: Vec<OrderLine>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
}

/// One order as readers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// The order.
    pub order_id: Uuid,
    /// Where it stands.
    pub status: Status,
    /// Why it was cancelled, once it is.
    pub reason: Option<String>,
    /// The payment that confirmed it, once it is.
    pub payment_id: Option<Uuid>,
    /// What `order.created` said; `None` until it has arrived.
    pub placed: Option<Placed>,
    /// The `occurred_at` of the latest event that changed the view.
    pub updated_at: DateTime<Utc>,
}

/// What an `orders` event changes in an order's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `order.created`.
    Placed(Placed),
    /// `order.confirmed`.
    Confirmed {
        /// The payment that settled it.
        payment_id: Uuid,
    },
    /// `order.cancelled`.
    Cancelled {
        /// Why, e.g. `out_of_stock`.
        reason: String,
    },
}

impl OrderView {
    /// The view of order `order_id` (`None`: nothing known yet) after `change`, which
    /// happened at `at`; see the [module docs](self) for the rules.
    pub fn fold(
        view: Option<OrderView>,
        order_id: Uuid,
        change: &Change,
        at: DateTime<Utc>,
    ) -> Self {
        let mut view = view.unwrap_or(OrderView {
            order_id,
            status: Status::Pending,
            reason: None,
            payment_id: None,
            placed: None,
            updated_at: at,
        });
        let changed = match change {
            Change::Placed(placed) if view.placed.is_none() => {
                view.placed = Some(placed.clone());
                true
            }
            Change::Confirmed { payment_id } if !view.status.is_final() => {
                view.status = Status::Confirmed;
                view.payment_id = Some(*payment_id);
                true
            }
            Change::Cancelled { reason } if !view.status.is_final() => {
                view.status = Status::Cancelled;
                view.reason = Some(reason.clone());
                true
            }
            _ => false,
        };
        if changed {
            view.updated_at = view.updated_at.max(at);
        }
        view
    }
}

/// One event in an order's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The order.
    pub order_id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// Its dotted type, e.g. `payment.completed`.
    pub event_type: String,
    /// What happened, e.g. `CREATED`, `RESERVED`, `COMPLETED`.
    pub step: String,
    /// The service that owns the event's topic: `orders`, `inventory` or `payments`.
    pub service: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// What one event means for the view: an entry in its order's timeline, and for `orders`
/// events a change of the order itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Projection {
    /// The timeline entry.
    pub entry: TimelineEntry,
    /// The change of the order's view, if any.
    pub change: Option<Change>,
}

/// What `event` (with `envelope`) means for the view; `None` for events about no order
/// (users, products, restocks and adjustments).
pub fn project(event: &Event, envelope: &Envelope) -> Option<Projection> {
    let (order_id, step, change) = match event {
        Event::OrderCreated(e) => (
            e.order_id,
            "CREATED",
            Some(Change::Placed(Placed {
                user_id: e.user_id,
                total: e.total,
                lines: e.lines.clone(),
                created_at: e.created_at,
            })),
        ),
        Event::OrderConfirmed(e) => (
            e.order_id,
            "CONFIRMED",
            Some(Change::Confirmed {
                payment_id: e.payment_id,
            }),
        ),
        Event::OrderCancelled(e) => (
            e.order_id,
            "CANCELLED",
            Some(Change::Cancelled {
                reason: e.reason.as_str().to_owned(),
            }),
        ),
        Event::InventoryUpdated(e) => (e.order_id?, e.change.as_str(), None),
        Event::PaymentCompleted(e) => (e.order_id, "COMPLETED", None),
        Event::PaymentFailed(e) => (e.order_id, "FAILED", None),
        Event::PaymentRefunded(e) => (e.order_id, "REFUNDED", None),
        Event::UserRegistered(_)
        | Event::UserUpdated(_)
        | Event::ProductCreated(_)
        | Event::ProductPriceChanged(_) => return None,
    };
    Some(Projection {
        entry: TimelineEntry {
            order_id,
            event_id: envelope.event_id,
            event_type: event.event_type().to_owned(),
            step: step.to_owned(),
            service: service_of(event.topic()).to_owned(),
            occurred_at: envelope.occurred_at,
        },
        change,
    })
}

/// The service that owns `topic`.
fn service_of(topic: Topic) -> &'static str {
    // Each service owns the topic named after it.
    topic.base_name()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
    use eventmart_events::orders::{
        CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated,
    };
    use eventmart_events::payments::PaymentCompleted;
    use eventmart_events::users::UserRegistered;
    use eventmart_events::{Currency, Envelope};

    use super::*;

    const ORDER: Uuid = Uuid::from_u128(1);
    const USER: Uuid = Uuid::from_u128(2);
    const PRODUCT: Uuid = Uuid::from_u128(3);
    const PAYMENT: Uuid = Uuid::from_u128(4);

    /// `seconds` after a fixed instant.
    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    fn created(seconds: i64) -> Event {
        OrderCreated {
            order_id: ORDER,
            user_id: USER,
            lines: vec![OrderLine {
                product_id: PRODUCT,
                quantity: 2,
                unit_price: Money::new(1250, Currency::EUR),
            }],
            total: Money::new(2500, Currency::EUR),
            payment_token: None,
            created_at: at(seconds),
        }
        .into()
    }

    fn reserved(seconds: i64) -> Event {
        InventoryUpdated {
            change: InventoryChange::Reserved,
            order_id: Some(ORDER),
            lines: vec![StockLine {
                product_id: PRODUCT,
                quantity: 2,
            }],
            reason: None,
            updated_at: at(seconds),
        }
        .into()
    }

    fn paid(seconds: i64) -> Event {
        PaymentCompleted {
            payment_id: PAYMENT,
            order_id: ORDER,
            user_id: USER,
            amount: Money::new(2500, Currency::EUR),
            completed_at: at(seconds),
        }
        .into()
    }

    fn confirmed(seconds: i64) -> Event {
        OrderConfirmed {
            order_id: ORDER,
            payment_id: PAYMENT,
            confirmed_at: at(seconds),
        }
        .into()
    }

    fn cancelled(seconds: i64, reason: CancellationReason) -> Event {
        OrderCancelled {
            order_id: ORDER,
            reason,
            detail: None,
            cancelled_at: at(seconds),
        }
        .into()
    }

    /// The event with its envelope, each with its own id.
    fn enveloped(event: Event) -> (Event, Envelope) {
        let envelope = Envelope::new(&event);
        (event, envelope)
    }

    /// The view and timeline after applying `events` in the given order.
    fn apply(events: &[(Event, Envelope)]) -> (Option<OrderView>, Vec<TimelineEntry>) {
        let mut view = None;
        let mut timeline = Vec::new();
        for (event, envelope) in events {
            let Some(projection) = project(event, envelope) else {
                continue;
            };
            if !timeline.contains(&projection.entry) {
                timeline.push(projection.entry.clone());
            }
            if let Some(change) = &projection.change {
                let order_id = projection.entry.order_id;
                view = Some(OrderView::fold(
                    view,
                    order_id,
                    change,
                    envelope.occurred_at,
                ));
            }
        }
        timeline.sort_by_key(|e| (e.occurred_at, e.event_id));
        (view, timeline)
    }

    /// Every ordering of `items`.
    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, first.clone());
                out.push(tail);
            }
        }
        out
    }

    #[test]
    fn a_placed_order_is_pending_with_what_it_was_placed_with() {
        // given nothing, when order.created arrives
        let (view, timeline) = apply(&[enveloped(created(0))]);
        // then the order is pending with its customer, total, lines and creation time
        let view = view.unwrap();
        assert_eq!(view.status, Status::Pending);
        let placed = view.placed.unwrap();
        assert_eq!(
            (placed.user_id, placed.total, placed.created_at),
            (USER, Money::new(2500, Currency::EUR), at(0))
        );
        assert_eq!(placed.lines.len(), 1);
        assert_eq!(view.updated_at, at(0));
        assert_eq!(timeline[0].step, "CREATED");
        assert_eq!(timeline[0].service, "orders");
    }

    #[test]
    fn a_confirmed_order_names_its_payment_and_a_cancelled_one_its_reason() {
        let (view, _) = apply(&[enveloped(created(0)), enveloped(confirmed(3))]);
        let view = view.unwrap();
        assert_eq!(
            (view.status, view.payment_id),
            (Status::Confirmed, Some(PAYMENT))
        );
        assert_eq!(view.updated_at, at(3));

        let (view, _) = apply(&[
            enveloped(created(0)),
            enveloped(cancelled(2, CancellationReason::OutOfStock)),
        ]);
        let view = view.unwrap();
        assert_eq!(view.status, Status::Cancelled);
        assert_eq!(view.reason.as_deref(), Some("out_of_stock"));
    }

    #[test]
    fn a_decided_order_never_goes_back_to_pending_nor_changes_its_mind() {
        // given a confirmed order whose order.created arrives late
        let (view, _) = apply(&[enveloped(confirmed(3)), enveloped(created(0))]);
        // then it stays confirmed, and gets its creation fields
        let view = view.unwrap();
        assert_eq!(view.status, Status::Confirmed);
        assert!(view.placed.is_some());

        // given a cancelled order, when a confirmation follows, then it stays cancelled
        let (view, _) = apply(&[
            enveloped(created(0)),
            enveloped(cancelled(1, CancellationReason::Timeout)),
            enveloped(confirmed(2)),
        ]);
        let view = view.unwrap();
        assert_eq!((view.status, view.payment_id), (Status::Cancelled, None));
        assert_eq!(view.updated_at, at(1));
    }

    #[test]
    fn a_second_order_created_does_not_overwrite_the_first() {
        let first = enveloped(created(0));
        let mut other = created(5);
        if let Event::OrderCreated(e) = &mut other {
            e.total = Money::new(1, Currency::USD);
        }
        let (view, _) = apply(&[first, enveloped(other)]);
        let view = view.unwrap();
        assert_eq!(
            view.placed.map(|p| p.total),
            Some(Money::new(2500, Currency::EUR))
        );
        assert_eq!(view.updated_at, at(0));
    }

    #[test]
    fn a_status_that_arrives_before_its_order_is_kept_without_creation_fields() {
        let (view, timeline) = apply(&[
            enveloped(paid(2)),
            enveloped(cancelled(3, CancellationReason::PaymentDeclined)),
        ]);
        let view = view.unwrap();
        assert_eq!(view.status, Status::Cancelled);
        assert_eq!(view.placed, None);
        assert_eq!(timeline.len(), 2);
    }

    #[test]
    fn events_about_an_order_from_other_topics_only_add_to_its_timeline() {
        let (view, timeline) = apply(&[enveloped(reserved(1)), enveloped(paid(2))]);
        assert_eq!(view, None);
        let steps: Vec<_> = timeline
            .iter()
            .map(|e| (e.event_type.as_str(), e.step.as_str(), e.service.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("inventory.updated", "RESERVED", "inventory"),
                ("payment.completed", "COMPLETED", "payments")
            ]
        );
    }

    #[test]
    fn events_about_no_order_are_not_projected() {
        let restocked: Event = InventoryUpdated {
            change: InventoryChange::Restocked,
            order_id: None,
            lines: vec![StockLine {
                product_id: PRODUCT,
                quantity: 5,
            }],
            reason: None,
            updated_at: at(0),
        }
        .into();
        let registered: Event = UserRegistered {
            user_id: USER,
            email: "ada@example.com".into(),
            name: "Ada".into(),
            registered_at: at(0),
        }
        .into();
        for event in [restocked, registered] {
            let envelope = Envelope::new(&event);
            assert_eq!(project(&event, &envelope), None, "{event:?}");
        }
    }

    #[test]
    fn the_view_ends_the_same_whatever_the_arrival_order() {
        let confirmed_saga = [
            enveloped(created(0)),
            enveloped(reserved(1)),
            enveloped(paid(2)),
            enveloped(confirmed(3)),
        ];
        let cancelled_saga = [
            enveloped(created(0)),
            enveloped(reserved(1)),
            enveloped(cancelled(2, CancellationReason::Timeout)),
            enveloped(paid(3)),
        ];
        for saga in [confirmed_saga, cancelled_saga] {
            let expected = apply(&saga);
            for order in permutations(&saga) {
                let kinds: Vec<_> = order.iter().map(|(e, _)| e.event_type()).collect();
                assert_eq!(apply(&order), expected, "arrival order {kinds:?}");
            }
        }
    }

    #[test]
    fn a_redelivered_event_changes_nothing() {
        let saga = [
            enveloped(created(0)),
            enveloped(paid(2)),
            enveloped(confirmed(3)),
        ];
        let mut twice = saga.to_vec();
        twice.extend(saga.iter().cloned());
        assert_eq!(apply(&twice), apply(&saga));
    }
}
