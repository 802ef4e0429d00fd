//! A bound on what decoding a frame may allocate, checked while it decodes.
//!
//! [`check_cbor_structure`](crate::frame) bounds every declared length by the bytes that
//! follow, but not what the decoded value takes: a list of empty strings is one CBOR byte
//! per item and 24 bytes per `String` decoded, plus the list's growth — about fifty times
//! its frame, before anything is authenticated. So every decode runs through [`Bounded`]:
//! a serde adapter that charges each allocation the decoder's visitors are about to make —
//! a sequence's or map's element at its size (its list's growth included), a string or byte
//! buffer at its length — against a budget, and ends the decode with an error the moment the
//! budget is spent, before that allocation.
//!
//! The charges are upper bounds of what the standard collections take: a `Vec` holds at
//! most twice its length (its growth doubles), and while it grows the old buffer is held
//! beside the new one, so three times its elements' size; its first element may reserve four
//! (`RawVec`'s smallest capacity for small elements). Maps are charged four times an entry
//! and twelve times the first (a B-tree's first leaf holds eleven). A string or byte buffer
//! is charged twice its length and 16 bytes (an allocator's block). A struct's fields live in
//! the struct, which its container was charged for, and field and variant names allocate
//! nothing: neither is charged; a name is passed on cut to 64 bytes (serde copies an unknown
//! one into its error). The decoder reads every string whole into its scratch buffer
//! (`frame::from_cbor_within`; an owned string is asked for as a borrowed one), so it
//! allocates for no string before it is charged; it does allocate a byte string read as a
//! list (at most the frame's length at a time).
//!
//! Not charged: serde's buffered content (untagged enums, `flatten`), which no type decoded
//! from a frame uses, and boxes — one per call in a cluster log entry (`Op::Call`, from
//! authenticated peers), one in a status reply (decoded by the host), and up to five in a
//! policy (its rarely set sections, `policy::section`; ≈ 550 bytes in all, once per frame:
//! a frame carries at most one policy).

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use std::cell::Cell;
use std::fmt;
use std::mem::size_of;

thread_local! {
    /// Bytes the decode running on this thread may still allocate.
    static LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Whether the decode running on this thread ran out of budget.
    static SPENT: Cell<bool> = const { Cell::new(false) };
}

/// What a run of [`within`] charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    /// Bytes charged (up to the budget).
    pub bytes: usize,
    /// Whether the budget ran out: the decode then ended with an error.
    pub ran_out: bool,
}

/// Run `decode` with `budget` bytes to allocate through [`Bounded`]. Nested runs keep their
/// own budgets.
pub fn within<R>(budget: usize, decode: impl FnOnce() -> R) -> (R, Charged) {
    /// Restores the enclosing run's budget, also if `decode` panics.
    struct Restore(usize, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            LEFT.set(self.0);
            SPENT.set(self.1);
        }
    }
    let _restore = Restore(LEFT.replace(budget), SPENT.replace(false));
    let r = decode();
    let charged = Charged { bytes: budget - LEFT.get().min(budget), ran_out: SPENT.get() };
    (r, charged)
}

fn charge<E: de::Error>(bytes: usize) -> Result<(), E> {
    let left = LEFT.get();
    if bytes > left {
        SPENT.set(true);
        LEFT.set(0);
        return Err(E::custom("the decoded value would exceed its budget"));
    }
    LEFT.set(left - bytes);
    Ok(())
}

/// The longest field or variant name passed on: longer than any of ours, so matching is
/// unchanged, while an unknown name — which serde copies into its error — stays short.
const MAX_NAME: usize = 64;

/// `s` cut to [`MAX_NAME`] bytes, at a character boundary.
fn name(s: &str) -> &str {
    let mut end = s.len().min(MAX_NAME);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A string or byte buffer of `len` bytes, unless it is a name (matched, never kept).
fn buffer<E: de::Error>(kind: Kind, len: usize) -> Result<(), E> {
    match kind {
        Kind::Name => Ok(()),
        Kind::Value | Kind::Struct => charge(len.saturating_mul(2).saturating_add(16)),
    }
}

/// `T`, decoded with every allocation charged (see the module).
pub struct Bounded<T>(pub T);

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Bounded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(De(d)).map(Bounded)
    }
}

