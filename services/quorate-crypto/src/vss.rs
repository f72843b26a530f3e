//! Verifiable secret sharing and its redistribution to a new set of holders, the ground on
//! which a split key follows a changing roster without anyone rebuilding it (issue 18).
//!
//! The secret is a scalar of the ristretto255 group (order ℓ ≈ 2^252), shared with Shamir's
//! scheme over the scalar field: share `i` is `f(i)` for a random polynomial `f` of degree
//! k − 1 with `f(0)` the secret. Beside the shares the dealer publishes Feldman commitments
//! `C_l = a_l·G` to the coefficients, so anyone can compute the public image `f(i)·G` of
//! every share and each holder checks their own share against it.
//!
//! Redistribution (after Desmedt and Jajodia, with Feldman commitments as in Wong, Wang and
//! Wing's verifiable redistribution): each of k current holders, a set Q, shares their own
//! share again as a dealer, with a fresh polynomial `g_i` of the new degree and
//! `g_i(0) = f(i)`, and publishes the commitments `D_i` of `g_i`. Everyone checks that
//! `D_i,0` is the public image of the dealer's old share, so a dealer cannot deal anything
//! but their share; each new holder `j` checks the sub-share `g_i(j)` it received against
//! `D_i`, and a mismatch names the dealer. New holder `j`'s share is
//! `Σ_{i∈Q} λ_i g_i(j)` (λ the Lagrange coefficients of Q at 0), a point on the new
//! polynomial `f' = Σ λ_i g_i`, whose commitments `C'_l = Σ λ_i D_i,l` everyone computes
//! alike, and whose constant term commits to the same secret: `C'_0 = C_0`. Nobody holds
//! the secret at any step. `f'` is random apart from `f'(0)`, so an old share and new shares
//! lie on different polynomials and together rebuild nothing.
//!
//! Feldman commitments hide the secret only computationally (`C_0 = s·G` fixes it), which
//! is why the secret is never used as a key directly: the key is derived from it by a hash,
//! and finding `s` from `s·G` is the discrete logarithm problem in ristretto255.

use curve25519_dalek::{
    ristretto::CompressedRistretto,
    traits::{Identity, VartimeMultiscalarMul},
};
pub use curve25519_dalek::{ristretto::RistrettoPoint, scalar::Scalar};
use zeroize::Zeroizing;

use sha2::{Digest, Sha256};

use crate::{
    AgeSecretKey, Error, SecretBytes,
    threshold::{Subject, Threshold},
    wire::Writer,
};

/// One holder's share: its 1-based index (the x-coordinate) and its value.
#[derive(Clone)]
pub struct ScalarShare {
    index: u8,
    value: Zeroizing<Scalar>,
}

impl ScalarShare {
    /// Rebuilds a share from its index (1..=255) and the canonical encoding of its value.
    pub fn from_bytes(index: u8, value: &[u8; 32]) -> Result<Self, Error> {
        let value = Option::<Scalar>::from(Scalar::from_canonical_bytes(*value))
            .ok_or(Error::Malformed { what: "share" })?;
        if index == 0 {
            return Err(Error::Malformed { what: "share" });
        }
        Ok(Self {
            index,
            value: Zeroizing::new(value),
        })
    }

    /// The 1-based index.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The canonical encoding of the value, to be sealed to its holder.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.value.to_bytes())
    }
}

impl std::fmt::Debug for ScalarShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScalarShare({}, [REDACTED])", self.index)
    }
}

/// The Feldman commitments to a sharing polynomial's coefficients, lowest first: as many as
/// the shares needed to rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments(Vec<RistrettoPoint>);

impl Commitments {
    /// How many shares rebuild the secret.
    pub fn k(&self) -> usize {
        self.0.len()
    }

    /// The commitment to the secret itself.
    pub fn secret(&self) -> RistrettoPoint {
        self.0[0]
    }

