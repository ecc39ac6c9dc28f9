//! A serde `Deserializer` adapter that bounds how deeply a value may nest.
//!
//! A derived `Deserialize` for a recursive type (`enum Tree { Leaf,
//! Node(Box<Tree>) }`) recurses once per level of the input, so a peer that
//! sends a million levels in a megabyte overflows the receiver's stack.
//! [`Limited`] wraps any deserializer and counts the levels: every sequence,
//! tuple, struct, map, enum, `Some` and newtype struct the visitor enters is
//! one level, and entering a level past the [`DepthLimit`] is an error
//! instead of a deeper call.
//!
//! Every method forwards to the wrapped deserializer, visitor, access or
//! seed and is `#[inline]`, so for a flat message the adapter compiles down
//! to the plain deserializer plus one compare per level entered.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// The most levels one decode may enter, and whether it tried to enter more.
pub(crate) struct DepthLimit {
    max: usize,
    exceeded: Cell<bool>,
}

impl DepthLimit {
    /// A limit of `max` nested levels.
    #[inline]
    pub(crate) const fn new(max: usize) -> Self {
        DepthLimit {
            max,
            exceeded: Cell::new(false),
        }
    }

    /// Wraps a deserializer for a top-level value, at depth zero.
    #[inline]
    pub(crate) fn wrap<'de, D: Deserializer<'de>>(&self, inner: D) -> Limited<'_, D> {
        Limited {
            inner,
            level: Level {
                remaining: self.max,
                limit: self,
            },
        }
    }

    /// Whether a decode through [`DepthLimit::wrap`] was refused for going
    /// deeper than the limit.
    ///
    /// The flag exists because a deserializer may drop the message given to
    /// `de::Error::custom` (postcard does), leaving the caller unable to
    /// tell this refusal from any other custom error.
    #[inline]
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.get()
    }

    #[cold]
    #[inline(never)]
    fn refuse<E: de::Error>(&self) -> E {
        self.exceeded.set(true);
        E::custom(format_args!("nesting deeper than {} levels", self.max))
    }
}

/// How many more levels may open around a value, and the limit they count
/// against. Counting down keeps the limit itself off the hot path: entering
/// a level is a test for zero.
#[derive(Clone, Copy)]
struct Level<'l> {
    remaining: usize,
    limit: &'l DepthLimit,
}

impl Level<'_> {
    /// The level inside a container opened here, or the refusal.
    #[inline]
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        match self.remaining.checked_sub(1) {
            Some(remaining) => Ok(Level {
                remaining,
                limit: self.limit,
            }),
            None => Err(self.limit.refuse()),
        }
    }
}

/// A deserializer whose visitors may not nest deeper than a [`DepthLimit`].
pub(crate) struct Limited<'l, D> {
    inner: D,
    level: Level<'l>,
}

/// A visitor whose containers count one level each.
struct LimitedVisitor<'l, V> {
    inner: V,
    level: Level<'l>,
}

/// A seed for a value inside an open container: it sees a [`Limited`]
/// deserializer at that container's level.
struct LimitedSeed<'l, S> {
    inner: S,
    level: Level<'l>,
}

/// A sequence (or tuple, or postcard struct) whose elements are limited.
struct LimitedSeq<'l, A> {
    inner: A,
    level: Level<'l>,
}

/// A map whose keys and values are limited.
struct LimitedMap<'l, A> {
    inner: A,
    level: Level<'l>,
}

/// An enum whose tag and content are limited.
struct LimitedEnum<'l, A> {
    inner: A,
    level: Level<'l>,
}

/// An enum variant whose content is limited.
struct LimitedVariant<'l, A> {
    inner: A,
    level: Level<'l>,
}

/// Forwards `deserialize_*` methods, wrapping the visitor at this level.
macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* LimitedVisitor { inner: visitor, level: self.level })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    // Not forwarding this would make the default (`true`) apply, and types
    // such as `IpAddr` would expect a text form the binary codec never wrote.
    #[inline]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards `visit_*` methods that carry no nested value.