struct De<D>(D);
/// A visitor, and what the value it visits is: a struct's fields and names are not charged.
struct Vis<V>(V, Kind);
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value,
    /// A struct (or struct variant): its map's entries are its fields.
    Struct,
    /// A field or variant name, matched and dropped.
    Name,
}
struct Seed<S>(S);
struct Seq<A> {
    inner: A,
    first: bool,
}
struct Map<A> {
    inner: A,
    first: bool,
    /// Whether entries are charged (not for a struct's fields).
    charged: bool,
}
struct Enum<A>(A);
struct Variant<A>(A);

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) $kind:ident;)*) => {$(
        fn $name<V: Visitor<'de>>(self, $($arg: $ty,)* v: V) -> Result<V::Value, D::Error> {
            self.0.$name($($arg,)* Vis(v, Kind::$kind))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for De<D> {
    type Error = D::Error;
    forward! {
        deserialize_any() Value; deserialize_bool() Value; deserialize_i8() Value; deserialize_i16() Value;
        deserialize_i32() Value; deserialize_i64() Value; deserialize_i128() Value; deserialize_u8() Value;
        deserialize_u16() Value; deserialize_u32() Value; deserialize_u64() Value; deserialize_u128() Value;
        deserialize_f32() Value; deserialize_f64() Value; deserialize_char() Value; deserialize_str() Value;
        deserialize_bytes() Value;
        deserialize_option() Value; deserialize_unit() Value; deserialize_seq() Value; deserialize_map() Value;
        deserialize_identifier() Name; deserialize_ignored_any() Value;
        deserialize_unit_struct(name: &'static str) Value;
        deserialize_newtype_struct(name: &'static str) Value;
        deserialize_tuple(len: usize) Value;
        deserialize_tuple_struct(name: &'static str, len: usize) Value;
        deserialize_struct(name: &'static str, fields: &'static [&'static str]) Struct;
        deserialize_enum(name: &'static str, variants: &'static [&'static str]) Value;
    }
    // An owned string or buffer is asked for as a borrowed one: the decoder then reads it
    // into its scratch buffer instead of allocating it before it is charged, and the
    // visitor copies it (serde's `String` and byte-buffer visitors take both).
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_str(Vis(v, Kind::Value))
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_bytes(Vis(v, Kind::Value))
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! pass {
    ($($name:ident($ty:ty);)*) => {$(
        fn $name<E: de::Error>(self, x: $ty) -> Result<Self::Value, E> {
            self.0.$name(x)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Vis<V> {
    type Value = V::Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }
    pass! {
        visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64); visit_i128(i128);
        visit_u8(u8); visit_u16(u16); visit_u32(u32); visit_u64(u64); visit_u128(u128);
        visit_f32(f32); visit_f64(f64); visit_char(char);
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        buffer(self.1, s.len())?;
        self.0.visit_str(if self.1 == Kind::Name { name(s) } else { s })
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        buffer(self.1, s.len())?;
        self.0.visit_borrowed_str(if self.1 == Kind::Name { name(s) } else { s })
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        buffer(self.1, s.len())?;
        match self.1 {
            Kind::Name => self.0.visit_str(name(&s)),
            Kind::Value | Kind::Struct => self.0.visit_string(s),
        }
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Self::Value, E> {
        buffer(self.1, b.len())?;
        self.0.visit_bytes(if self.1 == Kind::Name { &b[..b.len().min(MAX_NAME)] } else { b })
    }
    fn visit_borrowed_bytes<E: de::Error>(self, b: &'de [u8]) -> Result<Self::Value, E> {
        buffer(self.1, b.len())?;
        self.0.visit_borrowed_bytes(if self.1 == Kind::Name { &b[..b.len().min(MAX_NAME)] } else { b })
    }
    fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<Self::Value, E> {
        buffer(self.1, b.len())?;
        match self.1 {
            Kind::Name => self.0.visit_bytes(&b[..b.len().min(MAX_NAME)]),
            Kind::Value | Kind::Struct => self.0.visit_byte_buf(b),
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(De(d))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(De(d))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Seq { inner: a, first: true })
    }
    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Map { inner: a, first: true, charged: self.1 != Kind::Struct })
    }
    fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Enum(a))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(De(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;
    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, A::Error> {
        let size = size_of::<S::Value>();
        let got = self.inner.next_element_seed(Seed(seed))?;
        if got.is_some() {
            // The element is pushed after this returns: charge its slot (see the module).
            charge(size.saturating_mul(if std::mem::take(&mut self.first) { 7 } else { 3 }))?;
        }
        Ok(got)
    }
    // No size hint: a declared length reserves nothing before its elements are charged.
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let size = size_of::<K::Value>();
        let got = self.inner.next_key_seed(Seed(seed))?;
        if got.is_some() && self.charged {
            charge(size.saturating_mul(if self.first { 12 } else { 4 }))?;
        }
        Ok(got)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let size = size_of::<V::Value>();
        let v = self.inner.next_value_seed(Seed(seed))?;
        if self.charged {
            charge(size.saturating_mul(if std::mem::take(&mut self.first) { 12 } else { 4 }))?;
        }
        Ok(v)
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant), A::Error> {
        let (v, rest) = self.0.variant_seed(Seed(seed))?;
        Ok((v, Variant(rest)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Vis(v, Kind::Value))
    }
    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], v: V) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Vis(v, Kind::Struct))
    }
}
