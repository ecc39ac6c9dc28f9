use std::fmt;

/// The name of a branch in a choice, sent by `choose` and returned by `offer`.
///
/// Labels are `&'static str` so that they can be matched directly:
///
/// ```
/// use rumpsteak_aura::Label;
///
/// const ACCEPT: Label = Label("accept");
/// let label = Label("accept");
/// let answer = match label.0 {
///     "accept" => "yes",
///     "reject" => "no",
///     other => other, // a peer chose something else: never `unreachable!()`
/// };
/// assert_eq!(answer, "yes");
/// assert_eq!(label, ACCEPT);
/// assert_eq!(label.to_string(), "accept");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(pub &'static str);

impl Label {
    /// The label's text.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(rumpsteak_aura::Label("left").as_str(), "left");
    /// ```
    pub const fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        self.0
    }
}
