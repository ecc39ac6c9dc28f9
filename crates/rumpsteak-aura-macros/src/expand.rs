//! From a parsed invocation to the generated module.

use std::collections::{BTreeSet, HashMap};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use rumpsteak_aura_protocol::{LocalType, Protocol};
use syn::{Ident, LitStr, Type};

use crate::input::{Input, Source};
use crate::names::{camel, ident, snake};

/// Names the generated protocol module defines itself; a role whose module
/// would take one of them is refused.
const RESERVED: [&str; 3] = ["unit", "protocol", "monitor"];

/// The methods of `Sizes`; a family's size is read with a method named as
/// its module, so a family whose module would take one of them is refused.
const SIZES_METHODS: [&str; 3] = ["new", "roles", "pairs"];

pub(crate) fn expand(input: &Input) -> syn::Result<TokenStream> {
    let span = input.source.span();
    let (text, track) = load(&input.source)?;
    let prefix = match &input.source {
        Source::Inline(_) => String::new(),
        Source::File { lit, .. } => format!("{}: ", lit.value()),
    };
    let protocol =
        Protocol::parse(&text).map_err(|e| syn::Error::new(span, format!("{prefix}{e}")))?;
    protocol.validate().map_err(|e| {
        let at = match protocol.locate(&e) {
            Some((line, column)) => format!("line {line}, column {column}: "),
            None => String::new(),
        };
        syn::Error::new(span, format!("{prefix}{at}{e}"))
    })?;
    if protocol.roles().is_empty() {
        return Err(syn::Error::new(span, "the protocol has no roles"));
    }
    Gen::new(input, &protocol, &text, track)?.module()
}

/// The protocol text, and for a file the tokens that make the build
/// depend on it.
fn load(source: &Source) -> syn::Result<(String, TokenStream)> {
    match source {
        Source::Inline(lit) => Ok((lit.value(), TokenStream::new())),
        Source::File { lit, path } => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                syn::Error::new(lit.span(), format!("cannot read {}: {e}", path.display()))
            })?;
            let abs = LitStr::new(&path.to_string_lossy(), lit.span());
            // `include_str!` is how a macro's output depends on a file on
            // stable Rust: the build reruns when the file changes.
            Ok((text, quote! { const _: &str = ::core::include_str!(#abs); }))
        }
    }
}

/// Everything the expansion needs about the protocol.
struct Gen<'i> {
    input: &'i Input,
    text: String,
    track: TokenStream,
    roles: Vec<String>,
    /// The `Role` variant of each role.
    variants: Vec<Ident>,
    /// The module of each role.
    modules: Vec<Ident>,
    locals: Vec<LocalType>,
    /// Every message without a payload, by label: its unit type.
    units: Vec<String>,
    /// Every choice label.
    labels: Vec<String>,
    /// For each role, its number among the families if it is one.
    family_of: Vec<Option<usize>>,
    /// The roles that are families, in protocol order.
    families: Vec<usize>,
}

