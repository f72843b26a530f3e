//! Property tests: envelope round trips at every size class, k-of-n reconstruction by
//! every k-subset and by no (k-1)-subset, and a flipped bit in any share detected and named.

use proptest::prelude::*;
use quorate_crypto::{
    AgeSecretKey, Error, Identity, PublicIdentity, RecordingId, VaultId, envelope,
    statement::SplitKey,
    threshold::{self, Subject, Threshold},
    vss::{Commitments, ScalarShare, Secret},
};

const CHUNK: usize = 64 * 1024;

/// Every subset of `0..n` with `size` elements.
fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
    (0u32..(1 << n))
        .filter(|mask| mask.count_ones() as usize == size)
        .map(|mask| (0..n).filter(|bit| mask & (1 << bit) != 0).collect())
        .collect()
}

fn pick(shares: &[ScalarShare], positions: &[usize]) -> Vec<ScalarShare> {
    positions.iter().map(|&p| shares[p].clone()).collect()
}

fn k_of_n() -> impl Strategy<Value = (usize, usize)> {
    (1usize..=7).prop_flat_map(|n| (1..=n, Just(n)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn envelope_round_trips(
        len in prop_oneof![0usize..=2, CHUNK - 2..=CHUNK + 2, 2 * CHUNK - 1..=2 * CHUNK + 1, 3 * CHUNK..=3 * CHUNK + 5000],
        seed: u8,
    ) {
        let plaintext: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
        let key = AgeSecretKey::generate();
        let (ciphertext, read) = envelope::encrypt(&plaintext[..], Vec::new(), &key.recipient()).unwrap();
        prop_assert_eq!(read, len as u64);
        let (decrypted, written) = envelope::decrypt(&ciphertext[..], Vec::new(), &key).unwrap();
        prop_assert_eq!(written, len as u64);
        prop_assert_eq!(decrypted, plaintext);
        // A different key never opens it.
        prop_assert!(envelope::decrypt(&ciphertext[..], Vec::new(), &AgeSecretKey::generate()).is_err());
    }

    #[test]
    fn every_k_subset_rebuilds_and_no_smaller_one_does((k, n) in k_of_n()) {
        let subject = Subject::Recording(RecordingId::random());
        let secret = Secret::random();
        let key = secret.age_key(&subject);
        let threshold = Threshold::new(k, n).unwrap();
        let (shares, commitments) = secret.split(threshold);
        prop_assert_eq!(shares.len(), n);
        for subset in subsets(n, k) {
            let rebuilt = threshold::combine(&pick(&shares, &subset), &commitments, &subject, &key.recipient()).unwrap();
            prop_assert_eq!(&rebuilt, &key);
        }
        if k > 1 {
            // Commitments to a polynomial of one degree less, as a lying server might send.
            let bytes = commitments.to_bytes();
            let fewer = Commitments::from_bytes(&bytes[..bytes.len() - 32]).unwrap();
            for subset in subsets(n, k - 1) {
                let picked = pick(&shares, &subset);
                // Refused by count under the real commitments...
                let refused = matches!(
                    threshold::combine(&picked, &commitments, &subject, &key.recipient()),
                    Err(Error::NotEnoughShares { .. })
                );
                prop_assert!(refused);
                // ...and under fewer commitments the shares do not verify.
                let wrong = threshold::combine(&picked, &fewer, &subject, &key.recipient());
                prop_assert!(matches!(wrong, Err(Error::RecipientMismatch | Error::BadShare { .. })), "{:?}", wrong);
            }
        }
    }

    #[test]
    fn a_flipped_bit_in_any_share_is_detected_and_named(
        (k, n) in k_of_n(),
        victim in any::<prop::sample::Index>(),
        byte in 0usize..32,
        bit in 0u8..8,
    ) {
        let identities: Vec<Identity> = (0..n).map(|_| Identity::generate()).collect();
        let members: Vec<PublicIdentity> = identities.iter().map(Identity::public).collect();
        let secret = Secret::random();
        let threshold = Threshold::new(k, n).unwrap();
        let vault = VaultId::random();
        let subject = Subject::Recording(RecordingId::random());
        let (split, sealed) = SplitKey::split_and_seal(vault, subject, &secret, threshold, &members).unwrap();
        // Each member's device opens its own share, as it would to approve.
        let shares: Vec<ScalarShare> = identities
            .iter()
            .zip(&sealed)
            .map(|(identity, sealed)| {
                let binding = split.binding_for(vault, subject, &identity.fingerprint()).unwrap();
                threshold::open_share(sealed, identity.age_key(), &binding).unwrap()
            })
            .collect();

        let victim = victim.index(n);
        let index = shares[victim].index();
        let mut bytes = *shares[victim].to_bytes();
        bytes[byte] ^= 1 << bit;
        // A value out of the scalar range is refused as it is read...
        let Ok(flipped) = ScalarShare::from_bytes(index, &bytes) else {
            return Ok(());
        };
        let mut tampered = shares.clone();
        tampered[victim] = flipped;

        // ...any other is named by the commitments in the signed manifest...
        let binding = split.binding_for(vault, subject, &members[victim].fingerprint()).unwrap();
        let detected = matches!(
            split.check_share(&binding, &tampered[victim]),
            Err(Error::BadShare { index: named }) if named == index
        );
        prop_assert!(detected);
        prop_assert!(split.check_share(&binding, &shares[victim]).is_ok());

        // ...and by the rebuild, before any interpolation.
        let result = threshold::combine(&tampered, &split.commitments, &subject, &split.recipient);
        prop_assert!(matches!(result, Err(Error::BadShare { index: named }) if named == index), "{:?}", result);
    }
}
