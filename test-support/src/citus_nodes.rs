//! A Citus cluster of several nodes for shard-local routing tests: the coordinator fixture (a
//! private copy on the harness PostgreSQL) plus two more plain PostgreSQL instances as worker
//! "nodes", started once per test binary. `pg_dist_node` names the real addresses; every node holds
//! the same `pg_dist_*` rows (Citus syncs metadata to all nodes) and, of each distributed table, ONLY
//! the rows whose shard the metadata places on its group (hashed with PostgreSQL's own functions, as
//! Citus does); reference tables are complete everywhere and coordinator-only tables exist only on
//! the coordinator. So a statement sent to the right node returns exactly its rows, to the wrong one
//! none, and the coordinator has them all. With `CITUS_PROXY_TEST_CITUS` set the same API describes
//! the real cluster, and helpers that rewrite catalogs or stop servers refuse to run.

use std::sync::{Arc, OnceLock};

use crate::{PgServer, ServerTls};

const NODE_TEMPLATE: &str = "citus_node_template";

/// One PostgreSQL of the cluster as `pg_dist_node` names it.
#[derive(Debug, Clone)]
pub struct CitusNode {
    /// `pg_dist_node.groupid` (0 = the coordinator).
    pub group: i32,
    pub host: String,
    pub port: u16,
    /// Superuser URL of the cluster's database on this node.
    pub url: String,
    /// Set when this node is an instance of the cluster's own (it may be stopped).
    server: Option<Arc<PgServer>>,
}

impl CitusNode {
    /// `host:port`, as `pg_dist_node` names it and the proxy labels it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The coordinator and the worker nodes of one test's cluster.
#[derive(Debug)]
pub struct NodeCluster {
    /// The database name, the same on every node (pooled connections use the client's).
    pub database: String,
    pub coordinator: CitusNode,
    /// Worker nodes, by group id.
    pub workers: Vec<CitusNode>,
    real: bool,
}

const REAL_REFUSAL: &str = "this test rewrites pg_dist_* or stops a node, which must not be done to a real cluster; \
                            unset CITUS_PROXY_TEST_CITUS to run it against the fixture";

static SHARED_NODES: OnceLock<[Arc<PgServer>; 2]> = OnceLock::new();

/// Worker instances shared by the tests of one binary, each with the node template of its group.
fn shared_nodes() -> &'static [Arc<PgServer>; 2] {
    SHARED_NODES.get_or_init(|| {
        let coordinator = crate::postgres();
        std::thread::scope(|s| {
            let a = s.spawn(|| new_node(coordinator, 1));
            let b = s.spawn(|| new_node(coordinator, 2));
            [a.join().expect("start node 1"), b.join().expect("start node 2")]
        })
    })
}

/// A fresh PostgreSQL set up as Citus sets up a worker (TLS included), with the coordinator's
/// role secrets and the node template for `group`.
fn new_node(coordinator: &PgServer, group: i32) -> Arc<PgServer> {
    let server = crate::start_postgres(ServerTls::CitusAuto);
    copy_role_secrets(coordinator, &server);
    build_node_template(&server, group);
    Arc::new(server)
}

/// A cluster named `name`: private copies of the fixture on the coordinator and both shared nodes
/// (or the real cluster, whose database is the coordinator's).
pub fn citus_nodes(name: &str) -> NodeCluster {
    let citus = crate::citus();
    if citus.is_real() {
        return real_cluster(citus.url());
    }
    let [a, b] = shared_nodes();
    fixture_cluster(name, [Arc::clone(a), Arc::clone(b)], false)
}

/// As [`citus_nodes`], but group 2 is an instance of this cluster's own, which
/// [`NodeCluster::stop_node`] may stop. Panics against a real cluster.
pub fn citus_nodes_with_disposable(name: &str) -> NodeCluster {
    assert!(!crate::citus().is_real(), "{REAL_REFUSAL}");
    let [a, _] = shared_nodes();
    let own = new_node(crate::postgres(), 2);
    fixture_cluster(name, [Arc::clone(a), own], true)
}