impl<'i> Gen<'i> {
    fn new(
        input: &'i Input,
        protocol: &Protocol,
        text: &str,
        track: TokenStream,
    ) -> syn::Result<Self> {
        let span = input.source.span();
        let roles = protocol.roles().to_vec();
        let mut variants = Vec::new();
        let mut modules: Vec<Ident> = Vec::new();
        let mut locals = Vec::new();
        for role in &roles {
            variants.push(ident(role, "role", span)?);
            let module = snake(role);
            if RESERVED.contains(&module.as_str()) {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "role `{role}` would be generated as module `{module}`, a name protocol! uses itself: rename the role"
                    ),
                ));
            }
            if SIZES_METHODS.contains(&module.as_str())
                && protocol.families().iter().any(|(f, _)| f == role)
            {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "the family `{role}` would be generated as module `{module}` and as the method `Sizes::{module}` that reads its size, but `Sizes::{module}` is a name protocol! uses itself: rename the family"
                    ),
                ));
            }
            let module = ident(&module, "role", span)?;
            if let Some(other) = modules.iter().position(|m| *m == module) {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "roles `{}` and `{role}` would both be generated as module `{module}`: rename one",
                        roles[other]
                    ),
                ));
            }
            modules.push(module);
            // `validate` projected every role already.
            let local = protocol
                .project(role)
                .map_err(|e| syn::Error::new(span, e.to_string()))?;
            locals.push(local);
        }
        let mut family_of = Vec::new();
        let mut families = Vec::new();
        for (i, role) in roles.iter().enumerate() {
            if protocol.families().iter().any(|(f, _)| f == role) {
                family_of.push(Some(families.len()));
                families.push(i);
            } else {
                family_of.push(None);
            }
        }
        let mut units = BTreeSet::new();
        let mut labels = BTreeSet::new();
        for l in &locals {
            collect(l, &mut units, &mut labels);
        }
        Ok(Gen {
            input,
            text: text.to_owned(),
            track,
            roles,
            variants,
            modules,
            locals,
            units: units.into_iter().collect(),
            labels: labels.into_iter().collect(),
            family_of,
            families,
        })
    }

    fn span(&self) -> Span {
        self.input.source.span()
    }

    fn module(&self) -> syn::Result<TokenStream> {
        let Input {
            attrs, vis, name, ..
        } = self.input;
        let t = &self.input.support;
        let text = &self.text;
        let track = &self.track;
        let role_def = self.role_def();
        let variants = &self.variants;
        let role_names = &self.roles;
        let units = self.units_def()?;
        let labels = &self.labels;
        let label_count = labels.len();
        let monitor = if self.families.is_empty() {
            quote! {
                /// The run-time monitor of `role`, to attach to its endpoint
                /// (`RumpsteakEndpoint::with_protocol`) when it talks to
                /// peers that are not typed. Fails only for a value of the
                /// role type that is not a role of this protocol.
                pub fn monitor(
                    role: Role,
                ) -> ::core::result::Result<#t::Monitor, #t::ProjectionError> {
                    #(
                        if role == Role::#variants {
                            return protocol().monitor_for(#role_names);
                        }
                    )*
                    ::core::result::Result::Err(#t::ProjectionError::UnknownRole {
                        role: ::std::format!("{:?}", role),
                    })
                }
            }
        } else {
            self.sizes_def()?
        };
        let mut role_modules = Vec::new();
        for i in 0..self.roles.len() {
            role_modules.push(RoleGen::new(self, i)?.module()?);
        }
        Ok(quote! {
            #(#attrs)*
            #[allow(unreachable_pub, unused_imports, non_camel_case_types, clippy::all)]
            #vis mod #name {
                use super::*;

                #track

                /// The protocol text this module was generated from.
                pub const PROTOCOL: &str = #text;

                #role_def

                /// The protocol, parsed once, for monitors and for printing.
                pub fn protocol() -> &'static #t::Protocol {
                    static PARSED: ::std::sync::OnceLock<#t::Protocol> = ::std::sync::OnceLock::new();
                    PARSED.get_or_init(|| match #t::Protocol::parse(PROTOCOL) {
                        ::core::result::Result::Ok(p) => p,
                        ::core::result::Result::Err(e) => ::core::unreachable!(
                            "invariant: protocol! checked this text at compile time: {}", e
                        ),
                    })
                }

                #monitor

                #units

                /// Every choice label of the protocol, registered once per
                /// process when a role starts.
                #[doc(hidden)]
                pub static __LABELS: [#t::Label; #label_count] = [#(#t::Label(#labels)),*];
                #[doc(hidden)]
                pub static __REGISTER: ::std::sync::Once = ::std::sync::Once::new();

                #(#role_modules)*
            }
        })
    }

    fn role_def(&self) -> TokenStream {
        let t = &self.input.support;
        if let Some(path) = &self.input.roles {
            return quote! {
                /// The role type of the protocol, named by the invocation.
                pub type Role = #path;
            };
        }
        if !self.families.is_empty() {
            return self.family_role_def();
        }
        let variants = &self.variants;
        let names = &self.roles;
        let docs = names.iter().map(|n| format!("The role `{n}`."));
        let count = names.len();
        quote! {
            /// The roles of the protocol. A role's `Debug` form is its name
            /// in the protocol, which is how monitors know it.
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum Role {
                #(#[doc = #docs] #variants,)*
            }

            impl Role {
                /// Every role, in protocol order.
                pub const ALL: [Role; #count] = [#(Role::#variants),*];

                /// The role's name in the protocol.
                pub const fn name(self) -> &'static str {
                    match self {
                        #(Role::#variants => #names,)*
                    }
                }
            }

            impl #t::Role for Role {
                type Message = ();
                fn seal(&mut self) {}
                fn is_sealed(&self) -> bool {
                    false
                }
            }
        }
    }

    /// The `Role` enum of a protocol with families: a member is the
    /// family's variant with its index, and its `Debug` form is the
    /// protocol's member name, `Worker[3]`, which is how monitors know it.
    fn family_role_def(&self) -> TokenStream {
        let t = &self.input.support;
        let mut variants = Vec::new();
        let mut debug = Vec::new();
        let mut names = Vec::new();
        for (i, (v, name)) in self.variants.iter().zip(&self.roles).enumerate() {
            if self.family_of[i].is_some() {
                let doc =
                    format!("A member of the family `{name}`, by its index from 0: `{name}[i]`.");
                variants.push(quote!(#[doc = #doc] #v(usize)));
                let format = format!("{name}[{{}}]");
                debug.push(quote!(Role::#v(i) => ::core::write!(f, #format, i)));
                names.push(quote!(Role::#v(_) => #name));
            } else {
                let doc = format!("The role `{name}`.");
                variants.push(quote!(#[doc = #doc] #v));
                debug.push(quote!(Role::#v => f.write_str(#name)));
                names.push(quote!(Role::#v => #name));
            }
        }
        quote! {
            /// The roles of the protocol, a family's members by index. A
            /// role's `Debug` form is its name in the protocol (`Worker[3]`
            /// for a member), which is how monitors know it; `Sizes::roles`
            /// lists every role of a run.
            #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum Role {
                #(#variants,)*
            }

            impl ::core::fmt::Debug for Role {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    match self {
                        #(#debug,)*
                    }
                }
            }

            impl Role {
                /// The role's name in the protocol; for a member, its
                /// family's name.
                pub const fn name(self) -> &'static str {
                    match self {
                        #(#names,)*
                    }
                }
            }

            impl #t::Role for Role {
                type Message = ();
                fn seal(&mut self) {}
                fn is_sealed(&self) -> bool {
                    false
                }
            }
        }
    }

    /// `Sizes`, the size of every family for one run, checked once, and
    /// `monitor(role, sizes)`.
    fn sizes_def(&self) -> syn::Result<TokenStream> {
        let t = &self.input.support;
        let count = self.families.len();
        let mut params = Vec::new();
        let mut accessors = Vec::new();
        let mut checks = Vec::new();
        let mut pairs = Vec::new();
        let mut param_docs = String::new();
        for (f, &r) in self.families.iter().enumerate() {
            let name = &self.roles[r];
            let param = &self.modules[r];
            params.push(quote!(#param: usize));
            checks.push(quote! {
                if !(1..=#t::MAX_MEMBERS).contains(&#param) {
                    return ::core::result::Result::Err(#t::ProjectionError::FamilySize {
                        family: ::std::string::String::from(#name),
                    });
                }
            });
            let doc = format!("The number of members of the family `{name}`.");
            accessors.push(quote! {
                #[doc = #doc]
                pub const fn #param(&self) -> usize {
                    self.counts[#f]
                }
            });
            pairs.push(quote!((#name, self.counts[#f])));
            param_docs.push_str(&format!(" `{param}` is the number of members of `{name}`."));
        }
        let param_names: Vec<&Ident> = self.families.iter().map(|&r| &self.modules[r]).collect();
        let mut all = Vec::new();
        for (i, v) in self.variants.iter().enumerate() {
            all.push(match self.family_of[i] {
                Some(f) => quote!(out.extend((0..self.counts[#f]).map(|k| Role::#v(k)));),
                None => quote!(out.push(Role::#v);),
            });
        }
        let new_doc = format!(
            "The sizes of the families for one run.{param_docs} Each must be from 1 to \
             `MAX_MEMBERS` (256), as for monitors; another is \
             `ProjectionError::FamilySize`."
        );
        Ok(quote! {
            /// How many members each family of the protocol has in one run:
            /// known only at run time, checked once by `Sizes::new`, and
            /// given to every role that is not a family member when it
            /// starts (`coordinator::start(.., sizes)`), to each member
            /// (`worker::Member::new(sizes, i)`) and to `monitor`.
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
            pub struct Sizes {
                counts: [usize; #count],
            }

            impl Sizes {
                #[doc = #new_doc]
                pub fn new(
                    #(#params),*
                ) -> ::core::result::Result<Sizes, #t::ProjectionError> {
                    #(#checks)*
                    ::core::result::Result::Ok(Sizes { counts: [#(#param_names),*] })
                }

                #(#accessors)*

                /// Every role of the run, in protocol order, each family as
                /// its members in index order: the table a transport's
                /// addresses are keyed by (as `Protocol::instance_roles`).
                pub fn roles(&self) -> ::std::vec::Vec<Role> {
                    let mut out = ::std::vec::Vec::new();
                    #(#all)*
                    out
                }

                /// Each family's name with its size, as
                /// `Protocol::instantiate` and `Protocol::monitor_instance`
                /// take them.
                pub fn pairs(&self) -> [(&'static str, usize); #count] {
                    [#(#pairs),*]
                }
            }

            /// The run-time monitor of `role` (a member is `Role::Worker(i)`)
            /// in a run with `sizes`, to attach to its endpoint
            /// (`RumpsteakEndpoint::with_protocol`) when it talks to peers
            /// that are not typed. Fails for a member past its family's
            /// size, and for a value of the role type that is not a role of
            /// this protocol.
            pub fn monitor(
                role: Role,
                sizes: Sizes,
            ) -> ::core::result::Result<#t::Monitor, #t::ProjectionError> {
                protocol().monitor_instance(&::std::format!("{:?}", role), &sizes.pairs())
            }
        })
    }

    /// One unit type per message without a payload: it travels as `()` and
    /// its type name is the label, which is what a monitor checks.
    fn units_def(&self) -> syn::Result<TokenStream> {
        let t = &self.input.support;
        let mut defs = Vec::new();
        for label in &self.units {
            let ty = ident(label, "message label", self.span())?;
            let doc = format!("The message `{label}`, which carries no payload.");
            defs.push(quote! {
                #[doc = #doc]
                #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
                pub struct #ty;

                impl #t::serde::Serialize for #ty {
                    fn serialize<S: #t::serde::Serializer>(
                        &self,
                        serializer: S,
                    ) -> ::core::result::Result<S::Ok, S::Error> {
                        #t::unit_serde::serialize(serializer)
                    }
                }

                impl<'de> #t::serde::Deserialize<'de> for #ty {
                    fn deserialize<D: #t::serde::Deserializer<'de>>(
                        deserializer: D,
                    ) -> ::core::result::Result<Self, D::Error> {
                        #t::unit_serde::deserialize(deserializer).map(|()| #ty)
                    }
                }
            });
        }
        Ok(quote! {
            /// The messages without a payload, one unit type each.
            pub mod unit {
                #(#defs)*
            }
        })
    }
}

/// Collects the labels of payload-less messages and of choices.
fn collect(l: &LocalType, units: &mut BTreeSet<String>, labels: &mut BTreeSet<String>) {
    match l {
        LocalType::Send {
            label,
            payload,
            then,
            ..
        }
        | LocalType::Recv {
            label,
            payload,
            then,
            ..
        } => {
            if payload.is_none() {
                units.insert(label.clone());
            }
            collect(then, units, labels);
        }
        LocalType::Select { branches, .. } | LocalType::Branch { branches, .. } => {
            for (label, body) in branches {
                labels.insert(label.clone());
                collect(body, units, labels);
            }
        }
        LocalType::Rec { body, .. } => collect(body, units, labels),
        LocalType::Foreach { body, then, .. } => {
            collect(body, units, labels);
            collect(then, units, labels);
        }
        _ => {}
    }
}

/// Where a step leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    State(usize),
    /// The end of one round of the `foreach` whose loop state this is:
    /// back to the loop state, for the next member.
    NextRound(usize),
    End,
}

/// Who a step talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    /// A role that is not a family, by role number.
    Role(usize),
    /// The member of this round of a `foreach` over the family (by role
    /// number): `Worker[i]`.
    Member(usize),
    /// Every member of the family, in index order: `Worker[*]`, a choice
    /// told to the whole family.
    All(usize),
}

/// Who a subtree talks to, for the peers a dropped state abandons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Role(usize),
    /// Members of the family, by role number.
    Family(usize),
}

impl Peer {
    fn who(self) -> Who {
        match self {
            Peer::Role(r) => Who::Role(r),
            Peer::Member(f) | Peer::All(f) => Who::Family(f),
        }
    }
}

/// The `foreach` a state belongs to: its loop state, or a state of its
/// round. Such a state holds the index of the member whose round it is.
#[derive(Clone)]
struct Round {
    /// The family, by role number.
    family: usize,
    /// The index name the local type writes the member with (`i` in
    /// `Worker[i]`).
    index: String,
    /// The loop state.
    head: usize,
    /// Who the continuation after the last round talks to, and the loops
    /// it may go back to.
    after: BTreeSet<Who>,
    after_loops: BTreeSet<usize>,
    /// Whether this role's round talks to the round's member at all (a
    /// bystander's round may only talk to other roles).
    talks: bool,
}

/// The members of a family a dropped state abandons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// Every member: what follows talks to the family.
    All,
    /// The members from this state's `k` on: the round's member still
    /// expects a step of this round (or, at the loop state, its round is
    /// still to come), and so do the later members.
    FromHere,
    /// The members after this round's: this round has nothing more for
    /// its member, but the later rounds talk to theirs.
    FromNext,
}

/// A state of one role: what it does, and who it may still talk to.
struct StateDef {
    kind: Kind,
    /// The local type from this state on, for documentation.
    desc: String,
    /// Who this state's subtree talks to.
    peers: BTreeSet<Who>,
    /// The loops (by scope number) this subtree may go back to.
    loops: BTreeSet<usize>,
    /// The `foreach` this state belongs to, if any.
    round: Option<Round>,
}

/// What a state's fields are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The core (and the sizes, for a role that is not a family member).
    Plain,
    /// A `foreach` loop state: also the index of the next member.
    Loop,
    /// A state of a round: also the index of the round's member.
    Round,
}

enum Kind {
    /// `labelled`: the receiver branches on this message, so its label is
    /// sent first (the local type's one-label `select` before the send).
    Send {
        to: Peer,
        label: String,
        payload: Option<String>,
        labelled: bool,
        next: Target,
    },
    Recv {
        from: Peer,
        label: String,
        payload: Option<String>,
        next: Target,
    },
    /// One arm per label; each tells every role of its chain of selects.
    Select {
        arms: Vec<(String, Vec<Peer>, Target)>,
    },
    /// One arm per label; an arm that goes on by receiving the message of
    /// its label (a branch on the message received) carries its payload,
    /// `Some(payload)`, and the target after the receive.
    Branch {
        from: Peer,
        arms: Vec<(String, Option<Option<String>>, Target)>,
    },
    /// The loop state of a `foreach` over `family` (a role number): the
    /// round of each member in turn from `body`, then `after`.
    Foreach {
        family: usize,
        body: Target,
        after: Target,
    },
}

/// The code of one role.
struct RoleGen<'g, 'i> {
    g: &'g Gen<'i>,
    me: usize,
    /// Whether the states hold the family sizes: the role is not a member
    /// and its local type goes over a family.
    sized: bool,
    states: Vec<Option<StateDef>>,
    /// Who each loop body talks to, by scope number.
    scopes: Vec<BTreeSet<Who>>,
    /// The enclosing loops each loop body may go back to, by scope number.
    scope_loops: Vec<BTreeSet<usize>>,
    /// The `foreach` whose round is being built.
    round: Option<Round>,
    start: Target,
}

/// What building a subtree tells its parent.
struct Built {
    target: Target,
    peers: BTreeSet<Who>,
    loops: BTreeSet<usize>,
}

/// Whether `l` goes over a family: a `foreach` or a choice told to a whole
/// family.
fn over_family(l: &LocalType) -> bool {
    match l {
        LocalType::Foreach { .. } => true,
        LocalType::Select { to, branches } => {
            to.ends_with("[*]") || branches.iter().any(|(_, b)| over_family(b))
        }
        LocalType::Branch { branches, .. } => branches.iter().any(|(_, b)| over_family(b)),
        LocalType::Send { then, .. } | LocalType::Recv { then, .. } => over_family(then),
        LocalType::Rec { body, .. } => over_family(body),
        _ => false,
    }
}

impl<'g, 'i> RoleGen<'g, 'i> {
    fn new(g: &'g Gen<'i>, me: usize) -> syn::Result<Self> {
        let local = &g.locals[me];
        if g.family_of[me].is_some() && over_family(local) {
            return Err(syn::Error::new(
                g.span(),
                format!(
                    "protocol! cannot type the members of the family `{}`: their local type `{local}` goes over a family itself",
                    g.roles[me]
                ),
            ));
        }
        let mut r = RoleGen {
            g,
            me,
            sized: g.family_of[me].is_none() && over_family(local),
            states: Vec::new(),
            scopes: Vec::new(),
            scope_loops: Vec::new(),
            round: None,
            start: Target::End,
        };
        let built = r.build(local, &mut Vec::new(), None)?;
        r.start = built.target;
        Ok(r)
    }

    fn internal(&self, what: String) -> syn::Error {
        syn::Error::new(self.g.span(), format!("internal: {what}"))
    }

    fn role_index(&self, name: &str) -> syn::Result<usize> {
        self.g.roles.iter().position(|r| r == name).ok_or_else(|| {
            self.internal(format!(
                "role `{name}` of a local type is not a protocol role"
            ))
        })
    }

    /// The peer a local type names: a role, this round's member
    /// (`Worker[i]`) or a whole family (`Worker[*]`).
    fn peer(&self, name: &str) -> syn::Result<Peer> {
        if let Some(family) = name.strip_suffix("[*]") {
            let f = self.role_index(family)?;
            if self.g.family_of[f].is_some() {
                return Ok(Peer::All(f));
            }
        } else if let Some((family, rest)) = name.split_once('[')
            && let Some(index) = rest.strip_suffix(']')
        {
            let f = self.role_index(family)?;
            if let Some(round) = &self.round
                && round.family == f
                && round.index == index
            {
                return Ok(Peer::Member(f));
            }
            return Err(self.internal(format!(
                "the member `{name}` is used outside the `foreach` over its family"
            )));
        } else {
            let r = self.role_index(name)?;
            if self.g.family_of[r].is_none() {
                return Ok(Peer::Role(r));
            }
        }
        Err(self.internal(format!("`{name}` is not a peer a step can name")))
    }

    /// The peer of a message or a branch: one role or one member.
    fn one_peer(&self, name: &str) -> syn::Result<Peer> {
        match self.peer(name)? {
            Peer::All(_) => Err(self.internal(format!(
                "a message or a branch with every member of `{name}` at once"
            ))),
            p => Ok(p),
        }
    }

    fn alloc(&mut self) -> usize {
        self.states.push(None);
        self.states.len() - 1
    }

    /// Builds the states of `l`. `env` maps each enclosing loop to its
    /// head state and scope; `reserved` is the number the head of a loop
    /// body must take, since `continue` inside it already points there.
    fn build(
        &mut self,
        l: &LocalType,
        env: &mut Vec<(String, usize, usize)>,
        reserved: Option<usize>,
    ) -> syn::Result<Built> {
        let unguarded = || self.internal("a loop of the local type repeats without a step".into());
        match l {
            LocalType::End => {
                if reserved.is_some() {
                    return Err(unguarded());
                }
                // The end of a round is the next member's round (what
                // follows the last round is added to the round's states
                // once it is built). The peers of a round's state are
                // those of the rest of its round: the later rounds are the
                // loop state's (`Round::talks`).
                if let Some(round) = &self.round {
                    return Ok(Built {
                        target: Target::NextRound(round.head),
                        peers: BTreeSet::new(),
                        loops: BTreeSet::new(),
                    });
                }
                Ok(Built {
                    target: Target::End,
                    peers: BTreeSet::new(),
                    loops: BTreeSet::new(),
                })
            }
            LocalType::Continue { name } => {
                if reserved.is_some() {
                    return Err(unguarded());
                }
                if self.round.is_some() {
                    return Err(self.internal(format!("`continue {name}` inside a `foreach`")));
                }
                let (_, head, scope) = env
                    .iter()
                    .rev()
                    .find(|(n, _, _)| n == name)
                    .cloned()
                    .ok_or_else(|| self.internal(format!("`continue {name}` outside its loop")))?;
                Ok(Built {
                    target: Target::State(head),
                    peers: BTreeSet::new(),
                    loops: BTreeSet::from([scope]),
                })
            }
            LocalType::Rec { name, body } => {
                if self.round.is_some() {
                    return Err(self.internal(format!("`rec {name}` inside a `foreach`")));
                }
                let head = match reserved {
                    Some(id) => id,
                    None => self.alloc(),
                };
                let scope = self.scopes.len();
                self.scopes.push(BTreeSet::new());
                self.scope_loops.push(BTreeSet::new());
                env.push((name.clone(), head, scope));
                let mut built = self.build(body, env, Some(head))?;
                env.pop();
                built.loops.remove(&scope);
                self.scopes[scope] = built.peers.clone();
                self.scope_loops[scope] = built.loops.clone();
                Ok(built)
            }
            LocalType::Foreach {
                family,
                index,
                body,
                then,
            } => {
                if self.round.is_some() {
                    return Err(
                        self.internal(format!("`foreach {family}[{index}]` inside a `foreach`"))
                    );
                }
                // A round this role takes no part in: nothing to do.
                if **body == LocalType::End {
                    return self.build(then, env, reserved);
                }
                let f = self.role_index(family)?;
                if self.g.family_of[f].is_none() {
                    return Err(self.internal(format!("`foreach` over `{family}`, not a family")));
                }
                // The loop state is a step: every member's round holds at
                // least one, and a family has at least one member.
                let id = reserved.unwrap_or_else(|| self.alloc());
                self.round = Some(Round {
                    family: f,
                    index: index.clone(),
                    head: id,
                    after: BTreeSet::new(),
                    after_loops: BTreeSet::new(),
                    talks: false,
                });
                let first = self.states.len();
                let inner = self.build(body, env, None);
                self.round = None;
                let inner = inner?;
                let last = self.states.len();
                let after = self.build(then, env, None)?;
                // The round's states learn what follows the last round
                // now that it is built.
                let round = Round {
                    family: f,
                    index: index.clone(),
                    head: id,
                    after: after.peers.clone(),
                    after_loops: after.loops.clone(),
                    talks: inner.peers.contains(&Who::Family(f)),
                };
                for def in self.states[first..last].iter_mut().flatten() {
                    def.round = Some(round.clone());
                }
                // The family is a peer of the loop only if the rounds talk
                // to their members.
                let mut peers = after.peers;
                peers.extend(inner.peers);
                let mut loops = after.loops;
                loops.extend(inner.loops);
                let kind = Kind::Foreach {
                    family: f,
                    body: inner.target,
                    after: after.target,
                };
                Ok(self.define(id, kind, l, peers, loops, Some(round)))
            }
            LocalType::Send {
                to,
                label,
                payload,
                then,
            }
            | LocalType::Recv {
                from: to,
                label,
                payload,
                then,
            } => {
                let id = reserved.unwrap_or_else(|| self.alloc());
                let peer = self.one_peer(to)?;
                let next = self.build(then, env, None)?;
                let kind = if matches!(l, LocalType::Send { .. }) {
                    Kind::Send {
                        to: peer,
                        label: label.clone(),
                        payload: payload.clone(),
                        labelled: false,
                        next: next.target,
                    }
                } else {
                    Kind::Recv {
                        from: peer,
                        label: label.clone(),
                        payload: payload.clone(),
                        next: next.target,
                    }
                };
                let mut peers = next.peers;
                peers.insert(peer.who());
                let round = self.round.clone();
                Ok(self.define(id, kind, l, peers, next.loops, round))
            }
            // The label of a message its receiver branches on, then the
            // message: one send.
            LocalType::Select { to, branches }
                if let [
                    (
                        l1,
                        LocalType::Send {
                            to: to2,
                            label,
                            payload,
                            then,
                        },
                    ),
                ] = branches.as_slice()
                    && to2 == to
                    && l1 == label =>
            {
                let id = reserved.unwrap_or_else(|| self.alloc());
                let peer = self.one_peer(to)?;
                let next = self.build(then, env, None)?;
                let kind = Kind::Send {
                    to: peer,
                    label: label.clone(),
                    payload: payload.clone(),
                    labelled: true,
                    next: next.target,
                };
                let mut peers = next.peers;
                peers.insert(peer.who());
                let round = self.round.clone();
                Ok(self.define(id, kind, l, peers, next.loops, round))
            }
            LocalType::Select { to, branches } => {
                let id = reserved.unwrap_or_else(|| self.alloc());
                let mut peers = BTreeSet::new();
                let mut loops = BTreeSet::new();
                let mut arms = Vec::new();
                for (label, body) in branches {
                    let mut told = vec![self.peer(to)?];
                    let mut rest = body;
                    // A chooser that tells several roles selects the same
                    // label once per role: one method does them all.
                    while let LocalType::Select { to, branches } = rest
                        && let [(l2, body2)] = branches.as_slice()
                        && l2 == label
                    {
                        told.push(self.peer(to)?);
                        rest = body2;
                    }
                    let next = self.build(rest, env, None)?;
                    peers.extend(told.iter().map(|p| p.who()));
                    peers.extend(next.peers);
                    loops.extend(next.loops);
                    arms.push((label.clone(), told, next.target));
                }
                let round = self.round.clone();
                Ok(self.define(id, Kind::Select { arms }, l, peers, loops, round))
            }
            LocalType::Branch { from, branches } => {
                let id = reserved.unwrap_or_else(|| self.alloc());
                let peer = self.one_peer(from)?;
                let mut peers = BTreeSet::from([peer.who()]);
                let mut loops = BTreeSet::new();
                let mut arms = Vec::new();
                for (label, body) in branches {
                    // A branch on the message received: the arm receives it.
                    let (message, body) = match body {
                        LocalType::Recv {
                            from: f,
                            label: m,
                            payload,
                            then,
                        } if f == from && m == label => (Some(payload.clone()), &**then),
                        _ => (None, body),
                    };
                    let next = self.build(body, env, None)?;
                    peers.extend(next.peers);
                    loops.extend(next.loops);
                    arms.push((label.clone(), message, next.target));
                }
                let round = self.round.clone();
                Ok(self.define(
                    id,
                    Kind::Branch { from: peer, arms },
                    l,
                    peers,
                    loops,
                    round,
                ))
            }
            // `LocalType` is non-exhaustive; every current form is above.
            _ => Err(syn::Error::new(
                self.g.span(),
                format!("protocol! does not support the local type `{l}` yet"),
            )),
        }
    }

    fn define(
        &mut self,
        id: usize,
        kind: Kind,
        l: &LocalType,
        peers: BTreeSet<Who>,
        loops: BTreeSet<usize>,
        round: Option<Round>,
    ) -> Built {
        self.states[id] = Some(StateDef {
            kind,
            desc: abbreviate(l.to_string()),
            peers: peers.clone(),
            loops: loops.clone(),
            round,
        });
        Built {
            target: Target::State(id),
            peers,
            loops,
        }
    }

    /// `peers` with those of every loop in `loops`, directly or through
    /// the loops those loops go back to.
    fn closure(&self, peers: &BTreeSet<Who>, loops: &BTreeSet<usize>) -> BTreeSet<Who> {
        let mut all = peers.clone();
        let mut seen = BTreeSet::new();
        let mut todo: Vec<usize> = loops.iter().copied().collect();
        while let Some(s) = todo.pop() {
            if seen.insert(s) {
                all.extend(self.scopes[s].iter().copied());
                todo.extend(self.scope_loops[s].iter().copied());
            }
        }
        all
    }

    /// The peers that still expect something at state `def`: those of its
    /// subtree and of every loop it may go back to. Roles are listed;
    /// families come with which of their members are pending: all of
    /// them, or, in a `foreach` after which nothing talks to the family,
    /// those whose rounds still talk to them (from this round's member on,
    /// or from the next one when this round has nothing more for its
    /// member; none when the rounds never talk to their members).
    fn pending(&self, def: &StateDef) -> (Vec<usize>, Vec<(usize, Pending)>) {
        let mut roles = Vec::new();
        let mut families = Vec::new();
        let mut peers = def.peers.clone();
        let mut loops = def.loops.clone();
        if let Some(round) = &def.round {
            peers.extend(round.after.iter().copied());
            loops.extend(round.after_loops.iter().copied());
        }
        let own = def.round.as_ref().map(|round| round.family);
        let all = self.closure(&peers, &loops);
        for &who in &all {
            match who {
                Who::Role(r) if r == self.me => {}
                Who::Role(r) => roles.push(r),
                Who::Family(f) if Some(f) == own => {}
                Who::Family(f) => families.push((f, Pending::All)),
            }
        }
        if let Some(round) = &def.round {
            let f = round.family;
            let later = self
                .closure(&round.after, &round.after_loops)
                .contains(&Who::Family(f));
            // At the loop state, `def.peers` holds the family exactly when
            // the rounds talk to their members; at a round's state, when
            // the rest of the round still talks to its member.
            let pending = if later {
                Some(Pending::All)
            } else if def.peers.contains(&Who::Family(f)) {
                Some(Pending::FromHere)
            } else if round.talks {
                Some(Pending::FromNext)
            } else {
                None
            };
            families.extend(pending.map(|p| (f, p)));
        }
        (roles, families)
    }

    fn shape(&self, n: usize) -> Shape {
        match &self.states[n] {
            Some(StateDef {
                kind: Kind::Foreach { .. },
                ..
            }) => Shape::Loop,
            Some(StateDef { round: Some(_), .. }) => Shape::Round,
            _ => Shape::Plain,
        }
    }

    fn target_ty(&self, t: Target) -> TokenStream {
        match t {
            Target::State(n) | Target::NextRound(n) => {
                let name = format_ident!("State{}", n);
                quote!(#name<'a, H>)
            }
            Target::End => quote!(End<'a, H>),
        }
    }

    /// The value of state `t`, from the core, the sizes and the member
    /// index of the state it is reached from.
    fn construct(
        &self,
        t: Target,
        core: TokenStream,
        sizes: &TokenStream,
        k: &TokenStream,
    ) -> TokenStream {
        let sized = if self.sized {
            quote!(sizes: #sizes,)
        } else {
            TokenStream::new()
        };
        match t {
            Target::State(n) => {
                let name = format_ident!("State{}", n);
                match self.shape(n) {
                    Shape::Plain => quote!(#name { core: #core, #sized }),
                    Shape::Loop => quote!(#name { core: #core, #sized k: 0 }),
                    Shape::Round => quote!(#name { core: #core, #sized k: #k }),
                }
            }
            Target::NextRound(n) => {
                let name = format_ident!("State{}", n);
                quote!(#name { core: #core, #sized k: #k + 1 })
            }
            Target::End => quote!(End { core: #core }),
        }
    }

    /// Moves the core on to `t`.
    fn goto(&self, t: Target) -> TokenStream {
        self.construct(
            t,
            quote!(self.core.take()),
            &quote!(self.sizes),
            &quote!(self.k),
        )
    }

    fn role(&self, i: usize) -> TokenStream {
        let v = &self.g.variants[i];
        quote!(super::Role::#v)
    }

    /// The role value of a peer that is one role or this round's member.
    fn peer_role(&self, p: Peer) -> TokenStream {
        match p {
            Peer::Role(r) => self.role(r),
            Peer::Member(f) | Peer::All(f) => {
                let v = &self.g.variants[f];
                quote!(super::Role::#v(self.k))
            }
        }
    }

    /// A peer as documentation names it.
    fn peer_doc(&self, p: Peer, def: &StateDef) -> String {
        match p {
            Peer::Role(r) => format!("`{}`", self.g.roles[r]),
            Peer::Member(f) => {
                let index = def.round.as_ref().map_or("i", |r| r.index.as_str());
                format!("`{}[{index}]`, the member of this round", self.g.roles[f])
            }
            Peer::All(f) => format!("every member of `{}` in index order", self.g.roles[f]),
        }
    }

    /// A peer's name in method names: the role's or the family's.
    fn peer_snake(&self, p: Peer) -> String {
        match p {
            Peer::Role(r) | Peer::Member(r) | Peer::All(r) => snake(&self.g.roles[r]),
        }
    }

    /// The expression of a family's size, from a state's sizes.
    fn size_of(&self, f: usize) -> syn::Result<TokenStream> {
        let number = self.g.family_of[f]
            .ok_or_else(|| self.internal(format!("`{}` is not a family", self.g.roles[f])))?;
        Ok(quote!(self.sizes.counts[#number]))
    }
    fn payload_ty(&self, label: &str, payload: &Option<String>) -> syn::Result<TokenStream> {
        match payload {
            Some(ty) => {
                let parsed: Type = syn::parse_str(ty).map_err(|_| {
                    syn::Error::new(
                        self.g.span(),
                        format!("payload type `{ty}` of `{label}` is not a Rust type"),
                    )
                })?;
                Ok(quote!(#parsed))
            }
            None => {
                let unit = ident(label, "message label", self.g.span())?;
                Ok(quote!(super::unit::#unit))
            }
        }
    }

    fn module(&self) -> syn::Result<TokenStream> {
        let t = &self.g.input.support;
        let name = &self.g.roles[self.me];
        let module = &self.g.modules[self.me];
        let bound = quote! {
            H: #t::ChoreoHandler<Role = super::Role, Endpoint = #t::RumpsteakEndpoint<super::Role>>
        };
        let local = self.g.locals[self.me].to_string();
        let member = self.g.family_of[self.me].is_some();
        let module_doc = if member {
            format!(
                "A member of the family `{name}`, `{name}[i]` for any `i` of a run, whose local type is `{local}`."
            )
        } else {
            format!("The role `{name}`, whose local type is `{local}`.")
        };
        let mut items = Vec::new();
        for (n, def) in self.states.iter().enumerate() {
            let Some(def) = def else {
                return Err(self.internal(format!("state {n} of role `{name}` was never built")));
            };
            items.push(self.state(n, def, &bound)?);
        }
        let start_ty = self.target_ty(self.start);
        let start_value = self.construct(self.start, quote!(core), &quote!(sizes), &quote!(0));
        let v = &self.g.variants[self.me];
        let with_families = !self.g.families.is_empty();
        let start = if member {
            let start_doc = format!(
                "Starts the member `member` of the family `{name}` with `handler` on \
                 `endpoint`, which must be that member's endpoint with a session \
                 registered for each peer. Fails with `ChoreographyError::WrongRole`, \
                 having done nothing, on another role's endpoint."
            );
            let member_doc = format!(
                "One member of the family `{name}` in a run: its index, checked \
                 against the family's size once, by `Member::new`."
            );
            let new_doc = format!(
                "Member `index` of `{name}` in a run with `sizes`; \
                 `ProjectionError::NoSuchMember` if `index` is not below the \
                 family's size."
            );
            let size = &self.g.modules[self.me];
            quote! {
                #[doc = #member_doc]
                #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
                pub struct Member {
                    index: usize,
                }

                impl Member {
                    #[doc = #new_doc]
                    pub fn new(
                        sizes: super::Sizes,
                        index: usize,
                    ) -> ::core::result::Result<Member, #t::ProjectionError> {
                        if index < sizes.#size() {
                            ::core::result::Result::Ok(Member { index })
                        } else {
                            ::core::result::Result::Err(#t::ProjectionError::NoSuchMember {
                                family: ::std::string::String::from(#name),
                                index,
                                size: sizes.#size(),
                            })
                        }
                    }

                    /// The member's index, from 0.
                    pub const fn index(self) -> usize {
                        self.index
                    }

                    /// The member's role.
                    // Not `const`: a caller's role type may make members
                    // with an associated function rather than a variant.
                    pub fn role(self) -> super::Role {
                        super::Role::#v(self.index)
                    }
                }

                #[doc = #start_doc]
                pub fn start<'a, H>(
                    handler: &'a mut H,
                    endpoint: &'a mut #t::RumpsteakEndpoint<super::Role>,
                    member: Member,
                ) -> #t::Result<#start_ty>
                where
                    #bound,
                {
                    #t::register_once(&super::__REGISTER, &super::__LABELS);
                    let core = #t::Core::start(handler, endpoint, super::Role::#v(member.index))?;
                    ::core::result::Result::Ok(#start_value)
                }
            }
        } else {
            let me = self.role(self.me);
            let start_doc = format!(
                "Starts the role `{name}` with `handler` on `endpoint`, which must be \
                 `{name}`'s endpoint with a session registered for each peer. Fails \
                 with `ChoreographyError::WrongRole`, having done nothing, on another \
                 role's endpoint."
            );
            let (param, unused) = match (with_families, self.sized) {
                (false, _) => (TokenStream::new(), TokenStream::new()),
                (true, true) => (quote!(sizes: super::Sizes,), TokenStream::new()),
                // Every role but the members takes the sizes, whether its
                // local type goes over a family or not.
                (true, false) => (quote!(sizes: super::Sizes,), quote!(let _ = sizes;)),
            };
            let start_doc = if with_families {
                format!("{start_doc} `sizes` is the size of each family in this run.")
            } else {
                start_doc
            };
            quote! {
                #[doc = #start_doc]
                pub fn start<'a, H>(
                    handler: &'a mut H,
                    endpoint: &'a mut #t::RumpsteakEndpoint<super::Role>,
                    #param
                ) -> #t::Result<#start_ty>
                where
                    #bound,
                {
                    #unused
                    #t::register_once(&super::__REGISTER, &super::__LABELS);
                    let core = #t::Core::start(handler, endpoint, #me)?;
                    ::core::result::Result::Ok(#start_value)
                }
            }
        };
        let end_doc = format!(
            "The end of the role `{name}`: nothing is left to do. `finish` gives \
             the endpoint back; dropping this state closes nothing."
        );
        Ok(quote! {
            #[doc = #module_doc]
            pub mod #module {
                use super::*;

                #start

                #(#items)*

                #[doc = #end_doc]
                pub struct End<'a, H> {
                    core: #t::Core<'a, super::Role, H>,
                }

                impl<'a, H> End<'a, H>
                where
                    #bound,
                {
                    /// Ends the run and gives the endpoint back.
                    pub fn finish(mut self) -> &'a mut #t::RumpsteakEndpoint<super::Role> {
                        self.core.finish()
                    }

                    /// The endpoint, to read its metadata.
                    pub fn endpoint(&self) -> &#t::RumpsteakEndpoint<super::Role> {
                        self.core.endpoint()
                    }
                }

                impl<H> ::core::fmt::Debug for End<'_, H> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(::core::concat!(#name, " at end"))
                    }
                }
            }
        })
    }

    fn state(&self, n: usize, def: &StateDef, bound: &TokenStream) -> syn::Result<TokenStream> {
        let t = &self.g.input.support;
        let role_name = &self.g.roles[self.me];
        let state = format_ident!("State{}", n);
        let pending_name = format_ident!("PENDING_{}", n);
        let (pending, families) = self.pending(def);
        let pending_roles = pending.iter().map(|&i| self.role(i));
        let desc = &def.desc;
        let doc = format!("`{role_name}` at `{desc}`.");
        let debug = format!("{role_name} at `{desc}`");
        let (methods, extra) = self.methods(n, def)?;
        let shape = self.shape(n);
        let sizes_field = if self.sized {
            quote!(sizes: super::Sizes,)
        } else {
            TokenStream::new()
        };
        let (k_field, k_doc) = match shape {
            Shape::Plain => (TokenStream::new(), ""),
            Shape::Loop => (
                quote! {
                    /// The next member whose round is to come.
                    k: usize,
                },
                "\n\nThe state counts the members whose rounds are done: \
                 `next_member` starts the next member's round, and the state \
                 after the `foreach` is reached only after the last member's \
                 round.",
            ),
            Shape::Round => (
                quote! {
                    /// The member of this round.
                    k: usize,
                },
                "\n\nThe state is in the round of one member, `member()`.",
            ),
        };
        let doc = format!("{doc}{k_doc}");
        // The members still pending: all of them, or those from this
        // round's on.
        let drop_body = if families.is_empty() {
            quote!(self.core.abandon(#pending_name);)
        } else {
            let mut extend = Vec::new();
            for &(f, from) in &families {
                let v = &self.g.variants[f];
                let number = self.g.family_of[f].ok_or_else(|| {
                    self.internal(format!("`{}` is not a family", self.g.roles[f]))
                })?;
                let from = match from {
                    Pending::All => quote!(0),
                    Pending::FromHere => quote!(k),
                    Pending::FromNext => quote!(k + 1),
                };
                extend.push(quote! {
                    out.extend((#from..sizes.counts[#number]).map(|k| super::Role::#v(k)));
                });
            }
            let k = if shape == Shape::Plain {
                quote!(0usize)
            } else {
                quote!(self.k)
            };
            quote! {
                let (k, sizes) = (#k, self.sizes);
                self.core.abandon_with(move || {
                    let mut out = #pending_name.to_vec();
                    #(#extend)*
                    let _ = k;
                    out
                });
            }
        };
        let debug_body = if shape == Shape::Plain {
            quote!(f.write_str(#debug))
        } else {
            quote!(::core::write!(f, "{} (member {})", #debug, self.k))
        };
        let member_fn = if shape == Shape::Round {
            quote! {
                /// The index of the member whose round this is.
                pub fn member(&self) -> usize {
                    self.k
                }
            }
        } else {
            TokenStream::new()
        };
        Ok(quote! {
            const #pending_name: &[super::Role] = &[#(#pending_roles),*];

            #[doc = #doc]
            ///
            /// Dropping this state before the end abandons the protocol: the
            /// channels to the peers that still expect something are closed.
            #[must_use = "a state dropped before the end abandons the protocol"]
            pub struct #state<'a, H> {
                core: #t::Core<'a, super::Role, H>,
                #sizes_field
                #k_field
            }

            impl<'a, H> #state<'a, H>
            where
                #bound,
            {
                #methods

                #member_fn

                /// The endpoint, to read its metadata between steps.
                pub fn endpoint(&self) -> &#t::RumpsteakEndpoint<super::Role> {
                    self.core.endpoint()
                }
            }

            impl<H> ::core::ops::Drop for #state<'_, H> {
                fn drop(&mut self) {
                    #drop_body
                }
            }

            impl<H> ::core::fmt::Debug for #state<'_, H> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    #debug_body
                }
            }

            #extra
        })
    }

    /// The methods of state `n`, and any item they need (a branch enum).
    fn methods(&self, n: usize, def: &StateDef) -> syn::Result<(TokenStream, TokenStream)> {
        let t = &self.g.input.support;
        let span = self.g.span();
        match &def.kind {
            Kind::Send {
                to,
                label,
                payload,
                labelled,
                next,
            } => {
                let peer = self.peer_doc(*to, def);
                let method = ident(&format!("send_to_{}", self.peer_snake(*to)), "method", span)?;
                let role = self.peer_role(*to);
                let next_ty = self.target_ty(*next);
                let goto = self.goto(*next);
                let ty = self.payload_ty(label, payload)?;
                let shown = show(label, payload);
                let (tag, tag_doc) = self.tag(*to, label, *labelled, def);
                Ok(match payload {
                    Some(_) => {
                        let doc = format!("Sends `{shown}` to {peer}.{tag_doc}");
                        (
                            quote! {
                                #[doc = #doc]
                                pub async fn #method(mut self, msg: &#ty) -> #t::Result<#next_ty> {
                                    #tag
                                    self.core.send(#role, msg).await?;
                                    ::core::result::Result::Ok(#goto)
                                }
                            },
                            TokenStream::new(),
                        )
                    }
                    None => {
                        let doc = format!(
                            "Sends `{shown}`, which carries no payload, to {peer}.{tag_doc}"
                        );
                        (
                            quote! {
                                #[doc = #doc]
                                pub async fn #method(mut self) -> #t::Result<#next_ty> {
                                    #tag
                                    self.core.send(#role, &#ty).await?;
                                    ::core::result::Result::Ok(#goto)
                                }
                            },
                            TokenStream::new(),
                        )
                    }
                })
            }
            Kind::Recv {
                from,
                label,
                payload,
                next,
            } => {
                let peer = self.peer_doc(*from, def);
                let name = self.peer_snake(*from);
                let method = ident(&format!("recv_from_{name}"), "method", span)?;
                let timed = ident(&format!("recv_from_{name}_timeout"), "method", span)?;
                let role = self.peer_role(*from);
                let next_ty = self.target_ty(*next);
                let goto = self.goto(*next);
                let ty = self.payload_ty(label, payload)?;
                let shown = show(label, payload);
                let (out_ty, convert) = match payload {
                    Some(_) => (quote!(#ty), quote!(msg)),
                    None => (quote!(()), quote!({ let _: #ty = msg; })),
                };
                let doc = format!("Receives `{shown}` from {peer}.");
                let timed_doc = format!(
                    "Receives `{shown}` from {peer}, giving the state back unchanged if \
                     nothing arrives within `dur` (nothing is lost: a message that \
                     arrives later is there for the next attempt)."
                );
                Ok((
                    quote! {
                        #[doc = #doc]
                        pub async fn #method(mut self) -> #t::Result<(#out_ty, #next_ty)> {
                            let msg: #ty = self.core.recv(#role).await?;
                            ::core::result::Result::Ok((#convert, #goto))
                        }

                        #[doc = #timed_doc]
                        pub async fn #timed(
                            mut self,
                            dur: ::core::time::Duration,
                        ) -> ::core::result::Result<(#out_ty, #next_ty), #t::Deadline<Self>> {
                            match self.core.recv_within::<#ty>(#role, dur).await {
                                ::core::option::Option::Some(::core::result::Result::Ok(msg)) => {
                                    ::core::result::Result::Ok((#convert, #goto))
                                }
                                ::core::option::Option::Some(::core::result::Result::Err(e)) => {
                                    ::core::result::Result::Err(#t::Deadline::Failed(e))
                                }
                                ::core::option::Option::None => ::core::result::Result::Err(
                                    #t::Deadline::Elapsed { state: self, after: dur },
                                ),
                            }
                        }
                    },
                    TokenStream::new(),
                ))
            }
            Kind::Select { arms } => {
                let mut methods = Vec::new();
                let mut seen: HashMap<String, &str> = HashMap::new();
                for (label, told, next) in arms {
                    let name = format!("choose_{}", snake(label));
                    if let Some(other) = seen.insert(name.clone(), label) {
                        return Err(syn::Error::new(
                            span,
                            format!(
                                "labels `{other}` and `{label}` would both be generated as method `{name}`: rename one"
                            ),
                        ));
                    }
                    let method = ident(&name, "method", span)?;
                    let mut tell = Vec::new();
                    for &p in told {
                        tell.push(match p {
                            Peer::All(f) => {
                                let v = &self.g.variants[f];
                                let size = self.size_of(f)?;
                                quote! {
                                    for k in 0..#size {
                                        self.core.choose(super::Role::#v(k), #t::Label(#label)).await?;
                                    }
                                }
                            }
                            p => {
                                let role = self.peer_role(p);
                                quote!(self.core.choose(#role, #t::Label(#label)).await?;)
                            }
                        });
                    }
                    let names: Vec<String> = told.iter().map(|&p| self.peer_doc(p, def)).collect();
                    let next_ty = self.target_ty(*next);
                    let goto = self.goto(*next);
                    let doc = format!("Chooses `{label}`, telling {}.", names.join(", then "));
                    methods.push(quote! {
                        #[doc = #doc]
                        pub async fn #method(mut self) -> #t::Result<#next_ty> {
                            #(#tell)*
                            ::core::result::Result::Ok(#goto)
                        }
                    });
                }
                Ok((quote!(#(#methods)*), TokenStream::new()))
            }
            Kind::Branch { from, arms } => self.branch(n, def, *from, arms),
            Kind::Foreach {
                family,
                body,
                after,
            } => self.foreach(n, def, *family, *body, *after),
        }
    }

    /// The label first, for a message its receiver branches on.
    fn tag(&self, to: Peer, label: &str, labelled: bool, def: &StateDef) -> (TokenStream, String) {
        let t = &self.g.input.support;
        if !labelled {
            return (TokenStream::new(), String::new());
        }
        let role = self.peer_role(to);
        (
            quote! { self.core.choose(#role, #t::Label(#label)).await?; },
            format!(
                " {} branches on the message it receives here, so its label `{label}` goes first.",
                self.peer_doc(to, def)
            ),
        )
    }

    /// The methods of a state where `from` chooses, and its branch enum.
    fn branch(
        &self,
        n: usize,
        def: &StateDef,
        from: Peer,
        arms: &[(String, Option<Option<String>>, Target)],
    ) -> syn::Result<(TokenStream, TokenStream)> {
        let t = &self.g.input.support;
        let span = self.g.span();
        let peer = self.peer_doc(from, def);
        let role = self.peer_role(from);
        let enum_name = format_ident!("Branch{}", n);
        let mut variants = Vec::new();
        let mut matches = Vec::new();
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (label, message, next) in arms {
            let v = camel(label);
            if let Some(other) = seen.insert(v.clone(), label) {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "labels `{other}` and `{label}` would both be generated as variant `{v}`: rename one"
                    ),
                ));
            }
            let v = ident(&v, "branch label", span)?;
            let next_ty = self.target_ty(*next);
            let goto = self.goto(*next);
            match message {
                None => {
                    let doc = format!("{peer} chose `{label}`.");
                    variants.push(quote!(#[doc = #doc] #v(#next_ty)));
                    matches.push(quote!(
                        #label => ::core::result::Result::Ok(#enum_name::#v(#goto))
                    ));
                }
                // A branch on the message received: the message is
                // received with its label.
                Some(payload) => {
                    let ty = self.payload_ty(label, payload)?;
                    let shown = show(label, payload);
                    match payload {
                        Some(_) => {
                            let doc = format!(
                                "{peer} sent `{shown}`: the message, and the state after it."
                            );
                            variants.push(quote!(#[doc = #doc] #v(#ty, #next_ty)));
                            matches.push(quote!(#label => {
                                match self.core.recv::<#ty>(#role).await {
                                    ::core::result::Result::Ok(msg) => {
                                        ::core::result::Result::Ok(#enum_name::#v(msg, #goto))
                                    }
                                    ::core::result::Result::Err(e) => ::core::result::Result::Err(e),
                                }
                            }));
                        }
                        None => {
                            let doc = format!(
                                "{peer} sent `{shown}`, which carries no payload: the state after it."
                            );
                            variants.push(quote!(#[doc = #doc] #v(#next_ty)));
                            matches.push(quote!(#label => {
                                match self.core.recv::<#ty>(#role).await {
                                    ::core::result::Result::Ok(_) => {
                                        ::core::result::Result::Ok(#enum_name::#v(#goto))
                                    }
                                    ::core::result::Result::Err(e) => ::core::result::Result::Err(e),
                                }
                            }));
                        }
                    }
                }
            }
        }
        let labels = arms.iter().map(|(l, ..)| l);
        let enum_doc = format!(
            "What {peer} chose at `State{n}`: one variant per label, each with the state that follows."
        );
        let doc = format!(
            "Waits for the choice of {peer}. A label outside the protocol's is a \
             `ChoreographyError::UnexpectedLabel` (and abandons the protocol)."
        );
        let timed_doc = format!(
            "Waits for the choice of {peer}, giving the state back unchanged if \
             nothing arrives within `dur`."
        );
        let expected = format_ident!("EXPECTED_{}", n);
        let resolve = quote! {
            match label.as_str() {
                #(#matches,)*
                _ => ::core::result::Result::Err(self.core.unexpected(&#role, label, &#expected)),
            }
        };
        let count = arms.len();
        Ok((
            quote! {
                #[doc = #doc]
                pub async fn branch(mut self) -> #t::Result<#enum_name<'a, H>> {
                    let label = self.core.offer(#role).await?;
                    #resolve
                }

                #[doc = #timed_doc]
                pub async fn branch_timeout(
                    mut self,
                    dur: ::core::time::Duration,
                ) -> ::core::result::Result<#enum_name<'a, H>, #t::Deadline<Self>> {
                    match self.core.offer_within(#role, dur).await {
                        ::core::option::Option::Some(::core::result::Result::Ok(label)) => {
                            let r: #t::Result<#enum_name<'a, H>> = #resolve;
                            r.map_err(#t::Deadline::Failed)
                        }
                        ::core::option::Option::Some(::core::result::Result::Err(e)) => {
                            ::core::result::Result::Err(#t::Deadline::Failed(e))
                        }
                        ::core::option::Option::None => ::core::result::Result::Err(
                            #t::Deadline::Elapsed { state: self, after: dur },
                        ),
                    }
                }
            },
            quote! {
                #[doc = #enum_doc]
                #[must_use = "a branch dropped without being matched abandons the protocol"]
                pub enum #enum_name<'a, H> {
                    #(#variants,)*
                }

                impl<H> ::core::fmt::Debug for #enum_name<'_, H> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(::core::stringify!(#enum_name))
                    }
                }

                const #expected: [#t::Label; #count] = [#(#t::Label(#labels)),*];
            },
        ))
    }

    /// The methods of the loop state of a `foreach` over `family`, and its
    /// enum: the next member's round, or what follows the last. A round
    /// of one message also gets a method that runs every remaining round.
    fn foreach(
        &self,
        n: usize,
        def: &StateDef,
        family: usize,
        body: Target,
        after: Target,
    ) -> syn::Result<(TokenStream, TokenStream)> {
        let t = &self.g.input.support;
        let span = self.g.span();
        let name = &self.g.roles[family];
        let v = &self.g.variants[family];
        let size = self.size_of(family)?;
        let enum_name = format_ident!("Foreach{}", n);
        let body_ty = self.target_ty(body);
        let after_ty = self.target_ty(after);
        let goto_body = self.goto(body);
        let goto_after = self.goto(after);
        let index = def.round.as_ref().map_or("i", |r| r.index.as_str());
        let next_doc = format!(
            "The round of the next member of `{name}`, in index order, or, once \
             every member's round is done, the state after the `foreach`. Each \
             call after a round moves on by one member: no member is skipped or \
             visited twice, and the state after the `foreach` is reached only \
             after the last member's round. The number of rounds is the family's \
             size, known at run time, so this is the one step whose outcome the \
             compiler cannot know: match on both variants."
        );
        let member_doc =
            format!("The round of `{name}[{index}]`: its index, and the state of its first step.");
        let done_doc = "Every member's round is done: the state after the `foreach`.";
        let enum_doc = format!(
            "What `next_member` gives at `State{n}`, the `foreach` over `{name}`: \
             the next member's round, or the state after the last."
        );
        let mut bulk = TokenStream::new();
        // A round of one message, to or from the member: every remaining
        // round in one call.
        if let Target::State(b) = body
            && let Some(StateDef { kind, .. }) = &self.states[b]
        {
            let member = |p: &Peer| *p == Peer::Member(family);
            match kind {
                Kind::Send {
                    to,
                    label,
                    payload,
                    labelled,
                    next: Target::NextRound(h),
                } if *h == n && member(to) => {
                    let method = ident(&format!("send_to_each_{}", snake(name)), "method", span)?;
                    let ty = self.payload_ty(label, payload)?;
                    let shown = show(label, payload);
                    let role = quote!(super::Role::#v(self.k));
                    let tag = if *labelled {
                        quote! { self.core.choose(#role, #t::Label(#label)).await?; }
                    } else {
                        TokenStream::new()
                    };
                    bulk = match payload {
                        // The message's type parameter is `__B`: a short
                        // name such as `B` could be the payload type's own,
                        // which the parameter would then shadow.
                        Some(_) => {
                            let doc = format!(
                                "Sends `{shown}` to every member of `{name}` whose round is \
                                 still to come, in index order, `msg(i)` to `{name}[i]`: the \
                                 remaining rounds of this `foreach` at once. `msg` may give \
                                 the message or a reference to it."
                            );
                            quote! {
                                #[doc = #doc]
                                pub async fn #method<__B>(
                                    mut self,
                                    mut msg: impl FnMut(usize) -> __B,
                                ) -> #t::Result<#after_ty>
                                where
                                    __B: ::core::borrow::Borrow<#ty>,
                                {
                                    while self.k < #size {
                                        let m = msg(self.k);
                                        #tag
                                        self.core.send(#role, ::core::borrow::Borrow::borrow(&m)).await?;
                                        self.k += 1;
                                    }
                                    ::core::result::Result::Ok(#goto_after)
                                }
                            }
                        }
                        None => {
                            let doc = format!(
                                "Sends `{shown}`, which carries no payload, to every member \
                                 of `{name}` whose round is still to come, in index order: \
                                 the remaining rounds of this `foreach` at once."
                            );
                            quote! {
                                #[doc = #doc]
                                pub async fn #method(mut self) -> #t::Result<#after_ty> {
                                    while self.k < #size {
                                        #tag
                                        self.core.send(#role, &#ty).await?;
                                        self.k += 1;
                                    }
                                    ::core::result::Result::Ok(#goto_after)
                                }
                            }
                        }
                    };
                }
                Kind::Recv {
                    from,
                    label,
                    payload,
                    next: Target::NextRound(h),
                } if *h == n && member(from) => {
                    let method = ident(&format!("recv_from_each_{}", snake(name)), "method", span)?;
                    let ty = self.payload_ty(label, payload)?;
                    let shown = show(label, payload);
                    let role = quote!(super::Role::#v(self.k));
                    bulk = match payload {
                        Some(_) => {
                            let doc = format!(
                                "Receives `{shown}` from every member of `{name}` whose round \
                                 is still to come, in index order: the remaining rounds of \
                                 this `foreach` at once. The messages are in index order."
                            );
                            quote! {
                                #[doc = #doc]
                                pub async fn #method(
                                    mut self,
                                ) -> #t::Result<(::std::vec::Vec<#ty>, #after_ty)> {
                                    let mut out = ::std::vec::Vec::with_capacity(#size - self.k);
                                    while self.k < #size {
                                        let msg: #ty = self.core.recv(#role).await?;
                                        out.push(msg);
                                        self.k += 1;
                                    }
                                    ::core::result::Result::Ok((out, #goto_after))
                                }
                            }
                        }
                        None => {
                            let doc = format!(
                                "Receives `{shown}`, which carries no payload, from every \
                                 member of `{name}` whose round is still to come, in index \
                                 order: the remaining rounds of this `foreach` at once."
                            );
                            quote! {
                                #[doc = #doc]
                                pub async fn #method(mut self) -> #t::Result<((), #after_ty)> {
                                    while self.k < #size {
                                        let _: #ty = self.core.recv(#role).await?;
                                        self.k += 1;
                                    }
                                    ::core::result::Result::Ok(((), #goto_after))
                                }
                            }
                        }
                    };
                }
                _ => {}
            }
        }
        Ok((
            quote! {
                #[doc = #next_doc]
                pub fn next_member(mut self) -> #enum_name<'a, H> {
                    if self.k < #size {
                        #enum_name::Member(self.k, #goto_body)
                    } else {
                        #enum_name::Done(#goto_after)
                    }
                }

                #bulk
            },
            quote! {
                #[doc = #enum_doc]
                #[must_use = "a round dropped without being run abandons the protocol"]
                pub enum #enum_name<'a, H> {
                    #[doc = #member_doc]
                    Member(usize, #body_ty),
                    #[doc = #done_doc]
                    Done(#after_ty),
                }

                impl<H> ::core::fmt::Debug for #enum_name<'_, H> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        match self {
                            #enum_name::Member(k, _) => ::core::write!(f, "{}::Member({})", ::core::stringify!(#enum_name), k),
                            #enum_name::Done(_) => ::core::write!(f, "{}::Done", ::core::stringify!(#enum_name)),
                        }
                    }
                }
            },
        ))
    }
}

/// The longest local type a state's documentation shows in full: each
/// state shows its whole remaining local type, which for a large protocol
/// would make the documentation grow with the square of its size.
const MAX_DESC: usize = 240;

/// `desc`, cut after [`MAX_DESC`] characters.
fn abbreviate(desc: String) -> String {
    match desc.char_indices().nth(MAX_DESC) {
        Some((cut, _)) => format!("{} ...", &desc[..cut]),
        None => desc,
    }
}

/// A message as the protocol writes it.
fn show(label: &str, payload: &Option<String>) -> String {
    match payload {
        Some(p) if p.starts_with('(') => format!("{label}{p}"),
        Some(p) => format!("{label}({p})"),
        None => label.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_text(text: &str) -> syn::Result<String> {
        let src = format!("pub mod p = {text:?};");
        let input: Input = syn::parse_str(&src)?;
        expand(&input).map(|tokens| tokens.to_string())
    }

    const SCATTER: &str = "roles C, W[n];
        rec R { choice at C {
            go: { foreach W[i] { C -> W[i]: Task(u64); } foreach W[i] { W[i] -> C: Sum(u64); } continue R; }
            stop: { foreach W[i] { C -> W[i]: Stop; } }
        } }";

    #[test]
    fn a_family_gets_sizes_members_and_loop_states() {
        let out = expand_text(SCATTER).unwrap();
        for item in [
            "pub struct Sizes",
            "pub struct Member",
            "pub fn next_member",
            "pub enum Foreach1",
            "pub async fn send_to_each_w",
            "pub async fn recv_from_each_w",
            "W (usize)",
        ] {
            assert!(out.contains(item), "no `{item}` in the expansion");
        }
        // The choice is told to every member, in a loop over the family.
        assert!(out.contains("for k in 0 .. self . sizes . counts [0usize]"));
    }

    #[test]
    fn a_family_named_as_a_method_of_sizes_is_refused() {
        let e =
            expand_text("roles C, Roles[n]; foreach Roles[i] { C -> Roles[i]: Go; }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the family `Roles` would be generated as module `roles` and as the method `Sizes::roles` that reads its size, but `Sizes::roles` is a name protocol! uses itself: rename the family"
        );
        // Not a family: the role's module is no method of `Sizes`.
        assert!(expand_text("roles C, Roles; C -> Roles: Go;").is_ok());
    }

    #[test]
    fn family_misuse_is_refused_with_the_protocol_error() {
        let e = expand_text("roles C, W[n]; C -> W[i]: Go;").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1, column 23: `W[i]` is not bound here: members of `W` are used inside `foreach W[i] { ... }`"
        );
    }
}
