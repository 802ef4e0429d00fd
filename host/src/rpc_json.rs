//! The JSON pieces of the JSON-RPC face, read straight from the request bytes: no
//! `serde_json::Value` tree is built for a request. A request object is read into a typed
//! struct whose fields are [`Scalar`]s (a JSON leaf, strings borrowed from the body where
//! they have no escapes) or, for nested lists, the raw JSON text ([`RawValue`]), converted
//! later field by field with the same checks and the same field-named errors as before.
//!
//! Why not alloy's `TransactionRequest` and `alloy_serde::quantity` for the input: they
//! accept decimal-string quantities ("12"), which Bridle refuses (a quantity is 0x-hex or a
//! JSON integer), ignore unknown fields, which Bridle refuses naming the field (a typo must
//! not silently drop a fee), and their errors name a line and column, not the field. The
//! replies are serialized with `alloy_serde::quantity`, whose output is exactly Bridle's.

use crate::rpc::RpcError;
use alloy_primitives::{Address, Bytes, U256};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A JSON leaf, as the conversions need it; nested values are skipped, not kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Str(Cow<'a, str>),
    /// A non-negative integer within u64.
    UInt(u64),
    /// Any other number: negative, fractional, or beyond u64.
    OtherNumber,
    /// `true`, `false`, an array or an object.
    Other,
}

impl Scalar<'_> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::UInt(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(u64::try_from(v).map(Scalar::UInt).unwrap_or(Scalar::OtherNumber))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::OtherNumber)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// An object key, borrowed from the body when it has no escapes.
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(ScalarVisitor)? {
            Scalar::Str(s) => Ok(Key(s)),
            _ => Err(serde::de::Error::custom("an object key must be a string")),
        }
    }
}

/// The first character of a JSON text that is not whitespace.
pub fn first_char(raw: &str) -> Option<u8> {
    first_byte(raw.as_bytes())
}

/// [`first_char`] of JSON bytes (a request body, not yet known to be UTF-8).
pub fn first_byte(raw: &[u8]) -> Option<u8> {
    raw.iter().copied().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// A raw value that is JSON `null`.
pub fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// A raw value that is an object, read into `T`; `what` names it in the error otherwise.
pub fn object<'a, T: Deserialize<'a>>(raw: &'a RawValue, what: &str) -> Result<T, RpcError> {
    if first_char(raw.get()) != Some(b'{') {
        return Err(RpcError::invalid(format!("{what} must be a JSON object")));
    }
    serde_json::from_str(raw.get()).map_err(|e| RpcError::invalid(format!("{what}: {e}")))
}

/// The items of a JSON array `field`, refused while it is read once it has more than `max`:
/// a body of a megabyte of `0,` would otherwise be held as half a million references
/// (8 to 16 bytes each) before any check (found 2026-12-04 by a review).
pub fn array_within<'a>(raw: &'a [u8], max: usize, field: &str) -> Result<Vec<&'a RawValue>, ArrayError> {
    if first_byte(raw) != Some(b'[') {
        return Err(ArrayError::NotArray(format!("{field} must be an array")));
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    let over = std::cell::Cell::new(false);
    let items = de.deserialize_seq(Within { max, over: &over }).and_then(|v| de.end().map(|()| v)).map_err(|e| {
        if over.get() {
            ArrayError::TooMany(format!("{field} has more than {max} items"))
        } else {
            ArrayError::Malformed(e)
        }
    })?;
    Ok(items)
}

/// Why [`array_within`] refused.
#[derive(Debug)]
pub enum ArrayError {
    NotArray(String),
    TooMany(String),
    Malformed(serde_json::Error),
}

impl ArrayError {
    /// As a JSON-RPC `invalid params` error.
    pub fn invalid(self, field: &str) -> RpcError {
        match self {
            ArrayError::NotArray(m) | ArrayError::TooMany(m) => RpcError::invalid(m),
            ArrayError::Malformed(_) => RpcError::invalid(format!("{field} must be an array")),
        }
    }
}

struct Within<'c> {
    max: usize,
    over: &'c std::cell::Cell<bool>,
}

impl<'de> Visitor<'de> for Within<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of at most {} items", self.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(x) = seq.next_element::<&'de RawValue>()? {
            if out.len() == self.max {
                self.over.set(true);
                return Err(serde::de::Error::custom(format!("more than {} items", self.max)));
            }
            out.push(x);
        }
        Ok(out)
    }
}

/// Records the offending key a `BTreeMap` walk would meet first (the least one), so that
/// the error names the same field as before whatever the order in the body.
pub fn note_unknown(slot: &mut Option<String>, key: &str) {
    if slot.as_deref().is_none_or(|k| key < k) {
        *slot = Some(key.to_string());
    }
}

