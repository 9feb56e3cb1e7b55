//! serde_json (what harness-guard uses), simd-json and sonic-rs reading the same review bodies
//! into the same types: the uid alone (the baseline responder's read), and what harness-guard
//! reads. simd-json parses in place, so its figures include copying the body, as a server holding
//! the body in shared `Bytes` must; its "buffers reused" rows keep its scratch buffers between
//! reads. Built for the generic target, as harness-guard's image is (sonic-rs picks its SIMD
//! at compile time, simd-json at run time).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use json_readers::{Review, Uid, fixture};

fn env_count(r: &Review) -> usize {
    let spec = r.request.as_ref().and_then(|r| r.object.as_ref()).and_then(|o| o.spec.as_ref());
    spec.map_or(0, |s| s.containers.iter().map(|c| c.env.as_ref().map_or(0, Vec::len)).sum())
}

fn readers(c: &mut Criterion) {
    for (group, name) in [
        ("sandbox pod review", "pod-sandbox-create.mutating.json"),
        ("harness review", "agentharness-create.validating.json"),
    ] {
        let body = fixture(name);
        // The three read the same.
        let serde: Review = serde_json::from_slice(&body).unwrap();
        let sonic: Review = sonic_rs::from_slice(&body).unwrap();
        let simd: Review = simd_json::serde::from_slice(&mut body.clone()).unwrap();
        assert_eq!((env_count(&sonic), env_count(&simd)), (env_count(&serde), env_count(&serde)));
        assert!(group != "sandbox pod review" || env_count(&serde) > 0);

        let mut g = c.benchmark_group(group);
        g.bench_function("uid: serde_json", |b| {
            b.iter(|| serde_json::from_slice::<Uid>(black_box(&body)).unwrap().request.uid)
        });
        g.bench_function("uid: sonic-rs", |b| {
            b.iter(|| sonic_rs::from_slice::<Uid>(black_box(&body)).unwrap().request.uid)
        });
        g.bench_function("uid: simd-json", |b| {
            b.iter(|| simd_json::serde::from_slice::<Uid>(&mut black_box(&body).to_vec()).unwrap().request.uid)
        });
        g.bench_function("typed: serde_json", |b| {
            b.iter(|| serde_json::from_slice::<Review>(black_box(&body)).unwrap())
        });
        g.bench_function("typed: sonic-rs", |b| b.iter(|| sonic_rs::from_slice::<Review>(black_box(&body)).unwrap()));
        g.bench_function("typed: simd-json", |b| {
            b.iter(|| simd_json::serde::from_slice::<Review>(&mut black_box(&body).to_vec()).unwrap())
        });
        let (mut buffers, mut scratch) = (simd_json::Buffers::new(body.len()), body.clone());
        g.bench_function("typed: simd-json, buffers reused", |b| {
            b.iter(|| {
                scratch.copy_from_slice(black_box(&body));
                simd_json::serde::from_slice_with_buffers::<Review>(&mut scratch, &mut buffers).unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, readers);
criterion_main!(benches);