fn fixture_cluster(name: &str, servers: [Arc<PgServer>; 2], second_is_own: bool) -> NodeCluster {
    let pg = crate::postgres();
    let coordinator_url = crate::citus().private_copy(name);
    let coordinator = CitusNode { group: 0, host: pg.host().to_string(), port: pg.port(), url: coordinator_url, server: None };
    let workers: Vec<CitusNode> = servers
        .into_iter()
        .zip([1, 2])
        .map(|(server, group)| {
            let url = clone_database(&server, NODE_TEMPLATE, name);
            let own = second_is_own && group == 2;
            CitusNode { group, host: server.host().to_string(), port: server.port(), url, server: own.then_some(server) }
        })
        .collect();
    let cluster = NodeCluster { database: name.to_string(), coordinator, workers, real: false };
    let rewrite = cluster.pg_dist_node_sql();
    cluster.run_everywhere(&rewrite);
    cluster
}

fn real_cluster(coordinator_url: &str) -> NodeCluster {
    let url = coordinator_url.to_string();
    let rows: Vec<(i32, String, i32)> = crate::block_on_private(async move {
        let c = crate::connect(&url).await;
        c.query(
            "SELECT groupid, nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND isactive ORDER BY groupid",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("read pg_dist_node of the real coordinator: {}", crate::describe(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    });
    let database = db_name(coordinator_url);
    let node = |(group, host, port): (i32, String, i32)| {
        let port = u16::try_from(port).expect("pg_dist_node.nodeport is a port");
        let url = if group == 0 { coordinator_url.to_string() } else { with_host_port(coordinator_url, &host, port) };
        CitusNode { group, host, port, url, server: None }
    };
    let mut nodes: Vec<CitusNode> = rows.into_iter().map(node).collect();
    let at = nodes.iter().position(|n| n.group == 0).expect("the real pg_dist_node has no coordinator (group 0) row");
    let coordinator = nodes.remove(at);
    NodeCluster { database, coordinator, workers: nodes, real: true }
}

impl NodeCluster {
    /// True when this is the real cluster named by `CITUS_PROXY_TEST_CITUS`.
    pub fn is_real(&self) -> bool {
        self.real
    }

    /// Every node with metadata: the coordinator, then the workers.
    pub fn all(&self) -> impl Iterator<Item = &CitusNode> {
        std::iter::once(&self.coordinator).chain(self.workers.iter())
    }

    /// The node of group `group`.
    pub fn node(&self, group: i32) -> &CitusNode {
        self.all().find(|n| n.group == group).unwrap_or_else(|| panic!("no node of group {group} in {self:?}"))
    }

    /// The node whose group holds the placement of `users.user_id = user_id`.
    pub fn node_of_user(&self, user_id: i64) -> &CitusNode {
        self.node_of("users", user_id)
    }

    /// The node holding the row of a hash-distributed table with a `bigint` distribution column,
    /// as the coordinator's metadata says now: hashint8 → shard range → placement → group.
    pub fn node_of(&self, table: &str, key: i64) -> &CitusNode {
        let group = self.group_of(table, key);
        self.node(group)
    }

    /// The group holding `key` of `table` (bigint distribution column), read from the coordinator.
    pub fn group_of(&self, table: &str, key: i64) -> i32 {
        let (url, table) = (self.coordinator.url.clone(), table.to_string());
        crate::block_on_private(async move {
            let c = crate::connect(&url).await;
            let row = c
                .query_one(
                    "SELECT pl.groupid FROM pg_dist_shard s JOIN pg_dist_placement pl ON pl.shardid = s.shardid \
                     WHERE s.logicalrelid = $1::text::regclass \
                       AND hashint8($2) BETWEEN s.shardminvalue::int AND s.shardmaxvalue::int",
                    &[&table, &key],
                )
                .await
                .unwrap_or_else(|e| panic!("placement of {table} key {key}: {}", crate::describe(&e)));
            row.get(0)
        })
    }

    /// The shard id of `users.user_id = user_id`.
    pub fn shard_of_user(&self, user_id: i64) -> i64 {
        let url = self.coordinator.url.clone();
        crate::block_on_private(async move {
            let c = crate::connect(&url).await;
            c.query_one(
                "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'users'::regclass \
                 AND hashint8($1) BETWEEN shardminvalue::int AND shardmaxvalue::int",
                &[&user_id],
            )
            .await
            .unwrap_or_else(|e| panic!("shard of user {user_id}: {}", crate::describe(&e)))
            .get(0)
        })
    }

    /// Runs `sql` (one script) on the coordinator and then on every worker's database: what Citus
    /// does with DDL and metadata changes. Fixture only.
    pub fn run_everywhere(&self, sql: &str) {
        assert!(!self.real, "{REAL_REFUSAL}");
        let urls: Vec<String> = self.all().map(|n| n.url.clone()).collect();
        let sql = sql.to_string();
        crate::block_on_private(async move {
            for url in urls {
                let c = crate::connect(&url).await;
                c.batch_execute(&sql).await.unwrap_or_else(|e| panic!("test harness: on {url}: {sql}: {}", crate::describe(&e)));
            }
        });
    }

    /// Sets `metadatasynced` of `group`'s row everywhere (the proxy sees it on its next refresh).
    pub fn set_metadata_synced(&self, group: i32, synced: bool) {
        self.run_everywhere(&format!(
            "SET allow_system_table_mods = on; UPDATE pg_catalog.pg_dist_node SET metadatasynced = {synced} WHERE groupid = {group};"
        ));
    }

    /// Points `group`'s `pg_dist_node` row at `port` (say, one nobody listens on), everywhere.
    pub fn point_node_at(&self, group: i32, port: u16) {
        self.run_everywhere(&format!("UPDATE pg_catalog.pg_dist_node SET nodeport = {port} WHERE groupid = {group};"));
    }

    /// Moves the shard holding `users.user_id = user_id` (and its co-located shards) to `to_group`
    /// as `citus_move_shard_placement` does: the stand-in rewrites the placements on every node,
    /// and the rows of `users` in that shard range are moved from the old node's database to the
    /// new one's (the other co-located tables keep their rows where they were).
    pub fn move_shard_of_user(&self, user_id: i64, to_group: i32) {
        assert!(!self.real, "{REAL_REFUSAL}");
        let shard = self.shard_of_user(user_id);
        let (from, to) = (self.node_of_user(user_id).clone(), self.node(to_group).clone());
        assert_ne!(from.group, to.group, "user {user_id} is on group {to_group} already");
        self.run_everywhere(&format!(
            "SELECT citus_move_shard_placement({shard}, '{}', {}, '{}', {});",
            from.host, from.port, to.host, to.port
        ));
        let in_shard = format!(
            "(SELECT hashint8(user_id) BETWEEN shardminvalue::int AND shardmaxvalue::int FROM pg_dist_shard WHERE shardid = {shard})"
        );
        crate::block_on_private(async move {
            let (src, dst) = (crate::connect(&from.url).await, crate::connect(&to.url).await);
            let rows = src
                .query(&format!("DELETE FROM users WHERE {in_shard} RETURNING user_id, username, email"), &[])
                .await
                .unwrap_or_else(|e| panic!("move rows off {}: {}", from.addr(), crate::describe(&e)));
            for r in rows {
                let (id, name, email): (i64, Option<String>, Option<String>) = (r.get(0), r.get(1), r.get(2));
                dst.execute("INSERT INTO users VALUES ($1, $2, $3)", &[&id, &name, &email])
                    .await
                    .unwrap_or_else(|e| panic!("move rows onto {}: {}", to.addr(), crate::describe(&e)));
            }
        });
    }

    /// Stops the cluster's own node of `group` at once (backends killed mid-transaction, as when
    /// the machine dies). Only for clusters from [`citus_nodes_with_disposable`].
    pub fn stop_node(&self, group: i32) {
        assert!(!self.real, "{REAL_REFUSAL}");
        let node = self.node(group);
        let server = node.server.as_ref().unwrap_or_else(|| {
            panic!("node {} is shared by the tests of this binary; use citus_nodes_with_disposable to stop one", node.addr())
        });
        server.stop_immediately();
    }

    /// `UPDATE pg_dist_node` giving each group its real address, all with synced metadata.
    fn pg_dist_node_sql(&self) -> String {
        let mut sql = String::from("SET allow_system_table_mods = on;\n");
        for n in self.all() {
            sql.push_str(&format!(
                "UPDATE pg_catalog.pg_dist_node SET nodename = '{}', nodeport = {}, hasmetadata = true, metadatasynced = true \
                 WHERE groupid = {};\n",
                n.host, n.port, n.group
            ));
        }
        sql
    }
}

/// `ALTER ROLE … PASSWORD '<stored secret>'` on `node` for every harness role, with the
/// coordinator's stored secrets (same SCRAM salts and keys): what Citus propagates.
fn copy_role_secrets(coordinator: &PgServer, node: &PgServer) {
    let (from, to) = (coordinator.url("postgres"), node.url("postgres"));
    crate::block_on_private(async move {
        let c = crate::connect(&from).await;
        let names: Vec<&str> = crate::AUTH_USERS.iter().map(|u| u.name).collect();
        let rows = c
            .query("SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = ANY($1) AND rolpassword IS NOT NULL", &[&names])
            .await
            .unwrap_or_else(|e| panic!("test harness: read the coordinator's role secrets: {}", crate::describe(&e)));
        let n = crate::connect(&to).await;
        for r in rows {
            let (role, secret): (String, String) = (r.get(0), r.get(1));
            let sql = format!("ALTER ROLE \"{role}\" PASSWORD '{}'", secret.replace('\'', "''"));
            n.batch_execute(&sql).await.unwrap_or_else(|e| panic!("test harness: {sql}: {}", crate::describe(&e)));
        }
    });
}

/// The node template of `group` on `server`: the whole fixture, then only the rows the metadata
/// places on `group` kept in each hash-distributed table, and coordinator-only tables dropped.
fn build_node_template(server: &PgServer, group: i32) {
    let url = server.fresh_database(NODE_TEMPLATE);
    let sql = format!("{}\n{}", crate::citus::fixture_sql(), keep_only_group_sql(group));
    crate::block_on_private(async move {
        let c = crate::connect(&url).await;
        c.batch_execute(&sql).await.unwrap_or_else(|e| panic!("test harness: build the node template: {}", crate::describe(&e)));
    });
}

/// For each hash-distributed table: delete the rows whose hash (the type's default hash support
/// function, facts.md §7) falls in no shard placed on `group`. Plain tables unknown to Citus are
/// dropped: they live on the coordinator only.
fn keep_only_group_sql(group: i32) -> String {
    format!(
        r#"DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT p.logicalrelid AS rel, a.attname, pr.amproc::regproc AS hashfn
          FROM pg_dist_partition p
          JOIN pg_attribute a ON a.attrelid = p.logicalrelid
               AND a.attnum = substring(p.partkey from ':varattno (\d+)')::int
          JOIN pg_opclass oc ON oc.opcintype = a.atttypid AND oc.opcdefault
               AND oc.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'hash')
          JOIN pg_amproc pr ON pr.amprocfamily = oc.opcfamily AND pr.amprocnum = 1
               AND pr.amproclefttype = a.atttypid AND pr.amprocrighttype = a.atttypid
         WHERE p.partmethod = 'h'
    LOOP
        EXECUTE format(
            'DELETE FROM %s d WHERE NOT EXISTS (SELECT 1 FROM pg_dist_shard s JOIN pg_dist_placement pl ON pl.shardid = s.shardid
              WHERE s.logicalrelid = %L::regclass AND pl.groupid = {group}
                AND %s(d.%I) BETWEEN s.shardminvalue::int AND s.shardmaxvalue::int)',
            t.rel, t.rel::text, t.hashfn, t.attname);
    END LOOP;
    FOR t IN
        SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r'
           AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
    LOOP
        EXECUTE format('DROP TABLE %s', t.rel);
    END LOOP;
END $$;
ANALYZE;
"#
    )
}

fn clone_database(server: &PgServer, template: &str, name: &str) -> String {
    let admin = server.url("postgres");
    let stmts = [format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"), format!("CREATE DATABASE \"{name}\" TEMPLATE {template}")];
    crate::block_on_private(async move { crate::execute_each(&admin, &stmts).await });
    server.url(name)
}

fn db_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or("citus").split('?').next().unwrap_or("citus").to_string()
}

/// `url` with its host and port replaced (same role, password, database and options).
fn with_host_port(url: &str, host: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (auth, after_at) = match rest.rsplit_once('@') {
        Some((a, r)) => (format!("{a}@"), r),
        None => (String::new(), rest),
    };
    let path = after_at.find(['/', '?']).map(|i| &after_at[i..]).unwrap_or("");
    format!("{scheme}://{auth}{host}:{port}{path}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_and_port_are_replaced_and_the_rest_kept() {
        assert_eq!(
            super::with_host_port("postgres://u:p@10.0.0.1:9700/citus?sslmode=disable", "127.0.0.1", 9701),
            "postgres://u:p@127.0.0.1:9701/citus?sslmode=disable"
        );
        assert_eq!(super::with_host_port("postgresql://h/citus", "n", 5), "postgresql://n:5/citus");
    }
}
