//! Bad input never panics and never yields a shard claim it cannot justify: every prefix of every
//! example statement, odd byte strings, and malformed Bind parameters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::Router;

#[test]
fn prefixes_and_garbage_do_not_panic() {
    let topo = common::topology();
    let router = Router::new(64);
    let mut texts: Vec<String> = common::tsv("routing-examples.tsv").iter().filter_map(|r| r.get("sql").cloned().flatten()).collect();
    texts.extend(
        [
            "",
            ";",
            ";;",
            "'",
            "\"",
            "$",
            "$$",
            "$1",
            "/*",
            "/* /* */",
            "--",
            "E'\\'",
            "SELECT '",
            "SELECT $tag$ x",
            "SELECT 1e",
            "SELECT .5",
            "SELECT 1..2",
            "SELECT * FROM users WHERE user_id = 99999999999999999999999",
            "SELECT * FROM users WHERE user_id = -9223372036854775808",
            "SELECT * FROM users WHERE user_id = 1e400",
            "SELECT * FROM users WHERE user_id = ANY('{1,{2}}'::bigint[])",
            "SELECT * FROM users WHERE user_id = ANY('{')",
            "SELECT * FROM accounts WHERE account_uuid = 'zz'",
            "INSERT INTO users VALUES ()",
            "UPDATE users SET",
            "SELECT * FROM users WHERE user_id = 2147483647 * 2147483647 * 4",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut count = 0;
    for t in &texts {
        for (i, _) in t.char_indices().chain(std::iter::once((t.len(), ' '))) {
            let d = router.route_query(&t[..i], &topo, &["public"]);
            let _ = d.explain_text();
            let _ = d.explain_json();
            count += 1;
        }
    }
    assert!(count > 1000);
}

#[test]
fn malformed_bind_parameters() {
    let topo = common::topology();
    let router = Router::new(64);
    let cases = [
        ("SELECT * FROM users WHERE user_id = $1", vec![20u32]),
        ("SELECT * FROM users WHERE user_id = ANY($1)", vec![1016]),
        ("SELECT * FROM accounts WHERE account_uuid = $1", vec![0]),
        ("INSERT INTO users VALUES ($1, $2, $3)", vec![]),
        ("SELECT * FROM users WHERE user_id IN ($1, $2, $3)", vec![23, 0, 21]),
    ];
    let blobs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff; 3],
        vec![0; 8],
        vec![0xff; 16],
        b"{1,2".to_vec(),
        vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 9],
        vec![0x80, 0x81],
    ];
    for (sql, types) in cases {
        let p = router.prepare(sql, &types);
        for b in &blobs {
            for formats in [&[][..], &[0][..], &[1][..], &[1, 0, 1][..], &[7][..]] {
                let params = [Some(b.as_slice()), None, Some(b.as_slice())];
                let d = router.route_bound(&p, &params, formats, &topo, &["public"]);
                if d.route.word() == "single-shard" {
                    assert!(d.route.shard_ids().len() == 1 || d.route.shards().iter().any(|s| s.shard_id.is_none()));
                }
                let d = router.route_bound(&p, &[], formats, &topo, &["public"]);
                assert_ne!(d.route.word(), "single-shard", "{sql}: no parameters bound");
            }
        }
    }
}