    /// The public image `f(index)·G` of share `index`.
    pub fn public_share(&self, index: u8) -> RistrettoPoint {
        let x = Scalar::from(index);
        let mut power = Scalar::ONE;
        let powers: Vec<Scalar> = self
            .0
            .iter()
            .map(|_| {
                let this = power;
                power *= x;
                this
            })
            .collect();
        RistrettoPoint::vartime_multiscalar_mul(&powers, &self.0)
    }

    /// Checks `share` against these commitments.
    pub fn verify(&self, share: &ScalarShare) -> Result<(), Error> {
        if RistrettoPoint::mul_base(&share.value) == self.public_share(share.index) {
            Ok(())
        } else {
            Err(Error::BadShare { index: share.index })
        }
    }

    /// 32 bytes per commitment, lowest coefficient first.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|point| point.compress().to_bytes())
            .collect()
    }

    /// Parses [`Commitments::to_bytes`]: 1 to 255 valid points.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let malformed = Error::Malformed {
            what: "share commitments",
        };
        if bytes.is_empty() || !bytes.len().is_multiple_of(32) || bytes.len() / 32 > 255 {
            return Err(malformed);
        }
        bytes
            .chunks_exact(32)
            .map(|chunk| {
                CompressedRistretto::from_slice(chunk)
                    .ok()
                    .and_then(|compressed| compressed.decompress())
            })
            .collect::<Option<Vec<_>>>()
            // The identity commits to zero: as the secret it would make the key public.
            .filter(|points| !points.contains(&RistrettoPoint::identity()))
            .map(Self)
            .ok_or(malformed)
    }
}

/// A random polynomial of degree `k − 1` with `constant` as its value at 0.
struct Polynomial(Vec<Zeroizing<Scalar>>);

impl Polynomial {
    fn random(constant: &Scalar, k: u8) -> Self {
        let mut coefficients = vec![Zeroizing::new(*constant)];
        coefficients.extend((1..k).map(|_| Zeroizing::new(random_scalar())));
        Self(coefficients)
    }

    fn at(&self, x: u8) -> ScalarShare {
        let x_scalar = Scalar::from(x);
        let mut value = Zeroizing::new(Scalar::ZERO);
        for coefficient in self.0.iter().rev() {
            *value = *value * x_scalar + **coefficient;
        }
        ScalarShare { index: x, value }
    }

    fn shares(&self, n: u8) -> (Vec<ScalarShare>, Commitments) {
        ((1..=n).map(|x| self.at(x)).collect(), self.commitments())
    }

    fn commitments(&self) -> Commitments {
        Commitments(
            self.0
                .iter()
                .map(|coefficient| RistrettoPoint::mul_base(coefficient))
                .collect(),
        )
    }
}

/// A uniformly random scalar from the operating system's generator.
pub fn random_scalar() -> Scalar {
    let wide = crate::SecretBytes::<64>::random();
    Scalar::from_bytes_mod_order_wide(wide.expose_secret())
}

/// A fresh secret to be shared: what an uploader makes in place of a bare age key, since the
/// key is derived from it ([`age_key`]).
pub struct Secret(Zeroizing<Scalar>);

impl Secret {
    /// A uniformly random secret.
    pub fn random() -> Self {
        Self(Zeroizing::new(random_scalar()))
    }

    /// The age key this secret opens for `subject`.
    pub fn age_key(&self, subject: &Subject) -> AgeSecretKey {
        age_key(&self.0, subject)
    }

