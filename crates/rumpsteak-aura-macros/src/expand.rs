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
    if let Some((family, size)) = protocol.families().first() {
        return Err(syn::Error::new(
            span,
            format!(
                "protocol! does not generate typed roles for the role family `{family}[{size}]` yet: run its roles untyped, each endpoint with `Protocol::monitor_instance`"
            ),
        ));
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
        _ => {}
    }
}

/// Where a step leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    State(usize),
    End,
}

/// A state of one role: what it does, and who it may still talk to.
struct StateDef {
    kind: Kind,
    /// The local type from this state on, for documentation.
    desc: String,
    /// The roles this state's subtree talks to.
    peers: BTreeSet<usize>,
    /// The loops (by scope number) this subtree may go back to.
    loops: BTreeSet<usize>,
}

enum Kind {
    /// `labelled`: the receiver branches on this message, so its label is
    /// sent first (the local type's one-label `select` before the send).
    Send {
        to: usize,
        label: String,
        payload: Option<String>,
        labelled: bool,
        next: Target,
    },
    Recv {
        from: usize,
        label: String,
        payload: Option<String>,
        next: Target,
    },
    /// One arm per label; each tells every role of its chain of selects.
    Select {
        arms: Vec<(String, Vec<usize>, Target)>,
    },
    /// One arm per label; an arm that goes on by receiving the message of
    /// its label (a branch on the message received) carries its payload,
    /// `Some(payload)`, and the target after the receive.
    Branch {
        from: usize,
        arms: Vec<(String, Option<Option<String>>, Target)>,
    },
}

/// The code of one role.
struct RoleGen<'g, 'i> {
    g: &'g Gen<'i>,
    me: usize,
    states: Vec<Option<StateDef>>,
    /// The roles each loop body talks to, by scope number.
    scopes: Vec<BTreeSet<usize>>,
    /// The enclosing loops each loop body may go back to, by scope number.
    scope_loops: Vec<BTreeSet<usize>>,
    start: Target,
}

/// What building a subtree tells its parent.
struct Built {
    target: Target,
    peers: BTreeSet<usize>,
    loops: BTreeSet<usize>,
}

impl<'g, 'i> RoleGen<'g, 'i> {
    fn new(g: &'g Gen<'i>, me: usize) -> syn::Result<Self> {
        let mut r = RoleGen {
            g,
            me,
            states: Vec::new(),
            scopes: Vec::new(),
            scope_loops: Vec::new(),
            start: Target::End,
        };
        let local = &g.locals[me];
        let built = r.build(local, &mut Vec::new(), None)?;
        r.start = built.target;
        Ok(r)
    }

