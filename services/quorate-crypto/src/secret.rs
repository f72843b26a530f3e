//! Secret byte strings that wipe themselves and never print.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A fixed-size secret: zeroized on drop, redacted in `Debug`, and read only through
/// [`SecretBytes::expose_secret`] so that every use is visible at its call site.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes<const N: usize>([u8; N]);

impl<const N: usize> SecretBytes<N> {
    /// Wraps bytes that the caller already holds. The caller's copy is its own to wipe.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// Fresh bytes from the operating system's random number generator.
    pub fn random() -> Self {
        let mut bytes = Self([0u8; N]);
        fill_random(&mut bytes.0);
        bytes
    }

    /// The secret bytes themselves.
    pub fn expose_secret(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes<{N}>([REDACTED])")
    }
}

impl<const N: usize> PartialEq for SecretBytes<N> {
    /// Constant-time comparison, so tests and checks leak nothing through timing.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl<const N: usize> Eq for SecretBytes<N> {}

/// Fills `buffer` from the operating system's random number generator.
pub(crate) fn fill_random(buffer: &mut [u8]) {
    use rand_core::Rng;
    system_rng().fill_bytes(buffer);
}

/// The operating system's random number generator, for APIs that want a `CryptoRng`.
/// Failure to read the OS generator is unrecoverable for key generation, so it panics
/// (without any secret in the message).
pub(crate) fn system_rng() -> rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = SecretBytes::new([0xAB; 4]);
        let shown = format!("{secret:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn random_secrets_differ() {
        assert_ne!(SecretBytes::<32>::random(), SecretBytes::<32>::random());
    }
}