    /// Splits it into `threshold.n()` shares with their commitments.
    pub fn split(&self, threshold: Threshold) -> (Vec<ScalarShare>, Commitments) {
        split(&self.0, threshold)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// The age key that the secret shared for `subject` opens: SHA-256 over a domain string,
/// the subject and the secret, in clamped form. The secret itself is never the key, since
/// its commitment `s·G` is public; the subject keeps one secret from opening two things.
pub fn age_key(secret: &Scalar, subject: &Subject) -> AgeSecretKey {
    let mut context = Writer::new("quorate/vss-key/v1");
    subject.encode(&mut context);
    let mut hash = Sha256::new();
    hash.update(context.finish());
    hash.update(secret.as_bytes());
    let mut digest: [u8; 32] = hash.finalize().into();
    let key = AgeSecretKey::clamping(SecretBytes::new(digest));
    zeroize::Zeroize::zeroize(&mut digest);
    key
}

/// Splits `secret` into `threshold.n()` shares (indices 1..=n) with their commitments.
pub fn split(secret: &Scalar, threshold: Threshold) -> (Vec<ScalarShare>, Commitments) {
    Polynomial::random(secret, threshold.k()).shares(threshold.n())
}

/// [`split`] with the coefficients after the constant term given (k − 1 of them, lowest
/// first): only for golden vectors that another implementation must reproduce.
#[doc(hidden)]
pub fn split_with_coefficients(
    secret: &Scalar,
    coefficients: &[Scalar],
    n: u8,
) -> (Vec<ScalarShare>, Commitments) {
    let mut all = vec![Zeroizing::new(*secret)];
    all.extend(coefficients.iter().copied().map(Zeroizing::new));
    Polynomial(all).shares(n)
}

/// The Lagrange coefficient at 0 of index `i` among the distinct `indices`.
fn lagrange_at_zero(i: u8, indices: &[u8]) -> Scalar {
    let x_i = Scalar::from(i);
    let (numerator, denominator) = indices.iter().filter(|&&j| j != i).fold(
        (Scalar::ONE, Scalar::ONE),
        |(numerator, denominator), &j| {
            let x_j = Scalar::from(j);
            (numerator * x_j, denominator * (x_j - x_i))
        },
    );
    numerator * denominator.invert()
}

/// The indices given, refused unless there are at least `k` and all are distinct.
fn distinct_indices(indices: impl Iterator<Item = u8>, k: usize) -> Result<Vec<u8>, Error> {
    let mut seen = std::collections::BTreeSet::new();
    let indices: Vec<u8> = indices.collect();
    for &index in &indices {
        if !seen.insert(index) {
            return Err(Error::DuplicateShare { index });
        }
    }
    if indices.len() < k {
        return Err(Error::NotEnoughShares {
            have: indices.len(),
            need: k,
        });
    }
    Ok(indices)
}

/// The value at 0 of the polynomial through `points` (x, y), whose x are distinct.
fn value_at_zero<'a>(points: impl Iterator<Item = (u8, &'a Scalar)> + Clone) -> Zeroizing<Scalar> {
    let xs: Vec<u8> = points.clone().map(|(x, _)| x).collect();
    Zeroizing::new(points.fold(Scalar::ZERO, |sum, (x, y)| {
        sum + lagrange_at_zero(x, &xs) * y
    }))
}

/// Rebuilds the secret from at least `commitments.k()` shares, each checked first (a bad
/// one is named), and the result checked against the commitment to the secret.
pub fn recover(
    shares: &[ScalarShare],
    commitments: &Commitments,
) -> Result<Zeroizing<Scalar>, Error> {
    for share in shares {
        commitments.verify(share)?;
    }
    distinct_indices(shares.iter().map(ScalarShare::index), commitments.k())?;
    let secret = value_at_zero(shares.iter().map(|share| (share.index, &*share.value)));
    debug_assert_eq!(RistrettoPoint::mul_base(&secret), commitments.secret());
    Ok(secret)
}

/// What one current holder deals to the new holders: the commitments to their new
/// polynomial, and one sub-share per new index (1..=n), each to be sealed to its holder.
#[derive(Debug)]
pub struct Deal {
    /// The dealer's index among the current holders.
    pub dealer: u8,
    /// The commitments to the dealer's polynomial, public.
    pub commitments: Commitments,
    /// The sub-share for new holder `i` at position `i − 1`.
    pub subshares: Vec<ScalarShare>,
}

/// Deals `share` (checked against the current `commitments` first, so an honest device
/// never deals a corrupt share) to `new.n()` new holders, `new.k()` of whom will rebuild.
pub fn deal(share: &ScalarShare, commitments: &Commitments, new: Threshold) -> Result<Deal, Error> {
    commitments.verify(share)?;
    let polynomial = Polynomial::random(&share.value, new.k());
    Ok(Deal {
        dealer: share.index,
        commitments: polynomial.commitments(),
        subshares: (1..=new.n()).map(|x| polynomial.at(x)).collect(),
    })
}

