//! The shard-local placement runs at every transaction start: once the decision is made it must
//! not allocate (a counting allocator watches this thread).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::{shard_local, spreadable, Placement, Router};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn placement_and_spread_checks_do_not_allocate() {
    let topo = common::topology();
    let router = Router::new(64);
    let path: &[&str] = &["public"];
    for (sql, node) in [
        ("SELECT * FROM users WHERE user_id = 42", true),
        ("UPDATE orders o SET total = 0 FROM users u WHERE u.user_id = o.user_id AND u.user_id = 42", true),
        ("INSERT INTO events (user_id, kind) VALUES (42, 'x')", true),
        ("SELECT count(*) FROM users", false),
    ] {
        let d = router.route_query_with(sql, &topo, path, false);
        let (placement, n) = allocations(|| shard_local(&d, &topo, path));
        assert_eq!(matches!(placement, Placement::Node(_)), node, "{sql}: {placement:?}");
        assert_eq!(n, 0, "{sql}: shard_local allocated {n} times");
        let (_, n) = allocations(|| spreadable(&d, &topo, path));
        assert_eq!(n, 0, "{sql}: spreadable allocated {n} times");
    }
    // The counter works: a decision does allocate.
    let (_, n) = allocations(|| router.route_query_with("SELECT * FROM users WHERE user_id = 7", &topo, path, false));
    assert!(n > 0);
}