/// A struct of optional fields read from a JSON object by name: the last of duplicate keys
/// wins (as in a JSON map), other keys are skipped and the least of them is kept in
/// `unknown`. Field types: [`Scalar`] or `&RawValue`.
macro_rules! json_object {
    ($(#[$m:meta])* pub struct $name:ident<'a> { $($field:ident : $json:literal => $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Default)]
        pub struct $name<'a> {
            $(pub $field: Option<$ty>,)*
            /// The least key that is none of the fields.
            pub unknown: Option<String>,
            _life: std::marker::PhantomData<&'a ()>,
        }

        impl<'de> serde::de::Deserialize<'de> for $name<'de> {
            fn deserialize<D: serde::de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name<'de>, A::Error> {
                        let mut out = $name::default();
                        while let Some($crate::rpc_json::Key(key)) = map.next_key()? {
                            match key.as_ref() {
                                $($json => out.$field = Some(map.next_value()?),)*
                                other => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                    $crate::rpc_json::note_unknown(&mut out.unknown, other);
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}
pub(crate) use json_object;

// ---------------------------------------------------------------------------------------
// Leaf conversions (the messages are the JSON-RPC face's, unchanged).

/// A field that is present and not `null`.
pub fn present<'s, 'a>(v: &'s Option<Scalar<'a>>) -> Option<&'s Scalar<'a>> {
    v.as_ref().filter(|v| **v != Scalar::Null)
}

/// A raw field that is present and not `null`.
pub fn present_raw(v: Option<&RawValue>) -> Option<&RawValue> {
    v.filter(|v| !is_null(v))
}

pub fn param_address(v: &Scalar, field: &str) -> Result<Address, RpcError> {
    v.as_str()
        .and_then(|s| Address::from_str(s.trim()).ok())
        .ok_or_else(|| RpcError::invalid(format!("{field} is not a 20-byte hex address")))
}

pub fn hex_bytes(s: &str, field: &str) -> Result<Bytes, RpcError> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| RpcError::invalid(format!("{field} must be 0x-prefixed hex")))?;
    hex::decode(h).map(Bytes::from).map_err(|_| RpcError::invalid(format!("{field} is not valid hex")))
}

pub fn bytes_field(v: &Scalar, field: &str) -> Result<Bytes, RpcError> {
    match v {
        Scalar::Str(s) => hex_bytes(s, field),
        _ => Err(RpcError::invalid(format!("{field} must be a 0x-hex string"))),
    }
}

/// A hex quantity ("0x1a") or a non-negative JSON integer.
pub fn quantity(v: &Scalar, field: &str) -> Result<U256, RpcError> {
    match v {
        Scalar::Str(s) => {
            let h = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("0X"))
                .ok_or_else(|| RpcError::invalid(format!("{field} must be a 0x-prefixed hex quantity")))?;
            if h.is_empty() || h.len() > 64 {
                return Err(RpcError::invalid(format!("{field} is not a valid quantity")));
            }
            // Hex digits only: `from_str_radix` skips `_` ("0x_" would read as 0).
            if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(RpcError::invalid(format!("{field} is not a valid hex quantity")));
            }
            U256::from_str_radix(h, 16).map_err(|_| RpcError::invalid(format!("{field} is not a valid hex quantity")))
        }
        Scalar::UInt(n) => Ok(U256::from(*n)),
        Scalar::OtherNumber => Err(RpcError::invalid(format!("{field} must be a non-negative integer"))),
        Scalar::Null | Scalar::Other => Err(RpcError::invalid(format!("{field} must be a hex quantity"))),
    }
}

pub fn narrow<T: TryFrom<U256>>(v: U256, field: &str) -> Result<T, RpcError> {
    T::try_from(v).map_err(|_| RpcError::invalid(format!("{field} is out of range")))
}

pub fn opt_u256(v: &Option<Scalar>, field: &str) -> Result<Option<U256>, RpcError> {
    present(v).map(|v| quantity(v, field)).transpose()
}

pub fn opt_u64(v: &Option<Scalar>, field: &str) -> Result<Option<u64>, RpcError> {
    opt_u256(v, field)?.map(|v| narrow(v, field)).transpose()
}

pub fn opt_u128(v: &Option<Scalar>, field: &str) -> Result<Option<u128>, RpcError> {
    opt_u256(v, field)?.map(|v| narrow(v, field)).transpose()
}

pub fn opt_address(v: &Option<Scalar>, field: &str) -> Result<Option<Address>, RpcError> {
    present(v).map(|a| param_address(a, field)).transpose()
}

pub fn opt_bytes(v: &Option<Scalar>, field: &str) -> Result<Option<Bytes>, RpcError> {
    present(v).map(|b| bytes_field(b, field)).transpose()
}

pub fn required<T>(v: Option<T>, field: &str) -> Result<T, RpcError> {
    v.ok_or_else(|| {
        RpcError::invalid(format!("missing {field}: Bridle fills nothing, the transaction must set {field}"))
    })
}
