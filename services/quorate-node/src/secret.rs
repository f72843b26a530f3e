//! A buffer for plaintext (decoded audio, a transcript's text) that leaves no copy of it in
//! freed memory.
//!
//! A `Vec` grows by moving its contents into a larger allocation and freeing the old one as
//! it is; `Zeroizing<Vec<_>>` wipes only the allocation it holds when dropped, so every
//! earlier one keeps a stale copy of what was in it. [`SecretVec`] grows itself instead: it
//! copies into the larger allocation, wipes the old one, then frees it; and it wipes the last
//! one when dropped.

use zeroize::{Zeroize, Zeroizing};

/// A growable buffer that wipes every allocation it leaves and its last one when dropped.
#[derive(Default)]
pub struct SecretVec<T: Zeroize>(Zeroizing<Vec<T>>);

impl<T: Zeroize> std::fmt::Debug for SecretVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVec")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}

impl<T: Zeroize + Copy> SecretVec<T> {
    /// An empty buffer with room for up to `capacity` items: less (none) when the allocator
    /// refuses, because a count read from a file is a hint that a hostile file can inflate.
    pub fn with_capacity_hint(capacity: usize) -> Self {
        let mut buffer = Vec::new();
        let _ = buffer.try_reserve_exact(capacity);
        Self(Zeroizing::new(buffer))
    }

    /// Makes room for `additional` more items, moving to a larger allocation (and wiping the
    /// old one) only when needed, at least doubling so that growth stays linear.
    pub fn reserve(&mut self, additional: usize) {
        let needed = self
            .0
            .len()
            .checked_add(additional)
            .expect("a buffer longer than memory");
        if needed <= self.0.capacity() {
            return;
        }
        let mut grown = Vec::with_capacity(needed.max(self.0.capacity().saturating_mul(2)));
        grown.extend_from_slice(&self.0);
        // The old allocation comes back wrapped, so it is wiped (with its spare capacity)
        // before it is freed at the end of this statement.
        drop(Zeroizing::new(std::mem::replace(&mut *self.0, grown)));
    }

    /// Appends one item.
    pub fn push(&mut self, item: T) {
        self.reserve(1);
        self.0.push(item);
    }

    /// Appends `items`; room for them is made first, so `Vec` never grows on its own.
    pub fn extend_from_slice(&mut self, items: &[T]) {
        self.reserve(items.len());
        self.0.extend_from_slice(items);
    }

    /// Appends every item of `items` (room for its announced length made at once).
    pub fn extend(&mut self, items: impl ExactSizeIterator<Item = T>) {
        self.reserve(items.len());
        // One at a time, so that an iterator yielding more than it announced still goes
        // through `reserve`.
        for item in items {
            self.push(item);
        }
    }

    /// Sets the length to `len`, filling new places with `value`.
    pub fn resize(&mut self, len: usize, value: T) {
        self.reserve(len.saturating_sub(self.0.len()));
        self.0.resize(len, value);
    }

    /// Shortens the buffer to `len` items, wiping the ones cut off.
    pub fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            for item in &mut self.0[len..] {
                item.zeroize();
            }
            self.0.truncate(len);
        }
    }

    /// Removes the first `count` items, moving the rest to the front (in place, so no copy
    /// is left elsewhere) and wiping the places that fall free at the end.
    pub fn remove_front(&mut self, count: usize) {
        let count = count.min(self.0.len());
        self.0.copy_within(count.., 0);
        self.truncate(self.0.len() - count);
    }

    /// The items, in a buffer that is wiped when dropped (and that must not grow again).
    pub fn into_inner(self) -> Zeroizing<Vec<T>> {
        self.0
    }
}

impl<T: Zeroize> std::ops::Deref for SecretVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Zeroize> std::ops::DerefMut for SecretVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl std::io::Write for SecretVec<u8> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SecretVec;

    #[test]
    fn grows_keeping_every_item_in_order() {
        let mut buffer = SecretVec::with_capacity_hint(2);
        buffer.extend_from_slice(&[1u8, 2]);
        buffer.push(3);
        buffer.extend([4u8, 5, 6].into_iter());
        std::io::Write::write_all(&mut buffer, &[7, 8]).unwrap();
        buffer.resize(10, 0);
        assert_eq!(&buffer[..], &[1, 2, 3, 4, 5, 6, 7, 8, 0, 0]);
        buffer.remove_front(3);
        buffer.truncate(5);
        assert_eq!(&buffer[..], &[4, 5, 6, 7, 8]);
        buffer.truncate(9);
        assert_eq!(&buffer.into_inner()[..], &[4, 5, 6, 7, 8]);
    }

    #[test]
    fn an_absurd_capacity_hint_is_not_an_abort() {
        let buffer = SecretVec::<f32>::with_capacity_hint(usize::MAX / 2);
        assert!(buffer.is_empty());
    }
}
