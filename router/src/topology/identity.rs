//! Which snapshot a derived result was computed against. Each `Topology` owns a distinct tiny
//! allocation; a tag holds a weak reference to it, which keeps that address from being reused,
//! so comparing addresses can never mistake a new snapshot for a dropped one.

use std::sync::{Arc, Weak};

/// Owned by one `Topology`; a fresh one per snapshot (including `Topology::default()`).
#[derive(Debug, Default)]
pub(crate) struct Identity(Arc<()>);

/// Remembers an `Identity` without keeping its snapshot alive.
#[derive(Debug)]
pub(crate) struct IdentityTag(Weak<()>);

impl Identity {
    pub fn tag(&self) -> IdentityTag {
        IdentityTag(Arc::downgrade(&self.0))
    }
}

impl IdentityTag {
    pub fn is(&self, id: &Identity) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&id.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_tell_snapshots_apart_even_after_drop() {
        let a = Identity::default();
        let tag = a.tag();
        assert!(tag.is(&a));
        drop(a);
        // The weak reference keeps the old address allocated: no new identity can take it.
        let fresh: Vec<Identity> = (0..64).map(|_| Identity::default()).collect();
        assert!(fresh.iter().all(|b| !tag.is(b)));
    }
}