/// Checks, with public data only, that a dealer's commitments deal their own current share:
/// their constant term is the public image of that share. Names the dealer otherwise.
pub fn check_dealt(
    current: &Commitments,
    dealer: u8,
    dealt: &Commitments,
    new_k: usize,
) -> Result<(), Error> {
    if dealer == 0 || dealt.k() != new_k || dealt.secret() != current.public_share(dealer) {
        return Err(Error::BadDealer { dealer });
    }
    Ok(())
}

/// The commitments of the new sharing, from the current ones and what each dealer in the
/// set published (dealer index, commitments): the same for every party that computes them.
/// Refused unless the dealers are at least `current.k()` distinct holders, each of whom
/// dealt their own share under the expected new threshold `new_k` (a dealer who did not
/// is named).
pub fn redistributed_commitments(
    current: &Commitments,
    new_k: usize,
    dealt: &[(u8, &Commitments)],
) -> Result<Commitments, Error> {
    let dealers = distinct_indices(dealt.iter().map(|(dealer, _)| *dealer), current.k())?;
    for (dealer, commitments) in dealt {
        check_dealt(current, *dealer, commitments, new_k)?;
    }
    let combined: Vec<RistrettoPoint> = (0..new_k)
        .map(|l| {
            dealt
                .iter()
                .fold(RistrettoPoint::identity(), |sum, (dealer, commitments)| {
                    sum + lagrange_at_zero(*dealer, &dealers) * commitments.0[l]
                })
        })
        .collect();
    debug_assert_eq!(combined[0], current.secret());
    Ok(Commitments(combined))
}

