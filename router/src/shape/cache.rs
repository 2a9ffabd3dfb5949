//! A bounded map from shape text to its shared analysis. Eviction is second-chance: entries not
//! hit since the last sweep go first, then arbitrary ones until a quarter is free.

use ahash::RandomState;
use dashmap::DashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

struct Entry<T> {
    value: Arc<T>,
    hit: AtomicBool,
}

pub struct ShapeCache<T> {
    map: DashMap<Box<str>, Entry<T>, RandomState>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<T> ShapeCache<T> {
    pub fn new(capacity: usize) -> Self {
        ShapeCache {
            map: DashMap::with_hasher(RandomState::new()),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        match self.map.get(key) {
            Some(e) => {
                if !e.hit.load(Ordering::Relaxed) {
                    e.hit.store(true, Ordering::Relaxed);
                }
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(e.value.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn insert(&self, key: Box<str>, value: Arc<T>) {
        if self.map.len() >= self.capacity {
            self.evict();
        }
        self.map.insert(key, Entry { value, hit: AtomicBool::new(false) });
    }

    fn evict(&self) {
        self.map.retain(|_, e| e.hit.swap(false, Ordering::Relaxed));
        let target = self.capacity - self.capacity / 4;
        if self.map.len() > target {
            let mut excess = self.map.len() - target;
            self.map.retain(|_, _| {
                if excess > 0 {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
    pub fn clear(&self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn bounded() {
        let c = ShapeCache::new(8);
        for i in 0..100 {
            c.insert(format!("k{i}").into(), Arc::new(i));
            assert!(c.len() <= 8);
        }
        assert!(c.get("k99").is_some());
    }
}
