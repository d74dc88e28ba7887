//! The throughput benches' workload: events for customers with about three identifiers
//! each, spread over the run as real traffic is.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use oneview::store::Store;
use oneview::{Channel, Customers, Event, Identifier, IdentifierKind};
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

/// Latencies of `samples` identifier lookups, then of `samples` unified-view reads (20
/// entries), of customers spread over the workload; the p50 and p99 of each, in µs.
pub(crate) struct Reads {
    pub(crate) lookup_p50: f64,
    pub(crate) lookup_p99: f64,
    pub(crate) view_p50: f64,
    pub(crate) view_p99: f64,
}

impl Reads {
    /// Prints the latencies for people.
    pub(crate) fn print(&self) {
        println!(
            "lookup p50 {:.1} µs, p99 {:.1} µs",
            self.lookup_p50, self.lookup_p99
        );
        println!(
            "view p50 {:.1} µs, p99 {:.1} µs",
            self.view_p50, self.view_p99
        );
    }

    /// The latencies as the fields of a bench's JSON line, in µs to one decimal.
    pub(crate) fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let tenth = |us: f64| serde_json::json!((us * 10.0).round() / 10.0);
        [
            ("lookup_p50_us", self.lookup_p50),
            ("lookup_p99_us", self.lookup_p99),
            ("view_p50_us", self.view_p50),
            ("view_p99_us", self.view_p99),
        ]
        .into_iter()
        .map(|(name, us)| (name.to_owned(), tenth(us)))
        .collect()
    }
}

impl Workload {
    /// One identifier of a customer spread over the workload, the `i`th sample.
    fn sample(&self, i: usize) -> Identifier {
        let customer = (i * 104_729) % self.customers;
        let (kind, value) = self.identifier(customer, i);
        Identifier::new(kind, &value).unwrap()
    }

    /// Times `samples` lookups and `samples` views on `customers`, which hold this
    /// workload.
    pub(crate) fn time_reads<S: Store>(&self, customers: &Customers<S>, samples: usize) -> Reads {
        let mut lookups = Vec::with_capacity(samples);
        for i in 0..samples {
            let identifier = self.sample(i);
            let began = Instant::now();
            let owner = customers
                .store()
                .owners(std::slice::from_ref(&identifier))
                .unwrap();
            lookups.push(began.elapsed());
            assert!(owner[0].is_some() || self.events < self.customers * 3);
        }
        let mut views = Vec::with_capacity(samples);
        for i in 0..samples {
            let identifier = self.sample(i + samples);
            let began = Instant::now();
            let profile = customers.profile_with(identifier, 20).unwrap();
            views.push(began.elapsed());
            std::hint::black_box(profile);
        }
        Reads {
            lookup_p50: percentile(&mut lookups, 0.5),
            lookup_p99: percentile(&mut lookups, 0.99),
            view_p50: percentile(&mut views, 0.5),
            view_p99: percentile(&mut views, 0.99),
        }
    }
}

/// The `p` quantile of `samples`, in µs.
fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1e6
}
