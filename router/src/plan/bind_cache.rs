//! The last binding of one statement, kept with its cached analysis: a repeated shape under the
//! same snapshot and search_path skips name and column resolution, the bulk of a cached
//! decision's cost. One entry per statement is enough: sessions share a snapshot, and nearly
//! always a search_path.

use super::resolve::{bind, Binding, Bound};
use crate::analysis::model::Model;
use crate::analysis::StatementInfo;
use crate::topology::Topology;
use std::sync::{Arc, RwLock};

/// `info`'s model bound to this snapshot and search_path, reusing the cached binding if it is
/// for them.
pub(crate) fn bound<'m>(info: &'m StatementInfo, topo: &Topology, search_path: &[&str]) -> Bound<'m> {
    Bound::new(&info.model, info.bindings.get(&info.model, topo, search_path))
}

#[derive(Debug, Default)]
pub(crate) struct BindCache {
    last: RwLock<Option<Arc<Binding>>>,
}

impl BindCache {
    /// The binding of `model` (the model this cache belongs to) for this snapshot and path.
    fn get(&self, model: &Model, topo: &Topology, search_path: &[&str]) -> Arc<Binding> {
        // try_*: a decision never waits for another session; at worst it binds afresh.
        if let Ok(last) = self.last.try_read() {
            if let Some(b) = last.as_ref().filter(|b| b.is_for(topo, search_path)) {
                return Arc::clone(b);
            }
        }
        let fresh = Arc::new(bind(model, topo, search_path));
        if let Ok(mut last) = self.last.try_write() {
            *last = Some(Arc::clone(&fresh));
        }
        fresh
    }
}

/// A copy of an analysis starts with nothing cached.
impl Clone for BindCache {
    fn clone(&self) -> Self {
        BindCache::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Router;

    #[test]
    fn reused_only_for_the_same_snapshot_and_search_path() {
        let router = Router::new(4);
        let prepared = router.prepare("SELECT * FROM users u JOIN orders o USING (user_id) WHERE user_id = $1", &[]);
        let info = &prepared.analysis.statements[0];
        let get = |topo: &Topology, path: &[&str]| info.bindings.get(&info.model, topo, path);
        let (a, b) = (Topology::default(), Topology::default());
        let first = get(&a, &["public"]);
        assert!(Arc::ptr_eq(&first, &get(&a, &["public"])), "same snapshot and path: reused");
        let other_path = get(&a, &["app", "public"]);
        assert!(!Arc::ptr_eq(&first, &other_path));
        assert!(other_path.is_for(&a, &["app", "public"]) && !other_path.is_for(&a, &["app"]));
        assert!(!Arc::ptr_eq(&other_path, &get(&a, &["public", "app"])), "order matters");
        let other_snapshot = get(&b, &["public"]);
        assert!(!Arc::ptr_eq(&first, &other_snapshot) && !other_snapshot.is_for(&a, &["public"]));
        // A copied analysis starts empty rather than sharing the slot.
        assert!(info.bindings.clone().last.read().map(|l| l.is_none()).unwrap_or(false));
    }
}
