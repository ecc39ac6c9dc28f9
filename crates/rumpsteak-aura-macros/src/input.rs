//! What `protocol!` is given: the module to generate, the options, and
//! where the protocol text is.

use std::path::PathBuf;

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, LitStr, Path, Token, Visibility};

/// A parsed invocation.
pub(crate) struct Input {
    /// Attributes for the generated module (doc comments among them).
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) name: Ident,
    pub(crate) source: Source,
    /// `roles = "..."`: an existing role type to use instead of generating one.
    pub(crate) roles: Option<Path>,
    /// `crate = "..."`: the path of the typed run-time support.
    pub(crate) support: Path,
}

/// Where the protocol text comes from.
pub(crate) enum Source {
    /// Written inline.
    Inline(LitStr),
    /// Read from a file, relative to the invoking crate's manifest.
    File {
        /// The literal as written, for error spans.
        lit: LitStr,
        /// The resolved absolute path.
        path: PathBuf,
    },
}

impl Source {
    /// The span errors about the text point at.
    pub(crate) fn span(&self) -> Span {
        match self {
            Source::Inline(lit) | Source::File { lit, .. } => lit.span(),
        }
    }
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut attrs = Vec::new();
        let mut roles = None;
        let mut support = None;
        for attr in input.call(Attribute::parse_outer)? {
            if !attr.path().is_ident("protocol") {
                attrs.push(attr);
                continue;
            }
            attr.parse_nested_meta(|meta| {
                let value: LitStr = meta.value()?.parse()?;
                let path: Path = value.parse()?;
                if meta.path.is_ident("roles") {
                    roles = Some(path);
                } else if meta.path.is_ident("crate") {
                    support = Some(path);
                } else {
                    return Err(meta.error("expected `roles = \"...\"` or `crate = \"...\"`"));
                }
                Ok(())
            })?;
        }
        let vis: Visibility = input.parse()?;
        input.parse::<Token![mod]>()?;
        let name: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let source = if input.peek(LitStr) {
            Source::Inline(input.parse()?)
        } else {
            let kw: Ident = input.parse()?;
            if kw != "file" {
                return Err(syn::Error::new(
                    kw.span(),
                    "expected the protocol text as a string literal, or `file(\"path\")`",
                ));
            }
            let inner;
            syn::parenthesized!(inner in input);
            let lit: LitStr = inner.parse()?;
            let dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| {
                syn::Error::new(
                    lit.span(),
                    "CARGO_MANIFEST_DIR is not set: is this built by cargo?",
                )
            })?;
            let path = PathBuf::from(dir).join(lit.value());
            Source::File { lit, path }
        };
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the protocol"));
        }
        let support = match support {
            Some(path) => path,
            None => syn::parse_str("::rumpsteak_aura_choreography::typed")?,
        };
        Ok(Input {
            attrs,
            vis,
            name,
            source,
            roles,
            support,
        })
    }
}