/// A new holder's share from the sub-shares the dealers sent it (dealer index, the dealer's
/// commitments, the sub-share): each sub-share is checked against its dealer's commitments
/// (a bad one names its dealer), then combined. Returns the share with the new commitments,
/// against which it verifies.
pub fn receive(
    current: &Commitments,
    new_k: usize,
    received: &[(u8, &Commitments, &ScalarShare)],
) -> Result<(ScalarShare, Commitments), Error> {
    let dealt: Vec<(u8, &Commitments)> = received
        .iter()
        .map(|(dealer, commitments, _)| (*dealer, *commitments))
        .collect();
    let new_commitments = redistributed_commitments(current, new_k, &dealt)?;
    let index = received[0].2.index;
    for (dealer, commitments, subshare) in received {
        if subshare.index != index || commitments.verify(subshare).is_err() {
            return Err(Error::BadSubShare { dealer: *dealer });
        }
    }
    let value = value_at_zero(
        received
            .iter()
            .map(|(dealer, _, subshare)| (*dealer, &*subshare.value)),
    );
    let share = ScalarShare { index, value };
    new_commitments.verify(&share)?;
    Ok((share, new_commitments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(k: usize, n: usize) -> Threshold {
        Threshold::new(k, n).unwrap()
    }

    /// Redistributes `shares` (dealt by those at `dealers`, positions in `shares`) to a new
    /// `new` policy; returns the new shares and commitments.
    fn redistribute(
        shares: &[ScalarShare],
        commitments: &Commitments,
        dealers: &[usize],
        new: Threshold,
    ) -> (Vec<ScalarShare>, Commitments) {
        let deals: Vec<Deal> = dealers
            .iter()
            .map(|&position| deal(&shares[position], commitments, new).unwrap())
            .collect();
        let mut new_shares = Vec::new();
        let mut new_commitments = None;
        for j in 0..usize::from(new.n()) {
            let received: Vec<(u8, &Commitments, &ScalarShare)> = deals
                .iter()
                .map(|deal| (deal.dealer, &deal.commitments, &deal.subshares[j]))
                .collect();
            let (share, commitments) =
                receive(commitments, usize::from(new.k()), &received).unwrap();
            new_shares.push(share);
            new_commitments = Some(commitments);
        }
        (new_shares, new_commitments.unwrap())
    }

    #[test]
    fn any_k_shares_rebuild_the_secret_and_each_verifies() {
        let secret = random_scalar();
        let (shares, commitments) = split(&secret, policy(3, 5));
        assert_eq!(commitments.secret(), RistrettoPoint::mul_base(&secret));
        for share in &shares {
            commitments.verify(share).unwrap();
        }
        for picked in [[0, 1, 2], [0, 2, 4], [4, 3, 1]] {
            let some: Vec<ScalarShare> = picked.iter().map(|&i| shares[i].clone()).collect();
            assert_eq!(*recover(&some, &commitments).unwrap(), secret);
        }
        assert!(matches!(
            recover(&shares[..2], &commitments),
            Err(Error::NotEnoughShares { need: 3, .. })
        ));
    }

    #[test]
    fn a_tampered_share_is_named() {
        let (mut shares, commitments) = split(&random_scalar(), policy(2, 3));
        *shares[1].value += Scalar::ONE;
        assert!(matches!(
            recover(&shares, &commitments),
            Err(Error::BadShare { index: 2 })
        ));
    }

    #[test]
    fn a_board_of_five_where_two_leave_and_two_join_keeps_the_same_secret() {
        let secret = random_scalar();
        let (old, commitments) = split(&secret, policy(3, 5));
        // Holders 1, 3 and 4 stay and deal; the new board is 3-of-5 again (three stayed,
        // two joined), each at a new index.
        let (new, new_commitments) = redistribute(&old, &commitments, &[0, 2, 3], policy(3, 5));
        assert_eq!(new_commitments.secret(), commitments.secret());
        assert_ne!(new_commitments, commitments, "a new polynomial");
        assert_eq!(*recover(&new[2..5], &new_commitments).unwrap(), secret);
        assert_eq!(*recover(&new[..3], &new_commitments).unwrap(), secret);

        // The leavers (holders 2 and 5) kept their old shares: with new shares they rebuild
        // nothing (the points lie on different polynomials), so they fail the new
        // commitments, and the value they interpolate is not the secret.
        for (leaver, others) in [(1, [0, 2]), (4, [0, 3])] {
            let mixed = [
                old[leaver].clone(),
                new[others[0]].clone(),
                new[others[1]].clone(),
            ];
            assert!(matches!(
                recover(&mixed, &new_commitments),
                Err(Error::BadShare { .. })
            ));
            let rebuilt = value_at_zero(mixed.iter().map(|share| (share.index, &*share.value)));
            assert_ne!(*rebuilt, secret);
        }
    }

    #[test]
    fn the_threshold_can_change_with_the_board() {
        let secret = random_scalar();
        let (old, commitments) = split(&secret, policy(2, 3));
        let (new, new_commitments) = redistribute(&old, &commitments, &[0, 2], policy(4, 7));
        assert_eq!(new_commitments.k(), 4);
        assert_eq!(*recover(&new[3..7], &new_commitments).unwrap(), secret);
        assert!(recover(&new[..3], &new_commitments).is_err());
    }

    #[test]
    fn a_dealer_who_deals_anything_but_their_share_is_named() {
        let (old, commitments) = split(&random_scalar(), policy(2, 4));
        let new = policy(2, 3);
        let honest = deal(&old[0], &commitments, new).unwrap();
        // Holder 3 deals a made-up value in place of their share.
        let forged = ScalarShare {
            index: 3,
            value: Zeroizing::new(random_scalar()),
        };
        let polynomial = Polynomial::random(&forged.value, new.k());
        let forged_deal = Deal {
            dealer: 3,
            commitments: polynomial.commitments(),
            subshares: (1..=3).map(|x| polynomial.at(x)).collect(),
        };
        let received = [
            (1, &honest.commitments, &honest.subshares[0]),
            (3, &forged_deal.commitments, &forged_deal.subshares[0]),
        ];
        assert!(matches!(
            receive(&commitments, 2, &received),
            Err(Error::BadDealer { dealer: 3 })
        ));
        // And an honest device refuses to deal a share that is not its own.
        assert!(matches!(
            deal(&forged, &commitments, new),
            Err(Error::BadShare { index: 3 })
        ));
    }

    #[test]
    fn a_bad_sub_share_names_its_dealer() {
        let (old, commitments) = split(&random_scalar(), policy(2, 3));
        let new = policy(2, 3);
        let first = deal(&old[0], &commitments, new).unwrap();
        let mut second = deal(&old[1], &commitments, new).unwrap();
        *second.subshares[1].value += Scalar::ONE;
        let received = [
            (1, &first.commitments, &first.subshares[1]),
            (2, &second.commitments, &second.subshares[1]),
        ];
        assert!(matches!(
            receive(&commitments, 2, &received),
            Err(Error::BadSubShare { dealer: 2 })
        ));
    }

    #[test]
    fn too_few_or_repeated_dealers_are_refused() {
        let (old, commitments) = split(&random_scalar(), policy(3, 4));
        let new = policy(2, 2);
        let deals: Vec<Deal> = [0, 1, 1]
            .iter()
            .map(|&i| deal(&old[i], &commitments, new).unwrap())
            .collect();
        let dealt: Vec<(u8, &Commitments)> = deals
            .iter()
            .map(|deal| (deal.dealer, &deal.commitments))
            .collect();
        assert!(redistributed_commitments(&commitments, 2, &dealt[..2]).is_err());
        assert!(redistributed_commitments(&commitments, 2, &dealt).is_err());
        // Three distinct dealers, each under k = 2: refused (the first named) when the
        // signed policy says 3, accepted when it says 2.
        let third = deal(&old[2], &commitments, new).unwrap();
        let three = [dealt[0], dealt[1], (third.dealer, &third.commitments)];
        assert!(matches!(
            redistributed_commitments(&commitments, 3, &three),
            Err(Error::BadDealer { dealer: 1 })
        ));
        assert!(redistributed_commitments(&commitments, 2, &three).is_ok());
    }

    #[test]
    fn the_key_is_rebuilt_after_a_redistribution_and_opens_what_was_sealed_to_it() {
        let subject = Subject::Recording(crate::RecordingId::random());
        let secret = random_scalar();
        let key = age_key(&secret, &subject);
        assert!(key.is_clamped());
        let sealed = crate::envelope::seal(b"minutes", &[key.recipient()]).unwrap();
        let (old, commitments) = split(&secret, policy(2, 3));
        let (new, new_commitments) = redistribute(&old, &commitments, &[1, 2], policy(2, 4));
        let rebuilt = recover(&new[2..4], &new_commitments).unwrap();
        let opened = crate::envelope::open(&sealed, &age_key(&rebuilt, &subject), "test").unwrap();
        assert_eq!(&opened[..], b"minutes");
        // Another subject's key from the same secret opens nothing of this one.
        let other = Subject::Transcript(crate::TranscriptId::random());
        assert_ne!(age_key(&secret, &other).recipient(), key.recipient());
    }

    #[test]
    fn commitments_and_shares_round_trip_and_refuse_bad_bytes() {
        let (shares, commitments) = split(&random_scalar(), policy(3, 3));
        assert_eq!(
            Commitments::from_bytes(&commitments.to_bytes()).unwrap(),
            commitments
        );
        let bytes = shares[0].to_bytes();
        let back = ScalarShare::from_bytes(shares[0].index(), &bytes).unwrap();
        commitments.verify(&back).unwrap();
        assert!(Commitments::from_bytes(&[0xff; 32]).is_err());
        // The identity point commits to zero.
        assert!(Commitments::from_bytes(&[0; 32]).is_err());
        assert!(Commitments::from_bytes(&[]).is_err());
        assert!(ScalarShare::from_bytes(1, &[0xff; 32]).is_err());
        assert!(ScalarShare::from_bytes(0, &bytes).is_err());
        assert!(!format!("{:?}", shares[0]).contains(&hex::encode(&bytes[..])));
    }
}
