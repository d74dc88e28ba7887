//! Prints, one per line, what the `segment` crate sends for one customer: three single
//! messages (posted to `/v1/identify`, `/v1/track` and `/v1/page`, so they carry no
//! `type`) and one batch of five built by its `Batcher` (each message tagged with its
//! `type`, the batch carrying a shared `context`). None has a `messageId`: the client
//! leaves that to the Segment API.

use segment::Batcher;
use segment::message::{Alias, Group, Identify, Message, Page, Screen, Track, User};
use serde_json::json;
use time::macros::datetime;

fn main() {
    let singles = [
        Message::Page(Page {
            user: User::AnonymousId {
                anonymous_id: "anon-web-1".to_owned(),
            },
            name: "Pricing".to_owned(),
            properties: json!({"path": "/pricing", "referrer": "https://search.example/"}),
            timestamp: Some(datetime!(2026-05-01 09:58:12.250 UTC)),
            ..Default::default()
        }),
        Message::Identify(Identify {
            user: User::Both {
                user_id: "u-1001".to_owned(),
                anonymous_id: "anon-web-1".to_owned(),
            },
            traits: json!({"email": "Ana.Lima@Example.com", "name": "Ana Lima", "plan": "free"}),
            timestamp: Some(datetime!(2026-05-01 10:00:00 +02:00)),
            ..Default::default()
        }),
        Message::Track(Track {
            user: User::Both {
                user_id: "u-1001".to_owned(),
                anonymous_id: "anon-web-2".to_owned(),
            },
            event: "Order Completed".to_owned(),
            properties: json!({"order_id": "o-77", "revenue": 42.5, "currency": "EUR"}),
            timestamp: Some(datetime!(2026-05-02 18:30:00 UTC)),
            ..Default::default()
        }),
    ];
    for message in &singles {
        println!("{}", serde_json::to_string(message).expect("serialisable"));
    }

    let mut batcher = Batcher::new(Some(json!({
        "library": {"name": "segment-rs", "version": "0.2.6"},
        "app": {"name": "shop-ios", "version": "4.1.0"},
    })));
    let device = "ios-device-7f3a".to_owned();
    let batch = [
        segment::message::BatchMessage::from(Screen {
            user: User::AnonymousId {
                anonymous_id: device.clone(),
            },
            name: "Home".to_owned(),
            properties: json!({}),
            timestamp: Some(datetime!(2026-05-03 08:00:00 UTC)),
            context: Some(json!({"traits": {"phone": "+1 (415) 555-2671"}})),
            ..Default::default()
        }),
        Alias {
            user: User::UserId {
                user_id: "u-1001".to_owned(),
            },
            previous_id: device.clone(),
            timestamp: Some(datetime!(2026-05-03 08:01:00 UTC)),
            ..Default::default()
        }
        .into(),
        Identify {
            user: User::UserId {
                user_id: "u-1001".to_owned(),
            },
            traits: json!({"plan": "pro"}),
            timestamp: Some(datetime!(2026-05-03 08:02:00 UTC)),
            context: Some(json!({"traits": {"email": "ana.lima@example.com"}})),
            ..Default::default()
        }
        .into(),
        Group {
            user: User::UserId {
                user_id: "u-1001".to_owned(),
            },
            group_id: "acme".to_owned(),
            traits: json!({"name": "Acme Inc", "plan": "enterprise", "employees": 120}),
            timestamp: Some(datetime!(2026-05-03 08:03:00 UTC)),
            ..Default::default()
        }
        .into(),
        Track {
            user: User::Both {
                user_id: "u-1001".to_owned(),
                anonymous_id: device,
            },
            event: "Product Viewed".to_owned(),
            properties: json!({"sku": "SKU-1", "price": 19.99}),
            timestamp: Some(datetime!(2026-05-03 08:05:00 UTC)),
            ..Default::default()
        }
        .into(),
    ];
    for message in batch {
        assert!(batcher.push(message).expect("small enough").is_none());
    }
    println!(
        "{}",
        serde_json::to_string(&batcher.into_message()).expect("serialisable")
    );
}
