//! [`Protocol`]: a global type with its roles.

use std::fmt;
use std::str::FromStr;

use crate::parse::Origin;
use crate::{GlobalType, LocalType, Monitor, ParseError, ProjectionError, project};

/// A global type together with the ordered list of its roles.
///
/// The role order decides in which order a chooser tells the roles it must
/// tell (see the crate documentation). It is the order of the `roles`
/// header, or else the order of first appearance.
///
/// `Display` prints a `roles` header (none if there are no roles) and then
/// the global type, so that
/// `Protocol::parse(&p.to_string())` gives back `p`. Two protocols are equal
/// when their roles and global types are; where they were written does not
/// count.
#[derive(Clone, Debug)]
pub struct Protocol {
    roles: Vec<String>,
    /// The families among the roles, with their size parameters.
    families: Vec<(String, String)>,
    global: GlobalType,
    /// Where each node of `global` was written, for a protocol parsed from
    /// text.
    origin: Option<Origin>,
}

impl PartialEq for Protocol {
    fn eq(&self, other: &Self) -> bool {
        self.roles == other.roles && self.families == other.families && self.global == other.global
    }
}

impl Eq for Protocol {}

impl Protocol {
    /// Parses the text syntax described in the crate documentation.
    ///
    /// Parsing checks the syntax, the `roles` header, loop names and
    /// reachability; [`Protocol::validate`] checks the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::Protocol;
    ///
    /// let p = Protocol::parse("roles Seller, Buyer;\nBuyer -> Seller: Offer(Price);")?;
    /// assert_eq!(p.roles(), ["Seller", "Buyer"]);
    /// # Ok::<(), rumpsteak_aura_protocol::ParseError>(())
    /// ```
    pub fn parse(src: &str) -> Result<Self, ParseError> {
        let (roles, families, global, origin) = crate::parse::parse(src)?;
        Ok(Protocol {
            roles,
            families,
            global,
            origin: Some(origin),
        })
    }

    /// A protocol whose roles are those of `global`, in order of first
    /// appearance.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::{GlobalType, Protocol};
    ///
    /// let p = Protocol::new(GlobalType::message("A", "B", "Ping", None, GlobalType::End));
    /// assert_eq!(p.roles(), ["A", "B"]);
    /// ```
    pub fn new(global: GlobalType) -> Self {
        Protocol {
            roles: global.roles(),
            families: Vec::new(),
            global,
            origin: None,
        }
    }

    /// A protocol with the given roles, in the given order. Fails if a role
    /// is listed twice or `global` uses a role that is not listed; roles
    /// listed but unused are allowed (their projection is `end`).
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::{GlobalType, Protocol, ProjectionError};
    ///
    /// let g = GlobalType::message("A", "B", "Ping", None, GlobalType::End);
    /// let p = Protocol::with_roles(["B", "A", "C"], g.clone())?;
    /// assert_eq!(p.roles(), ["B", "A", "C"]);
    /// assert_eq!(
    ///     Protocol::with_roles(["A"], g),
    ///     Err(ProjectionError::UnknownRole { role: "B".into() })
    /// );
    /// # Ok::<(), ProjectionError>(())
    /// ```
    pub fn with_roles<S: Into<String>>(
        roles: impl IntoIterator<Item = S>,
        global: GlobalType,
    ) -> Result<Self, ProjectionError> {
        let mut list: Vec<String> = Vec::new();
        let mut set = std::collections::HashSet::new();
        for r in roles {
            let r = r.into();
            if !set.insert(r.clone()) {
                return Err(ProjectionError::DuplicateRole { role: r });
            }
            list.push(r);
        }
        if let Some(role) = global.roles().into_iter().find(|r| !set.contains(r)) {
            return Err(ProjectionError::UnknownRole { role });
        }
        Ok(Protocol {
            roles: list,
            families: Vec::new(),
            global,
            origin: None,
        })
    }

    /// The roles, in protocol order.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The global type.
    pub fn global(&self) -> &GlobalType {
        &self.global
    }

