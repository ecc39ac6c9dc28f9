/// A participant in a choreography.
///
/// Roles are usually small `Copy` enums. The handler additionally needs
/// `Clone + Eq + Hash + Debug`; the `Debug` form of a role is the name used in
/// logs, errors and protocol descriptions.
///
/// # Examples
///
/// ```
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum Party { Alice, Bob }
///
/// impl rumpsteak_aura::Role for Party {
///     type Message = String;
///     fn seal(&mut self) {}
///     fn is_sealed(&self) -> bool { false }
/// }
///
/// let mut alice = Party::Alice;
/// rumpsteak_aura::Role::seal(&mut alice);
/// assert!(!rumpsteak_aura::Role::is_sealed(&alice));
/// ```
pub trait Role {
    /// The type of the messages this role exchanges.
    type Message;

    /// Marks the role as used up, for implementations that track linearity.
    fn seal(&mut self);

    /// Whether [`Role::seal`] has been called.
    fn is_sealed(&self) -> bool;
}

/// Conversion between a protocol's message type and a carrier `L`.
///
/// `upcast` wraps a carrier value into the message type, `downcast` tries to
/// get it back, handing the message back unchanged when it holds something
/// else.
///
/// # Examples
///
/// ```
/// use std::any::Any;
///
/// #[derive(Debug, PartialEq)]
/// struct Ping(u32);
///
/// impl rumpsteak_aura::Message<Box<dyn Any + Send>> for Ping {
///     fn upcast(msg: Box<dyn Any + Send>) -> Self {
///         // A total conversion: anything that is not a Ping becomes Ping(0).
///         msg.downcast::<Ping>().map(|p| *p).unwrap_or(Ping(0))
///     }
///     fn downcast(self) -> Result<Box<dyn Any + Send>, Self> {
///         Ok(Box::new(self))
///     }
/// }
///
/// use rumpsteak_aura::Message;
/// let boxed = Ping(7).downcast().map_err(|_| "not a ping")?;
/// assert_eq!(Ping::upcast(boxed), Ping(7));
/// # Ok::<(), &'static str>(())
/// ```
pub trait Message<L>: Sized {
    /// Wraps a carrier value into the message type.
    fn upcast(label: L) -> Self;

    /// Unwraps the carrier value, or returns the message unchanged.
    fn downcast(self) -> Result<L, Self>;
}
