//! [`ReplayWindow`]: which message counters of one direction were already
//! accepted. A sliding bitmap of [`WINDOW`] counters below the highest accepted
//! one: messages may arrive in any order within the window, each at most once;
//! anything older is refused because it can no longer be told apart from a replay.

use crate::error::ChannelError;

/// Width of the replay window, in counters.
pub const WINDOW: u64 = 4096;

const WORDS: usize = (WINDOW / 64) as usize;

/// The receive-side replay state of one direction. [`ReplayWindow::check`] never
/// changes it; [`ReplayWindow::commit`] is called only once a frame authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest accepted counter, None before the first.
    top: Option<u64>,
    /// Bit `c % WINDOW` is set when counter `c` (within the window) was accepted.
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow { top: None, bits: [0; WORDS] }
    }
}

fn slot(counter: u64) -> (usize, u64) {
    let bit = counter % WINDOW;
    ((bit / 64) as usize, 1u64 << (bit % 64))
}

impl ReplayWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest accepted counter.
    pub fn highest(&self) -> Option<u64> {
        self.top
    }

    fn is_set(&self, counter: u64) -> bool {
        let (word, mask) = slot(counter);
        self.bits.get(word).is_some_and(|w| w & mask != 0)
    }

    fn set(&mut self, counter: u64, on: bool) {
        let (word, mask) = slot(counter);
        if let Some(w) = self.bits.get_mut(word) {
            if on {
                *w |= mask;
            } else {
                *w &= !mask;
            }
        }
    }

    /// Whether `counter` may still be accepted: not seen, and not below the window.
    pub fn check(&self, counter: u64) -> Result<(), ChannelError> {
        let Some(top) = self.top else { return Ok(()) };
        if counter > top {
            return Ok(());
        }
        if top - counter >= WINDOW {
            return Err(ChannelError::TooOld { counter, oldest_accepted: top - (WINDOW - 1) });
        }
        if self.is_set(counter) {
            return Err(ChannelError::Duplicate { counter });
        }
        Ok(())
    }

    /// Records `counter` as accepted (after [`ReplayWindow::check`] passed and the
    /// frame authenticated), sliding the window forward if it is the new highest.
    pub fn commit(&mut self, counter: u64) {
        match self.top {
            Some(top) if counter <= top => {}
            Some(top) if counter - top >= WINDOW => {
                self.bits = [0; WORDS];
                self.top = Some(counter);
            }
            Some(top) => {
                // Counters top+1 ..= counter enter the window: forget what their
                // slots held (counters WINDOW lower, now out of the window).
                for c in top + 1..=counter {
                    self.set(c, false);
                }
                self.top = Some(counter);
            }
            None => self.top = Some(counter),
        }
        self.set(counter, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, c: u64) -> Result<(), ChannelError> {
        w.check(c)?;
        w.commit(c);
        Ok(())
    }

    #[test]
    fn any_order_once_within_the_window() {
        let mut w = ReplayWindow::new();
        for c in [5, 0, 3, 1, 4, 2, 9] {
            accept(&mut w, c).unwrap();
        }
        for c in [0, 1, 2, 3, 4, 5, 9] {
            assert_eq!(accept(&mut w, c), Err(ChannelError::Duplicate { counter: c }));
        }
        accept(&mut w, 8).unwrap();
        assert_eq!(w.highest(), Some(9));
    }

    #[test]
    fn too_old_is_refused_and_changes_nothing() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 10).unwrap();
        accept(&mut w, 10 + WINDOW).unwrap();
        let before = w.clone();
        assert_eq!(accept(&mut w, 10), Err(ChannelError::TooOld { counter: 10, oldest_accepted: 11 }));
        assert_eq!(accept(&mut w, 10 + WINDOW), Err(ChannelError::Duplicate { counter: 10 + WINDOW }));
        assert_eq!(w, before);
        // The oldest counter still in the window is accepted once.
        accept(&mut w, 11).unwrap();
        assert_eq!(accept(&mut w, 11), Err(ChannelError::Duplicate { counter: 11 }));
    }

    #[test]
    fn sliding_forgets_old_slots_but_not_recent_ones() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 1).unwrap();
        accept(&mut w, 100).unwrap();
        // Slide by less than the window: 100 is still remembered, 1 falls out.
        accept(&mut w, WINDOW + 50).unwrap();
        assert_eq!(w.check(100), Err(ChannelError::Duplicate { counter: 100 }));
        assert!(matches!(w.check(1), Err(ChannelError::TooOld { .. })));
        // The slot of 1 now stands for WINDOW + 1, which was never seen.
        accept(&mut w, WINDOW + 1).unwrap();
        // Jumps far beyond the window and the top of the counter space.
        accept(&mut w, u64::MAX - 1).unwrap();
        assert!(matches!(w.check(WINDOW + 50), Err(ChannelError::TooOld { .. })));
        accept(&mut w, u64::MAX).unwrap();
        assert_eq!(w.check(u64::MAX), Err(ChannelError::Duplicate { counter: u64::MAX }));
        accept(&mut w, u64::MAX - WINDOW + 1).unwrap();
        assert!(matches!(w.check(u64::MAX - WINDOW), Err(ChannelError::TooOld { .. })));
    }
}
