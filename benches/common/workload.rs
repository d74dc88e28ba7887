//! The throughput benches' workload: events for customers with about three identifiers
//! each, spread over the run as real traffic is.

use chrono::{TimeZone, Utc};
use oneview::{Channel, Event, IdentifierKind};
use serde_json::json;

/// `events` events for `customers` customers.
pub(crate) struct Workload {
    pub(crate) events: usize,
    pub(crate) customers: usize,
}

impl Workload {
    /// The customer the `n`th event is about.
    pub(crate) fn customer_of(&self, n: usize) -> usize {
        // Spread a customer's events across the whole run, as real traffic does.
        (n * 7_919) % self.customers
    }

    /// The `which`th kind of identifier of `customer` (device, email, user id in turn).
    pub(crate) fn identifier(&self, customer: usize, which: usize) -> (IdentifierKind, String) {
        match which % 3 {
            0 => (IdentifierKind::AnonymousId, format!("device-{customer:06}")),
            1 => (
                IdentifierKind::Email,
                format!("customer{customer}@example.com"),
            ),
            _ => (IdentifierKind::UserId, format!("user-{customer:06}")),
        }
    }

    /// The `n`th event: a product view with about 200 bytes of properties; one in
    /// twenty carries a second identifier of the same customer.
    pub(crate) fn event(&self, n: usize) -> Event {
        let customer = self.customer_of(n);
        let channel = [Channel::Web, Channel::Email, Channel::Mobile][n % 3].clone();
        let (kind, value) = self.identifier(customer, n / self.customers);
        let mut builder = Event::builder("bench", channel, "Product Viewed")
            .message_id(&format!("msg-{n:08}"))
            .occurred_at(Utc.timestamp_opt(1_750_000_000 + n as i64 * 3, 0).unwrap())
            .identifier(kind, &value)
            .properties(json!({
                "path": format!("/products/{}/details", n % 5_000),
                "referrer": "https://search.example.com/?q=running+shoes",
                "sku": format!("SKU-{:08}", n % 50_000),
                "price": (n % 20_000) as f64 / 100.0,
                "currency": "EUR",
                "campaign": "spring-sale-2026",
            }));
        if n.is_multiple_of(20) {
            // 5% of events carry a second identifier of the same customer: a link.
            let (kind, value) = self.identifier(customer, n / self.customers + 1);
            builder = builder.identifier(kind, &value);
        }
        builder.build().expect("valid event")
    }
}