macro_rules! forward_visit {
    ($($method:ident($($arg:ident: $ty:ty)?);)*) => {$(
        #[inline]
        fn $method<E: de::Error>(self $(, $arg: $ty)?) -> Result<V::Value, E> {
            self.inner.$method($($arg)?)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for LimitedVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(v: bool);
        visit_i8(v: i8);
        visit_i16(v: i16);
        visit_i32(v: i32);
        visit_i64(v: i64);
        visit_i128(v: i128);
        visit_u8(v: u8);
        visit_u16(v: u16);
        visit_u32(v: u32);
        visit_u64(v: u64);
        visit_u128(v: u128);
        visit_f32(v: f32);
        visit_f64(v: f64);
        visit_char(v: char);
        visit_str(v: &str);
        visit_borrowed_str(v: &'de str);
        visit_string(v: String);
        visit_bytes(v: &[u8]);
        visit_borrowed_bytes(v: &'de [u8]);
        visit_byte_buf(v: Vec<u8>);
        visit_none();
        visit_unit();
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        let level = self.level.enter()?;
        self.inner.visit_some(Limited {
            inner: deserializer,
            level,
        })
    }

    #[inline]
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        let level = self.level.enter()?;
        self.inner.visit_newtype_struct(Limited {
            inner: deserializer,
            level,
        })
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let level = self.level.enter()?;
        self.inner.visit_seq(LimitedSeq { inner: seq, level })
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let level = self.level.enter()?;
        self.inner.visit_map(LimitedMap { inner: map, level })
    }

    #[inline]
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let level = self.level.enter()?;
        self.inner.visit_enum(LimitedEnum { inner: data, level })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for LimitedSeed<'_, S> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Limited {
            inner: deserializer,
            level: self.level,
        })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for LimitedSeq<'_, A> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(LimitedSeed {
            inner: seed,
            level: self.level,
        })
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for LimitedMap<'_, A> {
    type Error = A::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(LimitedSeed {
            inner: seed,
            level: self.level,
        })
    }

    #[inline]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(LimitedSeed {
            inner: seed,
            level: self.level,
        })
    }

    #[inline]
    fn next_entry_seed<K: DeserializeSeed<'de>, T: DeserializeSeed<'de>>(
        &mut self,
        kseed: K,
        vseed: T,
    ) -> Result<Option<(K::Value, T::Value)>, A::Error> {
        self.inner.next_entry_seed(
            LimitedSeed {
                inner: kseed,
                level: self.level,
            },
            LimitedSeed {
                inner: vseed,
                level: self.level,
            },
        )
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'l, A: EnumAccess<'de>> EnumAccess<'de> for LimitedEnum<'l, A> {
    type Error = A::Error;
    type Variant = LimitedVariant<'l, A::Variant>;

    #[inline]
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let level = self.level;
        let (tag, variant) = self
            .inner
            .variant_seed(LimitedSeed { inner: seed, level })?;
        Ok((
            tag,
            LimitedVariant {
                inner: variant,
                level,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for LimitedVariant<'_, A> {
    type Error = A::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(LimitedSeed {
            inner: seed,
            level: self.level,
        })
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(
            len,
            LimitedVisitor {
                inner: visitor,
                level: self.level,
            },
        )
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(
            fields,
            LimitedVisitor {
                inner: visitor,
                level: self.level,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde::de::value::{Error as ValueError, SeqDeserializer};

    /// `depth` nested one-element sequences around a unit, through serde's
    /// own value deserializers rather than postcard: the adapter is generic.
    #[derive(Debug, PartialEq)]
    struct Nested(usize);

    impl<'de> Deserialize<'de> for Nested {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Nested;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("nested sequences")
                }
                fn visit_unit<E: de::Error>(self) -> Result<Nested, E> {
                    Ok(Nested(0))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nested, A::Error> {
                    let inner: Nested = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                    Ok(Nested(inner.0 + 1))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// A deserializer for `depth` nested sequences, built without recursion
    /// in the test itself beyond `depth` levels of boxes.
    enum Value {
        Unit,
        Seq(Box<Value>),
    }

    impl<'de> de::IntoDeserializer<'de, ValueError> for Value {
        type Deserializer = ValueDe;
        fn into_deserializer(self) -> ValueDe {
            ValueDe(self)
        }
    }

    struct ValueDe(Value);

    impl<'de> Deserializer<'de> for ValueDe {
        type Error = ValueError;
        fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ValueError> {
            match self.0 {
                Value::Unit => v.visit_unit(),
                Value::Seq(inner) => v.visit_seq(SeqDeserializer::new(std::iter::once(*inner))),
            }
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct enum identifier ignored_any
        }
    }

    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::Unit, |v, _| Value::Seq(Box::new(v)))
    }

    #[test]
    fn any_deserializer_is_limited() {
        let limit = DepthLimit::new(4);
        assert_eq!(
            Nested::deserialize(limit.wrap(ValueDe(nested(4)))).unwrap(),
            Nested(4)
        );
        assert!(!limit.exceeded());

        let limit = DepthLimit::new(4);
        let err = Nested::deserialize(limit.wrap(ValueDe(nested(5)))).unwrap_err();
        assert_eq!(err.to_string(), "nesting deeper than 4 levels");
        assert!(limit.exceeded());
    }
}
