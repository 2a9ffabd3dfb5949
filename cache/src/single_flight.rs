//! Single-flight: of concurrent misses of one key, the first becomes the leader and runs the
//! upstream query; the others wait for its result (bounded), so a popular key that expires
//! costs the coordinator one query, not one per waiting client.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use tokio::sync::watch;

#[derive(Debug, Clone)]
enum State<T> {
    Pending,
    /// The leader finished: Some(value) to share, None if it failed or could not cache.
    Done(Option<T>),
}

type Slot<T> = Arc<watch::Sender<State<T>>>;

#[derive(Debug)]
pub(crate) struct SingleFlight<K: Eq + Hash, T> {
    flights: Arc<DashMap<K, Slot<T>>>,
}

impl<K: Eq + Hash, T> Default for SingleFlight<K, T> {
    fn default() -> Self {
        SingleFlight { flights: Arc::new(DashMap::new()) }
    }
}

pub(crate) enum Flight<K: Eq + Hash + Clone, T: Clone> {
    Leader(Leader<K, T>),
    Follower(Follower<T>),
}

impl<K: Eq + Hash + Clone, T: Clone> SingleFlight<K, T> {
    pub fn begin(&self, key: K) -> Flight<K, T> {
        match self.flights.entry(key.clone()) {
            MapEntry::Occupied(o) => Flight::Follower(Follower { rx: o.get().subscribe() }),
            MapEntry::Vacant(v) => {
                let (tx, _) = watch::channel(State::Pending);
                let tx = Arc::new(tx);
                v.insert(tx.clone());
                Flight::Leader(Leader { flights: self.flights.clone(), key, tx, done: false })
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }
}

/// The one caller that runs the query. Dropping it without `finish` releases the followers
/// with nothing (they go upstream themselves), so a cancelled leader never strands them.
pub(crate) struct Leader<K: Eq + Hash, T> {
    flights: Arc<DashMap<K, Slot<T>>>,
    key: K,
    tx: Slot<T>,
    done: bool,
}

impl<K: Eq + Hash, T> Leader<K, T> {
    pub fn finish(mut self, value: Option<T>) {
        self.release(value);
    }

    fn release(&mut self, value: Option<T>) {
        if self.done {
            return;
        }
        self.done = true;
        // Unregister first: a miss arriving after this must look the key up again, not wait.
        self.flights.remove_if(&self.key, |_, tx| Arc::ptr_eq(tx, &self.tx));
        self.tx.send_replace(State::Done(value));
    }
}

impl<K: Eq + Hash, T> Drop for Leader<K, T> {
    fn drop(&mut self) {
        self.release(None);
    }
}

pub(crate) struct Follower<T> {
    rx: watch::Receiver<State<T>>,
}

impl<T: Clone> Follower<T> {
    /// The leader's value, or None if it had none, vanished, or took longer than `limit`.
    pub async fn wait(mut self, limit: Duration) -> Option<T> {
        match tokio::time::timeout(limit, self.rx.wait_for(|s| matches!(s, State::Done(_)))).await {
            Ok(Ok(state)) => match &*state {
                State::Done(v) => v.clone(),
                State::Pending => None,
            },
            _ => None,
        }
    }
}
