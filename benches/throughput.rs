//! Payload throughput: A streams byte payloads from 16 B to 1 MiB to B.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_benches::{ByHand, Flavor, Handler, Node, RawEnd, endpoints, ok, run_pair};
use serde::{Deserialize, Serialize};

/// A payload serialized as bytes (not as a sequence of u8), as a user would
/// with `serde_bytes`: postcard then copies it in one go.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Blob(#[serde(with = "bytes_as_bytes")] Vec<u8>);

mod bytes_as_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let bytes: &[u8] = Deserialize::deserialize(d)?;
        Ok(bytes.to_vec())
    }
}

const SIZES: [usize; 6] = [16, 256, 4 << 10, 64 << 10, 256 << 10, 1 << 20];

fn throughput(c: &mut Criterion) {
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        let mut group = c.benchmark_group(format!("throughput/{}", flavor.name()));
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let blob = Blob(vec![0x5a; size]);

            let payload = blob.clone();
            group.bench_function(format!("raw_mpsc_postcard/{size}"), |b| {
                b.iter_custom(|iters| {
                    let (mut a, mut bb) = RawEnd::pair();
                    let payload = payload.clone();
                    let first = async move {
                        for _ in 0..iters {
                            a.send(&payload);
                        }
                    };
                    let second = async move {
                        for _ in 0..iters {
                            black_box(bb.recv::<Blob>().await);
                        }
                    };
                    run_pair(&rt, flavor, first, second)
                })
            });

            let payload = blob.clone();
            group.bench_function(format!("handler/{size}"), |b| {
                b.iter_custom(|iters| {
                    let (mut a, mut bb) = endpoints();
                    let payload = payload.clone();
                    let first = async move {
                        let mut h = Handler::new();
                        for _ in 0..iters {
                            ok(h.send(&mut a, Node::B, &payload).await);
                        }
                    };
                    let second = async move {
                        let mut h = Handler::new();
                        for _ in 0..iters {
                            black_box(ok(h.recv::<Blob>(&mut bb, Node::A).await));
                        }
                    };
                    run_pair(&rt, flavor, first, second)
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = rumpsteak_aura_benches::criterion();
    targets = throughput
}
criterion_main!(benches);
