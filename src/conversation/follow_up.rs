//! Closing the loop: for the customers who gave feedback in a period, whether the
//! company answered them in time, and what they did next — did they buy again, and how
//! likely are they still to be customers.
//!
//! A help desk sees the ticket, not the purchase that followed it; on one customer view
//! both are the same customer's history. [`Customers::follow_up`] walks the store one
//! customer at a time. Each customer counts once, by their first feedback in the period:
//! answered when the company reached them after it (in its thread when it has one,
//! otherwise in any conversation), within target when that took no longer than
//! [`FollowUpOptions::answer_within_seconds`]. A detractor is a customer whose feedback in
//! the period holds an NPS answer of 0 to 6 or a CSAT answer of 1 or 2.
//!
//! [`Customers::follow_up`]: crate::Customers::follow_up

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Conversation;
use super::report::answered_at;
use crate::model::{Feedback, Scale, Score};

/// Which feedback to follow up, and what counts as answering it in time and as buying.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FollowUpOptions {
    /// The start of the period feedback was given in (inclusive).
    pub from: DateTime<Utc>,
    /// The end of it (exclusive).
    pub to: DateTime<Utc>,
    /// How long an answer may take, in seconds of wall-clock time.
    pub answer_within_seconds: i64,
    /// The events that are purchases. Default: `Order Completed`.
    pub purchase_events: Vec<String>,
}

impl FollowUpOptions {
    /// Feedback given in `[from, to)`, to be answered within `answer_within_seconds`;
    /// purchases are `Order Completed` events.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, answer_within_seconds: i64) -> Self {
        Self {
            from,
            to,
            answer_within_seconds,
            purchase_events: vec!["Order Completed".to_owned()],
        }
    }
}

/// How many of a group of customers bought again after their feedback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoughtAgain {
    /// Customers in the group.
    pub customers: u64,
    /// Those with a purchase after their feedback.
    pub bought_again: u64,
}

/// How likely a group of customers is still to be active.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StillActive {
    /// Customers in the group.
    pub customers: u64,
    /// Those the purchase model has an estimate for.
    pub estimated: u64,
    /// Their mean probability of being active; `None` without estimates.
    pub mean_p_alive: Option<f64>,
}

/// The follow-up of a period's feedback. See the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Customers who gave feedback in the period.
    pub customers: u64,
    /// Of them, answered within the target.
    pub answered_within_target: u64,
    /// Answered, but later than the target.
    pub answered_late: u64,
    /// Not answered at all.
    pub unanswered: u64,
    /// Answered customers who bought again.
    pub answered_bought_again: BoughtAgain,
    /// Unanswered customers who bought again.
    pub unanswered_bought_again: BoughtAgain,
    /// Answered detractors, and how likely they are still to be active.
    pub answered_detractors: StillActive,
    /// Unanswered detractors, and how likely they are still to be active.
    pub unanswered_detractors: StillActive,
}

/// Gathers the follow-up customer by customer.
pub(crate) struct Builder {
    options: FollowUpOptions,
    follow_up: FollowUp,
    /// The sum of P(alive) over answered and over unanswered detractors with an estimate.
    p_alive_sums: [f64; 2],
}

impl Builder {
    pub(crate) fn new(options: FollowUpOptions) -> Self {
        Self {
            options,
            follow_up: FollowUp::default(),
            p_alive_sums: [0.0; 2],
        }
    }

    pub(crate) fn purchase_events(&self) -> &[String] {
        &self.options.purchase_events
    }

    /// Adds one customer: their conversations, their feedback, the times they bought,
    /// and the model's probability that they are still active, if it has one.
    pub(crate) fn add(
        &mut self,
        conversations: &[Conversation],
        feedback: &[Feedback],
        purchases: &[DateTime<Utc>],
        p_alive: Option<f64>,
    ) {
        let (from, to) = (self.options.from, self.options.to);
        let given: Vec<&Feedback> = feedback
            .iter()
            .filter(|f| from <= f.at && f.at < to)
            .collect();
        let Some(first) = given.iter().min_by_key(|f| (f.at, f.record)) else {
            return;
        };
        let follow_up = &mut self.follow_up;
        follow_up.customers += 1;
        let answer = answered_at(first, conversations, DateTime::<Utc>::MAX_UTC);
        let answered = answer.is_some();
        match answer {
            Some(at) if (at - first.at).num_seconds() <= self.options.answer_within_seconds => {
                follow_up.answered_within_target += 1;
            }
            Some(_) => follow_up.answered_late += 1,
            None => follow_up.unanswered += 1,
        }
        let bought_again = purchases.iter().any(|&at| at > first.at);
        let group = if answered {
            &mut follow_up.answered_bought_again
        } else {
            &mut follow_up.unanswered_bought_again
        };
        group.customers += 1;
        group.bought_again += u64::from(bought_again);
        let detractor = given.iter().any(|f| {
            f.is_detractor()
                || matches!(f.score, Some(Score { value, scale: Scale::Csat }) if value <= 2.0)
        });
        if detractor {
            let (side, sum) = if answered {
                (
                    &mut follow_up.answered_detractors,
                    &mut self.p_alive_sums[0],
                )
            } else {
                (
                    &mut follow_up.unanswered_detractors,
                    &mut self.p_alive_sums[1],
                )
            };
            side.customers += 1;
            if let Some(p) = p_alive {
                side.estimated += 1;
                *sum += p;
            }
        }
    }

    pub(crate) fn finish(mut self) -> FollowUp {
        let sides = [
            &mut self.follow_up.answered_detractors,
            &mut self.follow_up.unanswered_detractors,
        ];
        for (side, sum) in sides.into_iter().zip(self.p_alive_sums) {
            side.mean_p_alive = (side.estimated > 0).then(|| sum / side.estimated as f64);
        }
        self.follow_up
    }
}
