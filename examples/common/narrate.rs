//! The logs of the flagship examples: [`Steps`] for the in-process runs,
//! [`Say`] for the one-process-per-role runs, shared by the untyped and the
//! typed flagship so that both tell the same story.

use rumpsteak_aura_choreography::effects::Label;

use super::flagship::{MIN_PRICE, Narrator};
use super::{Offer, Receipt, Refusal, Role};

/// The role names padded to one width, so the log lines up.
pub(crate) fn name(role: Role) -> String {
    format!("{:<11}", format!("{role:?}"))
}

pub(crate) fn step(from: Role, to: Role, what: impl std::fmt::Display) {
    println!("  {} -> {} {what}", name(from), name(to));
}

/// Logs every step as `from -> to what`, one round at a time.
pub(crate) struct Steps {
    /// What the coordinator's last step is called in the log.
    pub(crate) done: &'static str,
}

impl Narrator for Steps {
    fn buyer_offers(&self, round: usize, offer: &Offer) {
        println!("Round {round}");
        step(
            Role::Buyer,
            Role::Coordinator,
            format_args!("offer: {} for {}", offer.item, offer.price),
        );
    }

    fn buyer_bought(&self, receipt: &Receipt) {
        println!(
            "  {}                bought {} for {} (receipt #{})",
            name(Role::Buyer),
            receipt.item,
            receipt.price,
            receipt.number
        );
    }

    fn buyer_refused(&self, offer: &Offer, refusal: &Refusal) {
        println!(
            "  {}                gave up on {}: {}",
            name(Role::Buyer),
            offer.item,
            refusal.reason
        );
    }

    fn buyer_done(&self) {
        println!("End");
        step(Role::Buyer, Role::Coordinator, "done");
    }

    fn coordinator_relays_offer(&self, offer: &Offer) {
        step(
            Role::Coordinator,
            Role::Seller,
            format_args!("offer: {} for {} (relayed)", offer.item, offer.price),
        );
    }

    fn coordinator_relays_decision(&self, decision: Label) {
        step(Role::Coordinator, Role::Buyer, decision);
    }

    fn coordinator_relays_receipt(&self, receipt: &Receipt) {
        step(
            Role::Coordinator,
            Role::Buyer,
            format_args!("receipt #{} (relayed)", receipt.number),
        );
    }

    fn coordinator_relays_refusal(&self, _refusal: &Refusal) {
        step(Role::Coordinator, Role::Buyer, "refusal (relayed)");
    }

    fn coordinator_relays_done(&self) {
        step(Role::Coordinator, Role::Seller, self.done);
    }

    fn seller_accepts(&self, receipt: &Receipt) {
        // One print for both steps: once `accept` is sent, the coordinator
        // prints concurrently.
        step(
            Role::Seller,
            Role::Coordinator,
            format_args!(
                "accept ({} >= {MIN_PRICE}), then receipt #{}",
                receipt.price, receipt.number
            ),
        );
    }

    fn seller_rejects(&self, offer: &Offer, _refusal: &Refusal) {
        step(
            Role::Seller,
            Role::Coordinator,
            format_args!("reject ({} < {MIN_PRICE}), then refusal", offer.price),
        );
    }

    fn seller_closes(&self) {
        println!("  {}                closes the shop", name(Role::Seller));
    }
}

pub(crate) fn say(me: Role, what: impl std::fmt::Display) {
    println!("[{me:?}] {what}");
}

/// Logs each role's steps as `[Role] what`, one line per step.
pub(crate) struct Say;

impl Narrator for Say {
    fn buyer_offers(&self, _round: usize, offer: &Offer) {
        say(
            Role::Buyer,
            format_args!("offers {} for {}", offer.item, offer.price),
        );
    }

    fn buyer_bought(&self, receipt: &Receipt) {
        say(
            Role::Buyer,
            format_args!(
                "bought {} for {} (receipt #{})",
                receipt.item, receipt.price, receipt.number
            ),
        );
    }

    fn buyer_refused(&self, _offer: &Offer, refusal: &Refusal) {
        say(Role::Buyer, format_args!("refused: {}", refusal.reason));
    }

    fn buyer_done(&self) {
        say(Role::Buyer, "done");
    }

    fn coordinator_relays_offer(&self, offer: &Offer) {
        say(
            Role::Coordinator,
            format_args!("relays the offer for {}", offer.item),
        );
    }

    fn coordinator_relays_decision(&self, decision: Label) {
        say(Role::Coordinator, format_args!("relays {decision}"));
    }

    fn coordinator_relays_receipt(&self, _receipt: &Receipt) {}

    fn coordinator_relays_refusal(&self, _refusal: &Refusal) {}

    fn coordinator_relays_done(&self) {
        say(Role::Coordinator, "relays done");
    }

    fn seller_accepts(&self, receipt: &Receipt) {
        say(
            Role::Seller,
            format_args!("accepts {} at {}", receipt.item, receipt.price),
        );
    }

    fn seller_rejects(&self, offer: &Offer, _refusal: &Refusal) {
        say(
            Role::Seller,
            format_args!("rejects {} at {}", offer.item, offer.price),
        );
    }

    fn seller_closes(&self) {
        say(Role::Seller, "closes the shop");
    }
}
