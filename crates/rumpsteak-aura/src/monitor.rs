use std::fmt;

use crate::Violation;

/// One step a role is about to take, or has just taken, as a protocol monitor
/// sees it. Roles appear by name (the `Debug` form of the role value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step<'a> {
    /// Sending a message whose Rust type has the short name `message`.
    Send {
        /// The receiving role.
        to: &'a str,
        /// The short type name of the payload, for example `Offer`.
        message: &'a str,
    },
    /// Receiving a message of the type with the short name `message`.
    Recv {
        /// The sending role.
        from: &'a str,
        /// The short type name the receiver asks for.
        message: &'a str,
    },
    /// Sending the choice label `label`.
    Choose {
        /// The role told of the choice.
        to: &'a str,
        /// The chosen label.
        label: &'a str,
    },
    /// Receiving a choice label. `label` is `None` before the label is read
    /// (is an offer from this role allowed now?) and `Some` after (is this
    /// label one of the allowed branches?).
    Offer {
        /// The role that makes the choice.
        from: &'a str,
        /// The label received, once known.
        label: Option<&'a str>,
    },
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Send { to, message } => write!(f, "send {message} to {to}"),
            Step::Recv { from, message } => write!(f, "recv {message} from {from}"),
            Step::Choose { to, label } => write!(f, "choose {label} for {to}"),
            Step::Offer { from, label: None } => write!(f, "offer from {from}"),
            Step::Offer {
                from,
                label: Some(l),
            } => write!(f, "offer {l} from {from}"),
        }
    }
}

/// A move a monitor allowed: [`ProtocolMonitor::check`] returns it, and
/// [`ProtocolMonitor::advance`] applies it once the step has happened.
///
/// It holds the monitor's own number for the state the step leads to, so a
/// step is matched once, not once to check and again to advance. A monitor
/// only applies transitions that it handed out itself.
///
/// # Examples
///
/// ```
/// let t = rumpsteak_aura::Transition::new(3);
/// assert_eq!(t.state(), 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transition(usize);

impl Transition {
    /// A transition to the monitor's state number `state`.
    pub const fn new(state: usize) -> Self {
        Transition(state)
    }

    /// The state the transition leads to.
    pub const fn state(self) -> usize {
        self.0
    }
}

/// Checks a role's steps against its session type at run time.
///
/// The endpoint calls [`check`](ProtocolMonitor::check) before a step touches
/// the wire and [`advance`](ProtocolMonitor::advance) with the transition it
/// returned once the step has succeeded, so a failed or cancelled operation
/// leaves the monitor where it was.
pub trait ProtocolMonitor: Send + fmt::Debug + 'static {
    /// Whether `step` is allowed now, and if so where it leads. Must not
    /// change the monitor's state.
    fn check(&self, step: &Step<'_>) -> Result<Transition, Violation>;

    /// Applies a transition that [`check`](ProtocolMonitor::check) returned,
    /// now that its step has happened.
    fn advance(&mut self, to: Transition);

    /// Checks `step` and, if it is allowed, advances past it at once: for
    /// driving a monitor by hand, where there is no wire in between.
    fn step(&mut self, step: &Step<'_>) -> Result<(), Violation> {
        let to = self.check(step)?;
        self.advance(to);
        Ok(())
    }

    /// The state the monitor is in, numbered as its transitions number
    /// states ([`Transition::state`]), for a monitor whose
    /// [`check`](ProtocolMonitor::check) is a function of that state and the
    /// step alone. A monitor that returns `Some` here promises two things,
    /// for its whole life: in the same state, `check` of the same step gives
    /// the same answer; and after [`advance`](ProtocolMonitor::advance)`(t)`
    /// it is in state `t.state()`.
    ///
    /// The endpoint reads the position once, when the monitor is attached,
    /// and follows it through the transitions it applies. It remembers the
    /// transitions `check` handed out, keyed by the state and by what
    /// identifies the step without reading its text (the peer's place, the
    /// address of the message's type name or of the label), and asks
    /// `check` again only for a step it has not seen in that state. A
    /// refused step is always asked, so its violation is the monitor's own.
    /// The default, `None`, has every step checked.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura::{ProtocolMonitor, Step, Transition, Violation};
    ///
    /// /// Allows one `send Ping to B` after another, forever.
    /// #[derive(Debug)]
    /// struct Pings;
    /// impl ProtocolMonitor for Pings {
    ///     fn check(&self, step: &Step<'_>) -> Result<Transition, Violation> {
    ///         match step {
    ///             Step::Send { to: "B", message: "Ping" } => Ok(Transition::new(0)),
    ///             other => Err(Violation::OutOfProtocol {
    ///                 expected: "send Ping to B".into(),
    ///                 attempted: other.to_string(),
    ///             }),
    ///         }
    ///     }
    ///     fn advance(&mut self, _: Transition) {}
    ///     // One state, so every answer can be remembered.
    ///     fn position(&self) -> Option<usize> {
    ///         Some(0)
    ///     }
    ///     fn is_complete(&self) -> bool { false }
    ///     fn involves(&self, peer: &str) -> bool { peer == "B" }
    ///     fn describe(&self, out: &mut String) { out.push_str("next: send Ping to B"); }
    /// }
    ///
    /// assert_eq!(Pings.position(), Some(0));
    /// ```
    fn position(&self) -> Option<usize> {
        None
    }

    /// Every choice label the role's session type mentions. The endpoint
    /// registers them when the monitor is attached, so that offers of
    /// protocol labels never count against the limits on learning labels
    /// from peers. The default is none.
    fn labels(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Whether the role's session type has reached its end.
    fn is_complete(&self) -> bool;

    /// Whether any remaining step involves `peer`.
    fn involves(&self, peer: &str) -> bool;

    /// Writes a short description of the protocol position (the remaining
    /// local type, abbreviated) into `out`.
    fn describe(&self, out: &mut String);
}
