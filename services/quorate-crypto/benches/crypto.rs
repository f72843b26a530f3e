//! `cargo bench -p quorate-crypto`: envelope throughput against raw ChaCha20-Poly1305 over
//! the same 64 MiB; the k-of-n split and rebuild of a key (share format v2: Feldman over
//! ristretto255, with the key derived from the secret); and what one recording costs each
//! party when a board re-shares. Figures go in docs/BENCHMARKS.md.

use std::{hint::black_box, io, time::Duration};

use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quorate_crypto::{
    AgeSecretKey, RecordingId, envelope,
    threshold::{self, Subject, Threshold},
    vss::{self, Commitments, ScalarShare, Secret},
};

const SIZE: usize = 64 << 20;

fn envelope_against_raw_aead(c: &mut Criterion) {
    let plaintext: Vec<u8> = (0..SIZE).map(|i| (i * 7) as u8).collect();
    let key = AgeSecretKey::generate();
    let recipient = key.recipient();
    let (ciphertext, _) = envelope::encrypt(
        &plaintext[..],
        Vec::with_capacity(SIZE + 70_000),
        &recipient,
    )
    .unwrap();

    let mut group = c.benchmark_group("64MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("envelope_encrypt", |b| {
        b.iter(|| envelope::encrypt(black_box(&plaintext[..]), io::sink(), &recipient).unwrap())
    });
    group.bench_function("envelope_decrypt", |b| {
        b.iter(|| envelope::decrypt(black_box(&ciphertext[..]), io::sink(), &key).unwrap())
    });
    group.bench_function("age_bare_decrypt", |b| {
        let identity: age::x25519::Identity = key.to_age_string().parse().unwrap();
        b.iter(|| {
            let d = age::Decryptor::new_buffered(black_box(&ciphertext[..])).unwrap();
            let mut r = d.decrypt(std::iter::once(&identity as _)).unwrap();
            io::copy(&mut r, &mut io::sink()).unwrap()
        })
    });
    let aead = ChaCha20Poly1305::new(&[9u8; 32].into());
    let mut buffer = plaintext.clone();
    group.bench_function("raw_chacha20poly1305", |b| {
        b.iter(|| {
            let tag = aead
                .encrypt_in_place_detached(&[0u8; 12].into(), b"", &mut buffer)
                .unwrap();
            black_box(tag)
        })
    });
    // The client also hashes the ciphertext for the manifest as it streams.
    group.bench_function("envelope_encrypt_and_sha256", |b| {
        b.iter(|| {
            let writer = envelope::HashingWriter::new(io::sink());
            let (writer, _) =
                envelope::encrypt(black_box(&plaintext[..]), writer, &recipient).unwrap();
            writer.finish()
        })
    });
    group.finish();
}

/// What an uploader and a node pay per key: the split with its commitments, and the rebuild
/// from k shares with every share checked, the key derived and its recipient compared.
fn split_and_combine(c: &mut Criterion) {
    let mut group = c.benchmark_group("threshold");
    for (k, n) in [(3usize, 5usize), (100, 200)] {
        let secret = Secret::random();
        let subject = Subject::Recording(RecordingId::random());
        let policy = Threshold::new(k, n).unwrap();
        let label = format!("{k}-of-{n}");
        group.bench_with_input(BenchmarkId::new("split", &label), &policy, |b, policy| {
            b.iter(|| secret.split(*policy))
        });
        let (shares, commitments) = secret.split(policy);
        let recipient = secret.age_key(&subject).recipient();
        group.bench_with_input(
            BenchmarkId::new("combine", &label),
            &shares[..k],
            |b, shares| {
                b.iter(|| threshold::combine(shares, &commitments, &subject, &recipient).unwrap())
            },
        );
    }
    group.finish();
}

/// Per recording, the arithmetic alone (split, recover), and in a
/// re-share the dealer's work (one deal), a new holder's (checking the k deals' commitments
/// and combining its k sub-shares).
fn verifiable_sharing(c: &mut Criterion) {
    let mut group = c.benchmark_group("vss");
    for (k, n) in [(3usize, 5usize), (7, 12)] {
        let policy = Threshold::new(k, n).unwrap();
        let label = format!("{k}-of-{n}");
        let secret = vss::random_scalar();
        group.bench_with_input(BenchmarkId::new("split", &label), &policy, |b, policy| {
            b.iter(|| vss::split(&secret, *policy))
        });
        let (shares, commitments) = vss::split(&secret, policy);
        group.bench_with_input(
            BenchmarkId::new("recover", &label),
            &shares[..k],
            |b, shares| b.iter(|| vss::recover(shares, &commitments).unwrap()),
        );
        group.bench_with_input(BenchmarkId::new("deal", &label), &shares[0], |b, share| {
            b.iter(|| vss::deal(share, &commitments, policy).unwrap())
        });
        let deals: Vec<vss::Deal> = shares[..k]
            .iter()
            .map(|share| vss::deal(share, &commitments, policy).unwrap())
            .collect();
        let received: Vec<(u8, &Commitments, &ScalarShare)> = deals
            .iter()
            .map(|deal| (deal.dealer, &deal.commitments, &deal.subshares[0]))
            .collect();
        group.bench_with_input(
            BenchmarkId::new("receive", &label),
            &received,
            |b, received| b.iter(|| vss::receive(&commitments, k, received).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    envelope_against_raw_aead,
    split_and_combine,
    verifiable_sharing
);
criterion_main!(benches);
