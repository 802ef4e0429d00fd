//! A policy section most policies leave empty, held on the heap only when it is set.
//!
//! Every session holds its own compiled policy, document included, so a section that sits
//! inline costs its full size in every session whether set or not (the approval rules are
//! 136 bytes, the user-operation rules 128). Held as a [`Section`], an empty one costs a
//! pointer (issue 12 item 5, measured in `enclave/tests/session_memory.rs`).
//!
//! A section reads, writes, compares, encodes and decodes exactly as the struct it holds:
//! the canonical encoding, and so every policy hash, is unchanged
//! (`common/tests/policy_encoding.rs`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// A section type with one shared empty value, equal to its `Default`.
pub trait Empty: Default + PartialEq + Sync + 'static {
    fn empty() -> &'static Self;
}

/// `T`, kept on the heap only when it differs from the empty section.
pub struct Section<T>(Option<Box<T>>);

impl<T: Empty> Section<T> {
    pub fn new(value: T) -> Section<T> {
        if value == *T::empty() {
            Section(None)
        } else {
            Section(Some(Box::new(value)))
        }
    }
}

impl<T: Empty> From<T> for Section<T> {
    fn from(value: T) -> Section<T> {
        Section::new(value)
    }
}

impl<T> Default for Section<T> {
    fn default() -> Section<T> {
        Section(None)
    }
}

impl<T: Empty> Deref for Section<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.0 {
            Some(value) => value,
            None => T::empty(),
        }
    }
}

impl<T: Empty> DerefMut for Section<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: Empty + Clone> Clone for Section<T> {
    fn clone(&self) -> Section<T> {
        Section::new((**self).clone())
    }
}

impl<T: Empty> PartialEq for Section<T> {
    fn eq(&self, other: &Section<T>) -> bool {
        **self == **other
    }
}

impl<T: Empty + Eq> Eq for Section<T> {}

impl<T: Empty + fmt::Debug> fmt::Debug for Section<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Empty + Serialize> Serialize for Section<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de, T: Empty + Deserialize<'de>> Deserialize<'de> for Section<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Section<T>, D::Error> {
        T::deserialize(d).map(Section::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::doc::{ApprovalRules, DelegationRules, GasRules, UserOpRules};
    use alloy_primitives::Address;

    #[test]
    fn each_empty_section_is_its_default() {
        assert!(*GasRules::empty() == GasRules::default());
        assert!(*ApprovalRules::empty() == ApprovalRules::default());
        assert!(*UserOpRules::empty() == UserOpRules::default());
        assert!(*DelegationRules::empty() == DelegationRules::default());
    }

    #[test]
    fn a_section_is_held_only_when_set_and_reads_as_its_value() {
        let mut s: Section<DelegationRules> = DelegationRules::default().into();
        assert!(s.0.is_none() && s.managers.is_empty());
        s.managers.push(Address::repeat_byte(1));
        assert!(s.0.is_some() && s.managers == [Address::repeat_byte(1)]);
        let copy = s.clone();
        assert_eq!(copy, s);
        // Emptied again, it equals and encodes as an empty one, held or not.
        s.managers.clear();
        assert_eq!(s, Section::default());
        assert_eq!(serde_json::to_string(&s).unwrap(), serde_json::to_string(&DelegationRules::default()).unwrap());
        let back: Section<DelegationRules> = serde_json::from_str(r#"{"managers":[],"delegators":[]}"#).unwrap();
        assert!(back.0.is_none());
        assert_eq!(format!("{copy:?}"), format!("{:?}", *copy));
    }
}
