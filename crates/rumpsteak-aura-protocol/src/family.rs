//! Role families: a family's local types hold `foreach` rounds and choices
//! told to the whole family; for a size known at run time they unroll into
//! ordinary local types over named members, which monitors check.

use crate::{LocalType, ProjectionError};

/// The most members a family may have when it is instantiated. The other
/// roles' local types grow with the size (a choice told to the family is a
/// chain of one select per member), and code that walks a local type
/// recurses once per choice, so the size is bounded like the nesting of
/// the text.
pub const MAX_MEMBERS: usize = 256;

/// The name of member `index` of `family`, as local types, monitors and
/// the handler's role names (a role's `Debug` form) write it: `Worker[3]`.
///
/// # Examples
///
/// ```
/// assert_eq!(rumpsteak_aura_protocol::member_name("Worker", 3), "Worker[3]");
/// ```
pub fn member_name(family: &str, index: usize) -> String {
    format!("{family}[{index}]")
}

/// `Worker[3]` as `("Worker", 3)`; `None` for a name that is not a member.
pub(crate) fn split_member(role: &str) -> Option<(&str, usize)> {
    let (family, rest) = role.split_once('[')?;
    let index = rest.strip_suffix(']')?.parse().ok()?;
    Some((family, index))
}

/// Unrolls every `foreach` and every choice told to a whole family in `l`,
/// with `size` giving each family's size.
pub(crate) fn unroll(
    l: &LocalType,
    size: &dyn Fn(&str) -> Result<usize, ProjectionError>,
) -> Result<LocalType, ProjectionError> {
    let arms =
        |branches: &[(String, LocalType)]| -> Result<Vec<(String, LocalType)>, ProjectionError> {
            branches
                .iter()
                .map(|(label, b)| Ok((label.clone(), unroll(b, size)?)))
                .collect()
        };
    Ok(match l {
        LocalType::Send {
            to,
            label,
            payload,
            then,
        } => LocalType::Send {
            to: to.clone(),
            label: label.clone(),
            payload: payload.clone(),
            then: Box::new(unroll(then, size)?),
        },
        LocalType::Recv {
            from,
            label,
            payload,
            then,
        } => LocalType::Recv {
            from: from.clone(),
            label: label.clone(),
            payload: payload.clone(),
            then: Box::new(unroll(then, size)?),
        },
        // Told to every member: the label goes to each in index order, the
        // first select offering every label and the later ones the one
        // taken, as for several told roles.
        LocalType::Select { to, branches } if to.ends_with("[*]") => {
            let family = to.trim_end_matches("[*]");
            let n = size(family)?;
            let mut out = Vec::with_capacity(branches.len());
            for (label, body) in arms(branches)? {
                let chain = (1..n).rev().fold(body, |acc, k| LocalType::Select {
                    to: member_name(family, k),
                    branches: vec![(label.clone(), acc)],
                });
                out.push((label, chain));
            }
            LocalType::Select {
                to: member_name(family, 0),
                branches: out,
            }
        }
        LocalType::Select { to, branches } => LocalType::Select {
            to: to.clone(),
            branches: arms(branches)?,
        },
        LocalType::Branch { from, branches } => LocalType::Branch {
            from: from.clone(),
            branches: arms(branches)?,
        },
        LocalType::Rec { name, body } => LocalType::Rec {
            name: name.clone(),
            body: Box::new(unroll(body, size)?),
        },
        LocalType::Foreach {
            family,
            index,
            body,
            then,
        } => {
            let n = size(family)?;
            let symbolic = format!("{family}[{index}]");
            let mut acc = unroll(then, size)?;
            for k in (0..n).rev() {
                let round = rename(body, &symbolic, &member_name(family, k));
                acc = sequence(&unroll(&round, size)?, acc);
            }
            acc
        }
        other => other.clone(),
    })
}

/// `l` with the peer `from` named `to`.
fn rename(l: &LocalType, from: &str, to: &str) -> LocalType {
    let peer = |p: &String| if p == from { to.to_owned() } else { p.clone() };
    let arms = |branches: &[(String, LocalType)]| {
        branches
            .iter()
            .map(|(label, b)| (label.clone(), rename(b, from, to)))
            .collect()
    };
    match l {
        LocalType::Send {
            to: t,
            label,
            payload,
            then,
        } => LocalType::Send {
            to: peer(t),
            label: label.clone(),
            payload: payload.clone(),
            then: Box::new(rename(then, from, to)),
        },
        LocalType::Recv {
            from: f,
            label,
            payload,
            then,
        } => LocalType::Recv {
            from: peer(f),
            label: label.clone(),
            payload: payload.clone(),
            then: Box::new(rename(then, from, to)),
        },
        LocalType::Select { to: t, branches } => LocalType::Select {
            to: peer(t),
            branches: arms(branches),
        },
        LocalType::Branch { from: f, branches } => LocalType::Branch {
            from: peer(f),
            branches: arms(branches),
        },
        other => other.clone(),
    }
}

/// `first`, every end of which goes on with `then`. `first` is a round of
/// a `foreach`, which holds no loop.
fn sequence(first: &LocalType, then: LocalType) -> LocalType {
    match first {
        LocalType::End => then,
        LocalType::Send {
            to,
            label,
            payload,
            then: t,
        } => LocalType::Send {
            to: to.clone(),
            label: label.clone(),
            payload: payload.clone(),
            then: Box::new(sequence(t, then)),
        },
        LocalType::Recv {
            from,
            label,
            payload,
            then: t,
        } => LocalType::Recv {
            from: from.clone(),
            label: label.clone(),
            payload: payload.clone(),
            then: Box::new(sequence(t, then)),
        },
        LocalType::Select { to, branches } => LocalType::Select {
            to: to.clone(),
            branches: branches
                .iter()
                .map(|(l, b)| (l.clone(), sequence(b, then.clone())))
                .collect(),
        },
        LocalType::Branch { from, branches } => LocalType::Branch {
            from: from.clone(),
            branches: branches
                .iter()
                .map(|(l, b)| (l.clone(), sequence(b, then.clone())))
                .collect(),
        },
        other => other.clone(),
    }
}
