//! Rust names for the protocol's roles, labels and types.

use proc_macro2::Span;
use syn::Ident;

/// `HighBid` and `highBid` become `high_bid`, `HTTPServer` becomes
/// `http_server`; names already in snake case stay.
pub(crate) fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let after_lower = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            let ends_acronym = prev.is_some_and(|p| p.is_ascii_uppercase())
                && next.is_some_and(|n| n.is_ascii_lowercase());
            if (after_lower || ends_acronym) && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `accept` becomes `Accept`, `high_bid` becomes `HighBid`; names that
/// start with a capital stay.
pub(crate) fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        // A name of underscores only.
        out.push('_');
    }
    out
}

/// An identifier for `name`, raw if it is a keyword; an error for the few
/// keywords that cannot be raw (`self`, `Self`, `super`, `crate`) and for
/// a lone `_`.
pub(crate) fn ident(name: &str, what: &str, span: Span) -> syn::Result<Ident> {
    // Reserved in edition 2024 only, so syn takes it for an identifier; the
    // generated code may be compiled in any edition.
    if name == "gen" {
        return Ok(Ident::new_raw(name, span));
    }
    if let Ok(id) = syn::parse_str::<Ident>(name) {
        return Ok(Ident::new(&id.to_string(), span));
    }
    if matches!(name, "self" | "Self" | "super" | "crate" | "_") {
        return Err(syn::Error::new(
            span,
            format!("{what} `{name}` cannot be a Rust name: rename it in the protocol"),
        ));
    }
    Ok(Ident::new_raw(name, span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case() {
        assert_eq!(snake("Buyer"), "buyer");
        assert_eq!(snake("HighBid"), "high_bid");
        assert_eq!(snake("highBid"), "high_bid");
        assert_eq!(snake("HTTPServer"), "http_server");
        assert_eq!(snake("A"), "a");
        assert_eq!(snake("worker_2"), "worker_2");
        assert_eq!(snake("Worker2B"), "worker2_b");
    }

    #[test]
    fn camel_case() {
        assert_eq!(camel("accept"), "Accept");
        assert_eq!(camel("high_bid"), "HighBid");
        assert_eq!(camel("Accept"), "Accept");
        assert_eq!(camel("__"), "_");
    }

    #[test]
    fn keywords_are_raw_or_refused() {
        let span = Span::call_site();
        assert_eq!(ident("type", "role", span).unwrap().to_string(), "r#type");
        assert_eq!(ident("buyer", "role", span).unwrap().to_string(), "buyer");
        assert_eq!(ident("gen", "role", span).unwrap().to_string(), "r#gen");
        let e = ident("self", "role", span).unwrap_err();
        assert_eq!(
            e.to_string(),
            "role `self` cannot be a Rust name: rename it in the protocol"
        );
    }
}