    fn role_index(&self, name: &str) -> syn::Result<usize> {
        self.g.roles.iter().position(|r| r == name).ok_or_else(|| {
            syn::Error::new(
                self.g.span(),
                format!("internal: role `{name}` of a local type is not a protocol role"),
            )
        })
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
        let unguarded = || {
            syn::Error::new(
                self.g.span(),
                "internal: a loop of the local type repeats without a step",
            )
        };
        match l {
            LocalType::End => {
                if reserved.is_some() {
                    return Err(unguarded());
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
                let (_, head, scope) = env
                    .iter()
                    .rev()
                    .find(|(n, _, _)| n == name)
                    .cloned()
                    .ok_or_else(|| {
                        syn::Error::new(
                            self.g.span(),
                            format!("internal: `continue {name}` outside its loop"),
                        )
                    })?;
                Ok(Built {
                    target: Target::State(head),
                    peers: BTreeSet::new(),
                    loops: BTreeSet::from([scope]),
                })
            }
            LocalType::Rec { name, body } => {
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
                let peer = self.role_index(to)?;
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
                peers.insert(peer);
                Ok(self.define(id, kind, l, peers, next.loops))
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
                let peer = self.role_index(to)?;
                let next = self.build(then, env, None)?;
                let kind = Kind::Send {
                    to: peer,
                    label: label.clone(),
                    payload: payload.clone(),
                    labelled: true,
                    next: next.target,
                };
                let mut peers = next.peers;
                peers.insert(peer);
                Ok(self.define(id, kind, l, peers, next.loops))
            }
            LocalType::Select { to, branches } => {
                let id = reserved.unwrap_or_else(|| self.alloc());
                let mut peers = BTreeSet::new();
                let mut loops = BTreeSet::new();
                let mut arms = Vec::new();
                for (label, body) in branches {
                    let mut told = vec![self.role_index(to)?];
                    let mut rest = body;
                    // A chooser that tells several roles selects the same
                    // label once per role: one method does them all.
                    while let LocalType::Select { to, branches } = rest
                        && let [(l2, body2)] = branches.as_slice()
                        && l2 == label
                    {
                        told.push(self.role_index(to)?);
                        rest = body2;
                    }
                    let next = self.build(rest, env, None)?;
                    peers.extend(told.iter().copied());
                    peers.extend(next.peers);
                    loops.extend(next.loops);
                    arms.push((label.clone(), told, next.target));
                }
                Ok(self.define(id, Kind::Select { arms }, l, peers, loops))
            }
            LocalType::Branch { from, branches } => {
                let id = reserved.unwrap_or_else(|| self.alloc());
                let peer = self.role_index(from)?;
                let mut peers = BTreeSet::from([peer]);
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
                Ok(self.define(id, Kind::Branch { from: peer, arms }, l, peers, loops))
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
        peers: BTreeSet<usize>,
        loops: BTreeSet<usize>,
    ) -> Built {
        self.states[id] = Some(StateDef {
            kind,
            desc: abbreviate(l.to_string()),
            peers: peers.clone(),
            loops: loops.clone(),
        });
        Built {
            target: Target::State(id),
            peers,
            loops,
        }
    }

    /// The peers that still expect something at state `def`: those of its
    /// subtree and of every loop it may go back to, directly or through
    /// the loops those loops go back to.
    fn pending(&self, def: &StateDef) -> Vec<usize> {
        let mut all = def.peers.clone();
        let mut seen = BTreeSet::new();
        let mut todo: Vec<usize> = def.loops.iter().copied().collect();
        while let Some(s) = todo.pop() {
            if seen.insert(s) {
                all.extend(self.scopes[s].iter().copied());
                todo.extend(self.scope_loops[s].iter().copied());
            }
        }
        all.remove(&self.me);
        all.into_iter().collect()
    }

    fn target_ty(&self, t: Target) -> TokenStream {
        match t {
            Target::State(n) => {
                let name = format_ident!("State{}", n);
                quote!(#name<'a, H>)
            }
            Target::End => quote!(End<'a, H>),
        }
    }

    /// Moves the core on to `t`.
    fn goto(&self, t: Target) -> TokenStream {
        match t {
            Target::State(n) => {
                let name = format_ident!("State{}", n);
                quote!(#name { core: self.core.take() })
            }
            Target::End => quote!(End {
                core: self.core.take()
            }),
        }
    }

    fn role(&self, i: usize) -> TokenStream {
        let v = &self.g.variants[i];
        quote!(super::Role::#v)
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
        let me = self.role(self.me);
        let bound = quote! {
            H: #t::ChoreoHandler<Role = super::Role, Endpoint = #t::RumpsteakEndpoint<super::Role>>
        };
        let local = self.g.locals[self.me].to_string();
        let module_doc = format!("The role `{name}`, whose local type is `{local}`.");
        let mut items = Vec::new();
        for (n, def) in self.states.iter().enumerate() {
            let Some(def) = def else {
                return Err(syn::Error::new(
                    self.g.span(),
                    format!("internal: state {n} of role `{name}` was never built"),
                ));
            };
            let pending = self.pending(def);
            items.push(self.state(n, def, &pending, &bound)?);
        }
        let start_ty = self.target_ty(self.start);
        let start_value = match self.start {
            Target::State(n) => {
                let s = format_ident!("State{}", n);
                quote!(#s { core })
            }
            Target::End => quote!(End { core }),
        };
        let start_doc = format!(
            "Starts the role `{name}` with `handler` on `endpoint`, which must be \
             `{name}`'s endpoint with a session registered for each peer. Fails \
             with `ChoreographyError::WrongRole`, having done nothing, on another \
             role's endpoint."
        );
        let end_doc = format!(
            "The end of the role `{name}`: nothing is left to do. `finish` gives \
             the endpoint back; dropping this state closes nothing."
        );
        Ok(quote! {
            #[doc = #module_doc]
            pub mod #module {
                use super::*;

                #[doc = #start_doc]
                pub fn start<'a, H>(
                    handler: &'a mut H,
                    endpoint: &'a mut #t::RumpsteakEndpoint<super::Role>,
                ) -> #t::Result<#start_ty>
                where
                    #bound,
                {
                    #t::register_once(&super::__REGISTER, &super::__LABELS);
                    let core = #t::Core::start(handler, endpoint, #me)?;
                    ::core::result::Result::Ok(#start_value)
                }

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

    fn state(
        &self,
        n: usize,
        def: &StateDef,
        pending: &[usize],
        bound: &TokenStream,
    ) -> syn::Result<TokenStream> {
        let t = &self.g.input.support;
        let role_name = &self.g.roles[self.me];
        let state = format_ident!("State{}", n);
        let pending_name = format_ident!("PENDING_{}", n);
        let pending_roles = pending.iter().map(|&i| self.role(i));
        let desc = &def.desc;
        let doc = format!("`{role_name}` at `{desc}`.");
        let debug = format!("{role_name} at `{desc}`");
        let (methods, extra) = self.methods(n, def)?;
        Ok(quote! {
            const #pending_name: &[super::Role] = &[#(#pending_roles),*];

            #[doc = #doc]
            ///
            /// Dropping this state before the end abandons the protocol: the
            /// channels to the peers that still expect something are closed.
            #[must_use = "a state dropped before the end abandons the protocol"]
            pub struct #state<'a, H> {
                core: #t::Core<'a, super::Role, H>,
            }

            impl<'a, H> #state<'a, H>
            where
                #bound,
            {
                #methods

                /// The endpoint, to read its metadata between steps.
                pub fn endpoint(&self) -> &#t::RumpsteakEndpoint<super::Role> {
                    self.core.endpoint()
                }
            }

            impl<H> ::core::ops::Drop for #state<'_, H> {
                fn drop(&mut self) {
                    self.core.abandon(#pending_name);
                }
            }

            impl<H> ::core::fmt::Debug for #state<'_, H> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(#debug)
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
                let peer = &self.g.roles[*to];
                let method = ident(&format!("send_to_{}", snake(peer)), "method", span)?;
                let role = self.role(*to);
                let next_ty = self.target_ty(*next);
                let goto = self.goto(*next);
                let ty = self.payload_ty(label, payload)?;
                let shown = show(label, payload);
                // The receiver branches on this message: its label first.
                let (tag, tag_doc) = if *labelled {
                    (
                        quote! { self.core.choose(#role, #t::Label(#label)).await?; },
                        format!(
                            " `{peer}` branches on the message it receives here, so its label `{label}` goes first."
                        ),
                    )
                } else {
                    (TokenStream::new(), String::new())
                };
                Ok(match payload {
                    Some(_) => {
                        let doc = format!("Sends `{shown}` to `{peer}`.{tag_doc}");
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
                            "Sends `{shown}`, which carries no payload, to `{peer}`.{tag_doc}"
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
                let peer = &self.g.roles[*from];
                let method = ident(&format!("recv_from_{}", snake(peer)), "method", span)?;
                let timed = ident(
                    &format!("recv_from_{}_timeout", snake(peer)),
                    "method",
                    span,
                )?;
                let role = self.role(*from);
                let next_ty = self.target_ty(*next);
                let goto = self.goto(*next);
                let ty = self.payload_ty(label, payload)?;
                let shown = show(label, payload);
                let (out_ty, convert) = match payload {
                    Some(_) => (quote!(#ty), quote!(msg)),
                    None => (quote!(()), quote!({ let _: #ty = msg; })),
                };
                let doc = format!("Receives `{shown}` from `{peer}`.");
                let timed_doc = format!(
                    "Receives `{shown}` from `{peer}`, giving the state back unchanged if \
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
                    let roles: Vec<TokenStream> = told.iter().map(|&i| self.role(i)).collect();
                    let names: Vec<&str> = told.iter().map(|&i| self.g.roles[i].as_str()).collect();
                    let next_ty = self.target_ty(*next);
                    let goto = self.goto(*next);
                    let doc = format!(
                        "Chooses `{label}`, telling {}.",
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", then ")
                    );
                    methods.push(quote! {
                        #[doc = #doc]
                        pub async fn #method(mut self) -> #t::Result<#next_ty> {
                            #( self.core.choose(#roles, #t::Label(#label)).await?; )*
                            ::core::result::Result::Ok(#goto)
                        }
                    });
                }
                Ok((quote!(#(#methods)*), TokenStream::new()))
            }
            Kind::Branch { from, arms } => {
                let peer = &self.g.roles[*from];
                let role = self.role(*from);
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
                            let doc = format!("`{peer}` chose `{label}`.");
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
                                        "`{peer}` sent `{shown}`: the message, and the state after it."
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
                                        "`{peer}` sent `{shown}`, which carries no payload: the state after it."
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
                    "What `{peer}` chose at `State{n}`: one variant per label, each with the state that follows."
                );
                let doc = format!(
                    "Waits for `{peer}`'s choice. A label outside the protocol's is a \
                     `ChoreographyError::UnexpectedLabel` (and abandons the protocol)."
                );
                let timed_doc = format!(
                    "Waits for `{peer}`'s choice, giving the state back unchanged if \
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
                    {
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
                        }
                    },
                ))
            }
        }
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