    /// The local type of `role`: what it sends, receives, chooses and is
    /// told, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::Protocol;
    ///
    /// let p = Protocol::parse("A -> B: Ping; B -> A: Pong(u32);")?;
    /// assert_eq!(p.project("B")?.to_string(), "recv Ping from A; send Pong(u32) to A; end");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn project(&self, role: &str) -> Result<LocalType, ProjectionError> {
        let me = self.index(role)?;
        let node = project::analyse(&self.roles, &self.global)?;
        project::project(&self.roles, &node, me)
    }

    /// Checks the protocol and projects it onto every role; the first
    /// failure is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::{Protocol, ProjectionError};
    ///
    /// let p = Protocol::parse("rec X { continue X; }")?;
    /// assert_eq!(p.validate(), Err(ProjectionError::UnguardedLoop { name: "X".into() }));
    /// # Ok::<(), rumpsteak_aura_protocol::ParseError>(())
    /// ```
    pub fn validate(&self) -> Result<(), ProjectionError> {
        let node = project::analyse(&self.roles, &self.global)?;
        project::project_all(&self.roles, &node).map(drop)
    }

    /// A run-time monitor for `role`: its projection compiled by
    /// [`Monitor::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura::{ProtocolMonitor, Step};
    /// use rumpsteak_aura_protocol::Protocol;
    ///
    /// let p = Protocol::parse("A -> B: Ping;")?;
    /// let mut m = p.monitor_for("A")?;
    /// let step = Step::Send { to: "B", message: "Ping" };
    /// m.step(&step)?;
    /// assert!(m.is_complete());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn monitor_for(&self, role: &str) -> Result<Monitor, ProjectionError> {
        Monitor::new(role, &self.project(role)?)
    }

    /// Where in the text the statement that `err` is about was written: the
    /// 1-based line and column of the `choice`, `rec` or message that
    /// [`validate`](Protocol::validate) or [`project`](Protocol::project)
    /// refused, for a protocol made by [`Protocol::parse`]. `None` for a
    /// protocol built from a [`GlobalType`], and for errors about no
    /// statement (an unknown role).
    ///
    /// The statement is found by where the error is in the global type,
    /// not by the names in `err`: checking and projecting run again,
    /// following their path through the type, and `None` is returned if
    /// they do not fail with exactly `err` (this costs about what
    /// [`validate`](Protocol::validate) does). Statements after a block are
    /// copied into each branch, so an error in a copy is found at the one
    /// place it was written.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::Protocol;
    ///
    /// let p = Protocol::parse(
    ///     "roles A, B, C;\nchoice at A {\n  x: { A -> B: X; C -> B: Hi; }\n  y: { A -> B: Y; }\n}",
    /// )?;
    /// let err = p.validate().unwrap_err();
    /// assert_eq!(p.locate(&err), Some((2, 1)));
    /// # Ok::<(), rumpsteak_aura_protocol::ParseError>(())
    /// ```
    pub fn locate(&self, err: &ProjectionError) -> Option<(usize, usize)> {
        let origin = self.origin.as_ref()?;
        let path = project::locate(&self.roles, &self.global, err)?;
        origin.at(&path)
    }

    /// The families among the roles, each with the name of its size in
    /// the `roles` header: `[("Worker", "n")]` for `roles Coordinator,
    /// Worker[n];`.
    pub fn families(&self) -> &[(String, String)] {
        &self.families
    }

    /// The local type of one concrete role of the protocol run with the
    /// given family sizes: a role that is not a family (`"Coordinator"`),
    /// or a member (`"Worker[3]"`, see [`member_name`](crate::member_name)).
    /// Every family needs a size from 1 to [`MAX_MEMBERS`](crate::MAX_MEMBERS)
    /// in `sizes`.
    ///
    /// [`project`](Protocol::project) projects once for a family (a
    /// member's local type, the same for every member) and once for each
    /// other role, with `foreach` rounds over the family. This unrolls
    /// them: each round once per member, in index order, and a choice told
    /// to the whole family (`select to Worker[*]`) told to each member.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::Protocol;
    ///
    /// let p = Protocol::parse(
    ///     "roles Boss, Worker[n];
    ///      foreach Worker[i] { Boss -> Worker[i]: Task(u32); }
    ///      foreach Worker[i] { Worker[i] -> Boss: Done(u64); }",
    /// )?;
    /// assert_eq!(
    ///     p.project("Boss")?.to_string(),
    ///     "foreach Worker[i] { send Task(u32) to Worker[i]; end }; foreach Worker[i] { recv Done(u64) from Worker[i]; end }; end"
    /// );
    /// assert_eq!(p.project("Worker")?.to_string(), "recv Task(u32) from Boss; send Done(u64) to Boss; end");
    /// assert_eq!(
    ///     p.instantiate("Boss", &[("Worker", 2)])?.to_string(),
    ///     "send Task(u32) to Worker[0]; send Task(u32) to Worker[1]; recv Done(u64) from Worker[0]; recv Done(u64) from Worker[1]; end"
    /// );
    /// let worker = p.monitor_instance("Worker[1]", &[("Worker", 2)])?;
    /// assert_eq!(worker.role(), "Worker[1]");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn instantiate(
        &self,
        role: &str,
        sizes: &[(&str, usize)],
    ) -> Result<LocalType, ProjectionError> {
        let size = |family: &str| -> Result<usize, ProjectionError> {
            match sizes.iter().find(|(f, _)| *f == family) {
                Some(&(_, n)) if (1..=crate::MAX_MEMBERS).contains(&n) => Ok(n),
                _ => Err(ProjectionError::FamilySize {
                    family: family.to_owned(),
                }),
            }
        };
        for (family, _) in &self.families {
            size(family)?;
        }
        let local = match crate::family::split_member(role) {
            Some((family, index)) if self.families.iter().any(|(f, _)| f == family) => {
                let n = size(family)?;
                if index >= n {
                    return Err(ProjectionError::NoSuchMember {
                        family: family.to_owned(),
                        index,
                        size: n,
                    });
                }
                self.project(family)?
            }
            _ if self.families.iter().any(|(f, _)| f == role) => {
                return Err(ProjectionError::UnknownRole {
                    role: role.to_owned(),
                });
            }
            _ => self.project(role)?,
        };
        crate::family::unroll(&local, &size)
    }

    /// A monitor for one concrete role of the protocol run with the given
    /// family sizes: [`instantiate`](Protocol::instantiate) compiled by
    /// [`Monitor::new`], watching `role` (`"Worker[3]"` for a member).
    pub fn monitor_instance(
        &self,
        role: &str,
        sizes: &[(&str, usize)],
    ) -> Result<Monitor, ProjectionError> {
        Monitor::new(role, &self.instantiate(role, sizes)?)
    }

    /// Every concrete role of the protocol run with the given family sizes,
    /// in protocol order, each family as its members in index order:
    /// `["Coordinator", "Worker[0]", "Worker[1]"]`. This is the table of
    /// role names a transport's configuration (a mesh's addresses) is
    /// keyed by.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumpsteak_aura_protocol::Protocol;
    ///
    /// let p = Protocol::parse("roles Boss, Worker[n]; foreach Worker[i] { Boss -> Worker[i]: Go; }")?;
    /// assert_eq!(p.instance_roles(&[("Worker", 2)])?, ["Boss", "Worker[0]", "Worker[1]"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn instance_roles(&self, sizes: &[(&str, usize)]) -> Result<Vec<String>, ProjectionError> {
        let mut out = Vec::new();
        for r in &self.roles {
            if self.families.iter().any(|(f, _)| f == r) {
                let n = match sizes.iter().find(|(f, _)| f == r) {
                    Some(&(_, n)) if (1..=crate::MAX_MEMBERS).contains(&n) => n,
                    _ => return Err(ProjectionError::FamilySize { family: r.clone() }),
                };
                out.extend((0..n).map(|k| crate::member_name(r, k)));
            } else {
                out.push(r.clone());
            }
        }
        Ok(out)
    }

    fn index(&self, role: &str) -> Result<usize, ProjectionError> {
        self.roles
            .iter()
            .position(|r| r == role)
            .ok_or_else(|| ProjectionError::UnknownRole {
                role: role.to_owned(),
            })
    }
}

impl FromStr for Protocol {
    type Err = ParseError;

    /// Same as [`Protocol::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::parse(s)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.roles.is_empty() {
            // `roles ;` does not parse; no header means no roles here.
            return write!(f, "{}", self.global);
        }
        f.write_str("roles ")?;
        for (i, r) in self.roles.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match self.families.iter().find(|(name, _)| name == r) {
                Some((_, size)) => write!(f, "{r}[{size}]")?,
                None => f.write_str(r)?,
            }
        }
        write!(f, ";\n{}", self.global)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_with_header() {
        let p = Protocol::parse("roles C, A, B;\nA -> B: Ping;").unwrap();
        assert_eq!(p.to_string(), "roles C, A, B;\nA -> B: Ping;");
        assert_eq!(Protocol::parse(&p.to_string()).unwrap(), p);
        assert_eq!(p.project("C").unwrap(), LocalType::End);
        assert_eq!(
            p.project("D"),
            Err(ProjectionError::UnknownRole { role: "D".into() })
        );
    }
}
