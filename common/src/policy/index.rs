//! A compiled policy's indexes by address: which token or call rules name an address.
//!
//! A policy names few addresses, and every session holds its own compiled policy, so the
//! index is a sorted list searched by halving, not a hash map: a map's table takes about
//! 200 bytes for a single address, this 48 bytes an address (issue 12 item 5, measured in
//! `enclave/tests/session_memory.rs`).

use alloy_primitives::Address;

/// Address → indexes into one of the policy's lists, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByAddress {
    /// Sorted by address, each address once, each list non-empty.
    entries: Vec<(Address, Vec<usize>)>,
}

impl ByAddress {
    /// Add `index` under `address` (after any index already there).
    pub fn push(&mut self, address: Address, index: usize) {
        match self.entries.binary_search_by(|(a, _)| a.cmp(&address)) {
            Ok(at) => self.entries[at].1.push(index),
            Err(at) => self.entries.insert(at, (address, vec![index])),
        }
    }

    /// The indexes listed under `address`, if any.
    pub fn get(&self, address: &Address) -> Option<&Vec<usize>> {
        self.entries.binary_search_by(|(a, _)| a.cmp(address)).ok().map(|at| &self.entries[at].1)
    }

    pub fn contains_key(&self, address: &Address) -> bool {
        self.get(address).is_some()
    }

    /// Give back the room the lists grew into while being built.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        for (_, list) in &mut self.entries {
            list.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_address_added_with_its_indexes_in_order() {
        let a = |b: u8| Address::repeat_byte(b);
        let mut ix = ByAddress::default();
        for (i, b) in [9u8, 3, 9, 7, 3, 1].into_iter().enumerate() {
            ix.push(a(b), i);
        }
        ix.shrink_to_fit();
        assert_eq!(ix.get(&a(9)), Some(&vec![0, 2]));
        assert_eq!(ix.get(&a(3)), Some(&vec![1, 4]));
        assert_eq!(ix.get(&a(7)), Some(&vec![3]));
        assert_eq!(ix.get(&a(1)), Some(&vec![5]));
        assert_eq!(ix.get(&a(2)), None);
        assert!(ix.contains_key(&a(1)) && !ix.contains_key(&a(0)));
        // Against a map built from the same pushes, over many addresses.
        let mut ix = ByAddress::default();
        let mut map: std::collections::HashMap<Address, Vec<usize>> = Default::default();
        for i in 0..1000usize {
            let addr = a((i * 37 % 251) as u8);
            ix.push(addr, i);
            map.entry(addr).or_default().push(i);
        }
        for b in 0..=255u8 {
            assert_eq!(ix.get(&a(b)), map.get(&a(b)));
        }
    }
}
