//! Route decision costs: a cached point-select shape (target ≤ 2 µs), a prepared statement at
//! Bind, the shard-local placement of a decided point select, and the first analysis of a
//! ~200-character join (parse + walk, no cache).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use citus_proxy_router::Router;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;

#[path = "../tests/common/mod.rs"]
mod common;

const JOIN: &str = "SELECT u.user_id, u.username, u.email, o.order_id, o.total FROM users u \
JOIN orders o ON u.user_id = o.user_id WHERE u.user_id = 42 AND o.total > 10 AND u.email LIKE '%@example.com' \
ORDER BY o.order_id DESC LIMIT 20";

fn bench(c: &mut Criterion) {
    let topo = common::topology();
    let router = Router::new(10_000);
    let texts: Vec<String> = (0..1024).map(|i| format!("SELECT * FROM users WHERE user_id = {i}")).collect();
    router.route_query(&texts[0], &topo, &["public"]);
    let mut i = 0usize;
    c.bench_function("cached_shape_point_select", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            black_box(router.route_query(black_box(&texts[i]), &topo, &["public"]))
        })
    });

    let prepared = router.prepare("SELECT * FROM users WHERE user_id = $1", &[20]);
    let params: Vec<Vec<u8>> = (0..1024i64).map(|v| v.to_be_bytes().to_vec()).collect();
    let mut j = 0usize;
    c.bench_function("prepared_bind_binary_int8", |b| {
        b.iter(|| {
            j = (j + 1) % params.len();
            let p = [Some(params[j].as_slice())];
            black_box(router.route_bound(&prepared, &p, &[1], &topo, &["public"]))
        })
    });

    // routing.shard_local's per-transaction-start cost on top of a decision (no allocation).
    let point = router.route_query_with("SELECT * FROM users WHERE user_id = 42", &topo, &["public"], false);
    c.bench_function("shard_local_point_select", |b| {
        b.iter(|| black_box(citus_proxy_router::shard_local(black_box(&point), &topo, &["public"])))
    });

    let cached_join = Router::new(16);
    cached_join.route_query(JOIN, &topo, &["public"]);
    c.bench_function("cached_shape_200_char_join", |b| b.iter(|| black_box(cached_join.route_query(black_box(JOIN), &topo, &["public"]))));

    c.bench_function("first_analysis_200_char_join", |b| {
        b.iter_batched(|| Router::new(16), |r| black_box(r.route_query(black_box(JOIN), &topo, &["public"])), BatchSize::SmallInput)
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
