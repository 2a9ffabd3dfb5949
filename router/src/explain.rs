//! Human text and tool JSON for a decision.

use crate::route::{Decision, Route};
use serde_json::{json, Value};

impl Decision {
    /// `single-shard: users.user_id = 42 → hash 1509752520 → shard 102035 on 10.0.0.12:5432`.
    pub fn explain_text(&self) -> String {
        if self.reason.is_empty() {
            self.route.word().to_string()
        } else {
            format!("{}: {}", self.route.word(), self.reason)
        }
    }

    /// At least `route`, `shards`, `nodes`, `tables`, `reason`; plus class, kind and per-table shards.
    pub fn explain_json(&self) -> Value {
        let tables: Vec<String> = self.analysis.tables().iter().map(|t| t.to_string()).collect();
        let kinds: Vec<&str> = self.analysis.statements.iter().map(|s| s.kind.as_str()).collect();
        let mut v = json!({
            "route": self.route.word(),
            "shards": self.route.shard_ids(),
            "nodes": self.route.nodes(),
            "tables": tables,
            "reason": self.reason,
            "class": self.class.as_str(),
            "kind": kinds,
            "placements": self.route.shards(),
            "changes_metadata": self.analysis.changes_metadata(),
            "volatile": self.analysis.volatile(),
        });
        if let (Route::MultiShard { tasks: Some(t), .. }, Some(obj)) = (&self.route, v.as_object_mut()) {
            obj.insert("tasks".into(), json!(t));
        }
        if self.statements.len() > 1 {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("statements".into(), json!(self.statements.iter().map(Route::word).collect::<Vec<_>>()));
            }
        }
        v
    }
}
