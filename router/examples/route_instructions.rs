//! A fixed amount of routing work for instruction counting, which is stable on a noisy machine
//! where wall-clock benches are not:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/route_instructions simple 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/route_instructions simple 100000
//! ```
//!
//! (difference of the two totals) / 100000 = instructions per decision. Cases: `simple`
//! (simple-protocol point select, a new literal each time), `bind-int8` (binary int8 parameter
//! declared at Parse), `bind-text` (text parameter of unspecified type, as pgbench sends).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use citus_proxy_router::{Route, Router};
use std::hint::black_box;

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "simple".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let topo = common::topology();
    let router = Router::new(10_000);
    let path = ["\"$user\"", "public"];
    // Texts are made before counting starts; each decision sees a different value.
    let texts: Vec<String> = (0..1024).map(|i| format!("SELECT username FROM users WHERE user_id = {i}")).collect();
    let int8: Vec<[u8; 8]> = (0..1024i64).map(i64::to_be_bytes).collect();
    let text: Vec<String> = (0..1024).map(|i| i.to_string()).collect();
    let (prepared, formats, declared) = match case.as_str() {
        "bind-int8" => ("SELECT username FROM users WHERE user_id = $1", vec![1i16], vec![20u32]),
        _ => ("SELECT username FROM users WHERE user_id = $1", Vec::new(), vec![0]),
    };
    let prepared = router.prepare(prepared, &declared);
    // Warm the shape cache so every counted decision is a hit.
    router.route_query_with(&texts[0], &topo, &path, false);
    let mut single = 0usize;
    for i in 0..n {
        let k = i % 1024;
        let d = match case.as_str() {
            "simple" => router.route_query_with(black_box(&texts[k]), &topo, &path, false),
            "bind-int8" => router.route_bound_with(&prepared, &[Some(&int8[k][..])], &formats, &topo, &path, false),
            "bind-text" => router.route_bound_with(&prepared, &[Some(text[k].as_bytes())], &formats, &topo, &path, false),
            other => {
                eprintln!("unknown case {other}: simple, bind-int8 or bind-text");
                std::process::exit(2);
            }
        };
        single += usize::from(matches!(d.route, Route::SingleShard { .. }));
    }
    if single != n {
        eprintln!("{} of {n} decisions were not single-shard", n - single);
        std::process::exit(1);
    }
    println!("{case}: {n} single-shard decisions");
}
