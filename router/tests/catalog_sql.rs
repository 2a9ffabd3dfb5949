//! The catalog queries run unchanged against the Citus fixture (plain PostgreSQL holding Citus's
//! catalog tables and the real cluster's rows), or a real coordinator when configured, and give
//! the same topology as the dumped TSVs.

mod common;

use citus_proxy_router::catalog::{
    CatalogRows, ColumnRow, NodeRow, PartitionRow, PlacementRow, RelationRow, ShardRow, COLUMNS_SQL, NODES_SQL,
    PARTITIONS_SQL, PLACEMENTS_SQL, RELATIONS_SQL, SHARDS_SQL,
};
use citus_proxy_router::{Router, Topology};
use tokio_postgres::SimpleQueryMessage;

async fn rows<T>(c: &tokio_postgres::Client, sql: &str, parse: fn(&[Option<&str>]) -> Result<T, citus_proxy_router::CatalogError>) -> Vec<T> {
    let msgs = c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", test_support::describe(&e)));
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                let cols: Vec<Option<&str>> = (0..r.len()).map(|i| r.get(i)).collect();
                Some(parse(&cols).unwrap_or_else(|e| panic!("{sql}: {e}")))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn catalog_queries_build_the_same_topology() {
    let cluster = test_support::citus();
    let c = test_support::connect(cluster.url()).await;
    let fetched = CatalogRows {
        partitions: rows(&c, PARTITIONS_SQL, PartitionRow::from_text).await,
        shards: rows(&c, SHARDS_SQL, ShardRow::from_text).await,
        placements: rows(&c, PLACEMENTS_SQL, PlacementRow::from_text).await,
        nodes: rows(&c, NODES_SQL, NodeRow::from_text).await,
        relations: rows(&c, RELATIONS_SQL, RelationRow::from_text).await,
        columns: rows(&c, COLUMNS_SQL, ColumnRow::from_text).await,
    };
    let live = Topology::build(fetched).expect("topology from the catalog queries");
    let dumped = common::topology();
    assert_eq!(live.tables().len(), dumped.tables().len());
    for t in dumped.tables() {
        let l = live.table_by_name(&t.schema, &t.name).unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!((l.kind, l.colocation_id, &l.dist_column), (t.kind, t.colocation_id, &t.dist_column), "{}", t.name);
        assert_eq!(l.shards, t.shards, "{} shards/placements", t.name);
        assert_eq!(l.columns, t.columns, "{} columns", t.name);
    }
    assert_eq!(live.nodes(), dumped.nodes());
    assert!(live.warnings().is_empty(), "{:?}", live.warnings());
    let router = Router::new(64);
    let d = router.route_query("SELECT * FROM local_notes", &live, &["public"]);
    assert_eq!(d.route.word(), "local", "local tables come from RELATIONS_SQL");
    let d = router.route_query("SELECT * FROM users WHERE user_id = 42", &live, &["public"]);
    assert_eq!(d.route.shard_ids(), vec![102035]);
}
